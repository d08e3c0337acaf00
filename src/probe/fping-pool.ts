import { type ChildProcess, spawn } from 'node:child_process';
import { FpingParser } from './fping-parser.ts';
import type { ProbeSample } from './outage.ts';

export interface FpingPoolOptions {
  /** Time between probes to one address, ms (fping -p). */
  intervalMs: number;
  /** A reply later than this is lost (fping -t), ms. */
  timeoutMs: number;
  /** Addresses per fping process (default: as many as its sequence numbers allow, at most 50). */
  groupSize?: number;
  /** Runs fping inside a network namespace (`ip netns exec NS fping ...`). */
  netns?: string;
  /** The fping binary (default `fping`). */
  command?: string;
  /** Wait before restarting an fping that exited; doubles while runs fail, up to `restartMaxMs`. */
  restartMinMs?: number;
  restartMaxMs?: number;
  now?: () => number;
}

/** What the probe agent needs of one address's prober (see agents/probe/agent.ts). */
export interface PooledProber {
  readonly address: string;
  readonly pid: number | undefined;
  start(): void;
  samples(): ProbeSample[];
  /** Changes whenever the address's samples may have (new output, a run that ended, a discard). */
  changedAt(): number;
  discardBefore(t: number): void;
  stop(): Promise<ProbeSample[]>;
}

interface Run {
  parser: FpingParser;
  addresses: string[];
  states: AddressState[];
  /** Added to fping's sequence numbers: each run counts from 0 again. */
  offset: number;
  startedAt: number;
  ended: boolean;
}

interface Group {
  addresses: Set<string>;
  child: ChildProcess | null;
  run: Run | null;
  /** A membership change or an exit asked for a new run. */
  pending: NodeJS.Timeout | null;
  failuresInARow: number;
  closed: Promise<void>;
}

interface AddressState {
  group: Group | null;
  runs: Run[];
  failedStarts: ProbeSample[];
  /** The pool's change counter when its samples last changed. */
  changedAt: number;
}

const RUN_SEQ_SPAN = 2 ** 32;
/** fping keeps a probe's sequence number for 10 s and has 65,535 of them per process. */
const SEQ_PER_10S = 60_000;

/**
 * Probes many addresses from few processes: one `fping -l` (loop mode) per group of up to 50
 * addresses, each address paced at `intervalMs` (100 Hz at 10 ms, where iputils ping sends
 * every ~16 ms and spins below 10 ms; docs/probe.md). A group's fping is started again when
 * its addresses change (debounced, so a new VM list costs one restart per group) and, with
 * backoff, when it exits; a run that ended before probing counts as one lost probe per address
 * at its start, as with PingProber.
 */
export class FpingPool {
  private readonly groups: Group[] = [];
  private readonly states = new Map<string, AddressState>();
  private runCount = 0;
  private changes = 0;
  private stopped = false;
  private readonly groupSize: number;
  /** The last stderr lines of any fping (e.g. `fping: can't create socket`). */
  stderrTail = '';

  constructor(private readonly o: FpingPoolOptions) {
    if (!(o.intervalMs >= 10))
      throw new RangeError(`fping interval must be at least 10 ms, got ${o.intervalMs}`);
    const bySeq = Math.floor((SEQ_PER_10S * o.intervalMs) / 10_000);
    this.groupSize = Math.max(1, Math.min(o.groupSize ?? 50, bySeq));
  }

  /** A prober of one address whose probes run in this pool's shared fping processes. */
  prober(address: string): PooledProber {
    const pidOf = () => this.states.get(address)?.group?.child?.pid;
    return {
      address,
      get pid() {
        return pidOf();
      },
      start: () => this.add(address),
      samples: () => this.samples(address),
      changedAt: () => this.states.get(address)?.changedAt ?? -1,
      discardBefore: (t) => this.discardBefore(address, t),
      stop: () => this.remove(address),
    };
  }

  /** The pids of the running fping processes. */
  pids(): number[] {
    return this.groups.map((g) => g.child?.pid).filter((p): p is number => p !== undefined);
  }

  private add(address: string): void {
    if (this.stopped) return;
    let s = this.states.get(address);
    if (!s) {
      s = { group: null, runs: [], failedStarts: [], changedAt: ++this.changes };
      this.states.set(address, s);
    }
    if (s.group) return;
    let g = this.groups.find((x) => x.addresses.size < this.groupSize);
    if (!g) {
      g = {
        addresses: new Set(),
        child: null,
        run: null,
        pending: null,
        failuresInARow: 0,
        closed: Promise.resolve(),
      };
      this.groups.push(g);
    }
    g.addresses.add(address);
    s.group = g;
    this.restartSoon(g, 0);
  }

  private async remove(address: string): Promise<ProbeSample[]> {
    const s = this.states.get(address);
    const g = s?.group;
    if (s && g) {
      g.addresses.delete(address);
      s.group = null;
      this.restartSoon(g, 0);
      await this.halt(g);
    }
    const out = this.samples(address);
    this.states.delete(address);
    return out;
  }

  private restartSoon(g: Group, delayMs: number): void {
    if (g.pending) clearTimeout(g.pending);
    g.pending = setTimeout(() => {
      g.pending = null;
      void this.halt(g).then(() => this.relaunch(g));
    }, delayMs);
    g.pending.unref();
  }

  /** Stops the group's fping (SIGINT, SIGKILL after 2 s) and waits until it closed. */
  private async halt(g: Group): Promise<void> {
    const c = g.child;
    if (c) {
      g.child = null;
      if (c.pid !== undefined && c.exitCode === null && c.signalCode === null) {
        try {
          process.kill(c.pid, 'SIGINT');
        } catch {
          // already gone
        }
      }
      const kill = setTimeout(() => c.kill('SIGKILL'), 2_000);
      await g.closed;
      clearTimeout(kill);
    } else await g.closed;
  }

  private relaunch(g: Group): void {
    if (this.stopped || g.child || g.pending || g.addresses.size === 0) return;
    const addresses = [...g.addresses];
    const now = this.o.now ?? Date.now;
    const run: Run = {
      parser: new FpingParser(addresses, this.o.intervalMs, this.o.timeoutMs),
      addresses,
      states: addresses.map((a) => this.states.get(a)).filter((x): x is AddressState => x !== undefined),
      offset: this.runCount++ * RUN_SEQ_SPAN,
      startedAt: now(),
      ended: false,
    };
    for (const a of addresses) this.states.get(a)?.runs.push(run);
    g.run = run;
    // -i 0: no gap forced between packets to different addresses; -p paces each address.
    const args = [
      '-l',
      '-D',
      '-e',
      '-i',
      '0',
      '-p',
      String(this.o.intervalMs),
      '-t',
      String(this.o.timeoutMs),
    ];
    const fping = this.o.command ?? 'fping';
    const [cmd, argv] = this.o.netns
      ? ['ip', ['netns', 'exec', this.o.netns, fping, ...args, ...addresses]]
      : [fping, [...args, ...addresses]];
    const child = spawn(cmd as string, argv as string[], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, LC_ALL: 'C' },
    });
    g.child = child;
    let closed!: () => void;
    g.closed = new Promise((r) => {
      closed = r;
    });
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (s: string) => {
      run.parser.push(s);
      this.touch(run.states);
    });
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (s: string) => {
      // ICMP errors come on stderr, one line per probe: keep only a tail.
      this.stderrTail = (this.stderrTail + s).slice(-2_000);
    });
    const done = () => {
      if (run.ended) return;
      run.ended = true;
      run.parser.end();
      this.touch(run.states);
      closed();
      this.exited(g, run, child);
    };
    child.once('error', (e) => {
      this.stderrTail += `\n${e.message}`;
      if (child.pid === undefined) done(); // never started: no 'close' to wait for
    });
    child.once('close', done);
  }

  private exited(g: Group, run: Run, child: ChildProcess): void {
    // Halted on purpose (a membership change or stop): whoever halted it starts the next run.
    if (g.child !== child || this.stopped) return;
    g.child = null;
    const probed = run.addresses.some((a) => run.parser.samples(a).length > 0);
    if (!probed) {
      for (const a of run.addresses)
        this.states
          .get(a)
          ?.failedStarts.push({ address: a, seq: run.offset, sentAt: run.startedAt, receivedAt: null });
      this.touch(run.states);
    }
    g.failuresInARow = probed ? 0 : g.failuresInARow + 1;
    const min = this.o.restartMinMs ?? Math.max(this.o.intervalMs, 100);
    this.restartSoon(g, Math.min(this.o.restartMaxMs ?? 2_000, min * 2 ** g.failuresInARow));
  }

  private touch(states: readonly AddressState[]): void {
    const t = ++this.changes;
    for (const s of states) s.changedAt = t;
  }

  /** The address's samples across every run, in send order. */
  samples(address: string): ProbeSample[] {
    const s = this.states.get(address);
    if (!s) return [];
    const fromRuns = s.runs.flatMap((r) =>
      r.parser.samples(address).map((x) => ({ ...x, seq: r.offset + x.seq })),
    );
    return [...fromRuns, ...s.failedStarts].sort((a, b) => a.sentAt - b.sentAt);
  }

  /** Forgets the address's probes sent before `t`. */
  discardBefore(address: string, t: number): void {
    const s = this.states.get(address);
    if (!s) return;
    for (const r of s.runs) r.parser.discardBefore(address, t);
    const live = s.group?.run;
    s.runs = s.runs.filter((r) => r === live || r.parser.samples(address).length > 0);
    s.failedStarts = s.failedStarts.filter((x) => x.sentAt >= t);
    this.touch([s]);
  }

  /** Stops every fping this pool started. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const g of this.groups) if (g.pending) clearTimeout(g.pending);
    await Promise.all(this.groups.map((g) => this.halt(g)));
  }
}
