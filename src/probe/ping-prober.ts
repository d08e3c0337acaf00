import { type ChildProcess, spawn } from 'node:child_process';
import type { ProbeSample } from './outage.ts';
import { PingParser } from './ping-parser.ts';

export interface PingProberOptions {
  intervalMs: number;
  /** ping's -W: how long the last probe waits at the end. */
  timeoutSec?: number;
  /** Runs ping inside a network namespace (`ip netns exec NS`), e.g. a probe site of a lab. */
  netns?: string;
}

/**
 * One long-lived iputils ping per address, its timestamped output parsed as it arrives. If ping
 * exits (address unreachable at start, a signal), it is started again until `stop()`.
 */
export class PingProber {
  private readonly parsers: PingParser[] = [];
  private child: ChildProcess | null = null;
  private stopped = false;

  constructor(
    readonly address: string,
    private readonly o: PingProberOptions,
  ) {}

  start(): void {
    if (this.stopped || this.child) return;
    const parser = new PingParser(this.address, this.o.intervalMs);
    this.parsers.push(parser);
    const args = [
      '-D',
      '-O',
      '-n',
      '-i',
      String(this.o.intervalMs / 1000),
      '-W',
      String(this.o.timeoutSec ?? 1),
      this.address,
    ];
    const [cmd, argv] = this.o.netns
      ? ['ip', ['netns', 'exec', this.o.netns, 'ping', ...args]]
      : ['ping', args];
    const child = spawn(cmd as string, argv as string[], { stdio: ['ignore', 'pipe', 'ignore'] });
    this.child = child;
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (s: string) => parser.push(s));
    child.once('exit', () => {
      parser.push('\n');
      this.child = null;
      if (!this.stopped) setTimeout(() => this.start(), this.o.intervalMs).unref();
    });
  }

  /** Samples so far, across restarts of ping (sequence numbers are per run). */
  samples(): ProbeSample[] {
    return this.parsers.flatMap((p, run) =>
      p.samples().map((s) => ({ ...s, seq: run * 1_000_000_000 + s.seq })),
    );
  }

  /** Drops probes sent before `beforeMs` (and the parsers of earlier ping runs left empty). */
  forget(beforeMs: number): void {
    for (const p of this.parsers) p.forget(beforeMs);
    while (this.parsers.length > 1 && this.parsers[0]!.samples().length === 0) this.parsers.shift();
  }

  /** The pid of the running ping, for teardown by pid. */
  get pid(): number | null {
    return this.child?.pid ?? null;
  }

  /** Stops ping by its pid and waits for its last lines. */
  async stop(): Promise<ProbeSample[]> {
    this.stopped = true;
    const c = this.child;
    if (c && c.exitCode === null) {
      const exited = new Promise((r) => c.once('exit', r));
      c.kill('SIGINT');
      await exited;
    }
    return this.samples();
  }
}
