import { type ChildProcess, spawn } from 'node:child_process';
import type { ProbeSample } from './outage.ts';
import { PingParser } from './ping-parser.ts';

export interface PingProberOptions {
  /** Time between probes, ms. iputils paces -i >= 10 ms a kernel tick late (docs/probe.md). */
  intervalMs: number;
  /** ping's -W, seconds (default 1). */
  timeoutSec?: number;
  /** Runs ping inside a network namespace (`ip netns exec NS ping ...`), e.g. a probe site of a lab. */
  netns?: string;
  /** The ping binary (default `ping`, iputils). */
  command?: string;
  /** Wait before restarting a ping that exited; doubles while runs fail, up to `restartMaxMs`. */
  restartMinMs?: number;
  restartMaxMs?: number;
  /** Wall clock, ms since the epoch; only dates runs that failed before probing. */
  now?: () => number;
}

interface Run {
  parser: PingParser;
  /** Added to ping's sequence numbers: each run starts again at 1. */
  offset: number;
  startedAt: number;
  ended: boolean;
}

const RUN_SEQ_SPAN = 2 ** 32;

/**
 * One long-lived iputils `ping -D -O -n -i INTERVAL ADDRESS` per address; its timestamped
 * output is parsed as it arrives, so no process is spawned per packet. If ping exits (no route
 * at start, killed), it is started again with backoff until `stop()`; a run that ended before
 * probing counts as one lost probe at its start, so a dead route shows up as an outage.
 */
export class PingProber {
  private readonly runs: Run[] = [];
  private readonly failedStarts: ProbeSample[] = [];
  private child: ChildProcess | null = null;
  private restartTimer: NodeJS.Timeout | null = null;
  private stopped = false;
  private failuresInARow = 0;
  private stderrTail = '';
  private runCount = 0;
  /** How many times ping was started again after exiting. */
  restarts = 0;

  constructor(
    readonly address: string,
    private readonly o: PingProberOptions,
  ) {
    if (!(o.intervalMs >= 2))
      throw new RangeError(`ping interval must be at least 2 ms, got ${o.intervalMs}`);
  }

  /** The last line ping wrote to stderr (e.g. `ping: connect: Network is unreachable`). */
  get lastError(): string | null {
    return this.stderrTail.trim().split('\n').at(-1) || null;
  }

  /** The pid of the running ping, if any. */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  start(): void {
    if (this.stopped || this.child) return;
    const now = this.o.now ?? Date.now;
    const run: Run = {
      parser: new PingParser(this.address, this.o.intervalMs),
      offset: this.runCount++ * RUN_SEQ_SPAN,
      startedAt: now(),
      ended: false,
    };
    this.runs.push(run);
    const args = ['-D', '-O', '-n', '-i', String(this.o.intervalMs / 1000)];
    args.push('-W', String(this.o.timeoutSec ?? 1), this.address);
    const ping = this.o.command ?? 'ping';
    const [cmd, argv] = this.o.netns ? ['ip', ['netns', 'exec', this.o.netns, ping, ...args]] : [ping, args];
    // LC_ALL=C: the parser reads iputils' untranslated messages.
    const child = spawn(cmd as string, argv as string[], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, LC_ALL: 'C' },
    });
    this.child = child;
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (s: string) => run.parser.push(s));
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (s: string) => {
      this.stderrTail = (this.stderrTail + s).slice(-2_000);
    });
    child.once('error', (e) => {
      this.stderrTail += `\n${e.message}`;
      if (child.pid === undefined) this.exited(run); // never started: no 'close' to wait for
    });
    child.once('close', () => this.exited(run));
  }

  private exited(run: Run): void {
    if (run.ended) return;
    run.ended = true;
    run.parser.end();
    this.child = null;
    const probed = run.parser.samples().length > 0;
    if (this.stopped) return;
    if (!probed)
      this.failedStarts.push({
        address: this.address,
        seq: run.offset,
        sentAt: run.startedAt,
        receivedAt: null,
      });
    this.failuresInARow = probed ? 0 : this.failuresInARow + 1;
    const min = this.o.restartMinMs ?? Math.max(this.o.intervalMs, 100);
    const delay = Math.min(this.o.restartMaxMs ?? 2_000, min * 2 ** this.failuresInARow);
    this.restartTimer = setTimeout(() => {
      this.restartTimer = null;
      this.restarts++;
      this.start();
    }, delay);
    this.restartTimer.unref();
  }

  /** Samples so far across all runs of ping, in send order. */
  samples(): ProbeSample[] {
    const fromRuns = this.runs.flatMap((r) =>
      r.parser.samples().map((s) => ({ ...s, seq: r.offset + s.seq })),
    );
    return [...fromRuns, ...this.failedStarts].sort((a, b) => a.sentAt - b.sentAt);
  }

  /** Forgets probes sent before `t`, keeping memory bounded in a long-running agent. */
  discardBefore(t: number): void {
    for (const r of this.runs) r.parser.discardBefore(t);
    const live = this.runs.at(-1);
    const keep = this.runs.filter((r) => r === live || r.parser.samples().length > 0);
    this.runs.splice(0, this.runs.length, ...keep);
    const starts = this.failedStarts.filter((s) => s.sentAt >= t);
    this.failedStarts.splice(0, this.failedStarts.length, ...starts);
  }

  /** Stops ping (SIGINT to its pid, SIGKILL if it lingers) and returns the samples. */
  async stop(): Promise<ProbeSample[]> {
    this.stopped = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    const c = this.child;
    if (c) {
      const closed = new Promise((r) => {
        c.once('close', r);
        if (c.pid === undefined) c.once('error', r); // spawn failed: no 'close' may come
      });
      if (c.pid !== undefined && c.exitCode === null && c.signalCode === null) {
        try {
          process.kill(c.pid, 'SIGINT');
        } catch {
          // already gone; 'close' follows
        }
      }
      const kill = setTimeout(() => c.kill('SIGKILL'), 2_000);
      await closed;
      clearTimeout(kill);
    }
    return this.samples();
  }
}
