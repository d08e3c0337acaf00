import type { Metrics } from '../metrics/registry.ts';

/**
 * The loop runner: reconcilers say what one pass does and when to run again; the runner owns
 * the timers, single flight, leader gating, backoff after a failed pass, the duration metric
 * and the slow-pass log (as controller-runtime's controller owns them for its reconcilers).
 */

export interface PassResult {
  /** When to run again; the reconciler's interval when omitted. */
  requeueAfterMs?: number;
  /** `partial`: the pass did part of its work (a host was unreachable, a VM failed). */
  result?: 'success' | 'partial';
}

export interface Reconciler {
  /** Metric label and log name: `inventory`, `limits`, `schedules`, `state-recorder`, ... */
  readonly name: string;
  /** Decision loops run on the leader only; others (inventory) on every replica. */
  readonly leaderOnly: boolean;
  /** Default time between two passes. */
  readonly intervalMs: number;
  /** One level-triggered pass: reads state, acts on the difference. Throwing means "failed, back off". */
  pass(now: number): Promise<PassResult | undefined>;
  /** Called once when the runner stops (release connections, timers of its own). */
  close?(): Promise<void>;
}

export interface LoopRunnerOptions {
  isLeader: () => boolean;
  metrics: Pick<Metrics, 'loopDuration' | 'loopRuns'>;
  log: { warn(o: object, msg: string): void };
  clock?: () => number;
  /** A pass slower than this is logged. Default 10 s. */
  slowPassMs?: number;
  /**
   * Backoff after a failed pass: twice the reconciler's interval, doubling with each further
   * failure, up to this (never below the interval itself). Default 60 s.
   */
  maxBackoffMs?: number;
}

interface Entry {
  r: Reconciler;
  timer: NodeJS.Timeout | null;
  running: Promise<void> | null;
  failures: number;
}

export class LoopRunner {
  private readonly entries = new Map<string, Entry>();
  private started = false;
  private stopped = false;
  private stopping: Promise<void> | null = null;

  constructor(private readonly o: LoopRunnerOptions) {}

  add(r: Reconciler): void {
    if (this.entries.has(r.name)) throw new Error(`loop ${r.name} is already registered`);
    const e: Entry = { r, timer: null, running: null, failures: 0 };
    this.entries.set(r.name, e);
    if (this.started) this.schedule(e, 0);
  }

  /** Starts every loop; the first pass of each runs at once (not awaited). */
  start(): void {
    this.started = true;
    for (const e of this.entries.values()) this.schedule(e, 0);
  }

  /**
   * Runs one pass of a loop now (sharing a pass in flight) and resolves when it is done; the
   * next timed pass then counts from its end. Does nothing once the runner is stopping.
   */
  trigger(name: string): Promise<void> {
    const e = this.entries.get(name);
    if (!e) return Promise.reject(new Error(`no loop named ${name}`));
    if (this.stopped) return Promise.resolve();
    return this.run(e);
  }

  /** Stops the timers, waits for the passes in flight, then closes every reconciler (once). */
  stop(): Promise<void> {
    this.stopping ??= this.shutdown();
    return this.stopping;
  }

  private async shutdown(): Promise<void> {
    this.stopped = true;
    for (const e of this.entries.values()) {
      if (e.timer) clearTimeout(e.timer);
      e.timer = null;
    }
    await Promise.all([...this.entries.values()].map((e) => e.running));
    for (const e of this.entries.values()) {
      try {
        await e.r.close?.();
      } catch (err) {
        this.o.log.warn({ loop: e.r.name, err: (err as Error).message }, 'closing loop failed');
      }
    }
  }

  private schedule(e: Entry, delayMs: number): void {
    if (this.stopped) return;
    if (e.timer) clearTimeout(e.timer);
    e.timer = setTimeout(() => {
      e.timer = null;
      void this.run(e);
    }, delayMs);
  }

  private run(e: Entry): Promise<void> {
    e.running ??= this.once(e).finally(() => {
      e.running = null;
    });
    return e.running;
  }

  private async once(e: Entry): Promise<void> {
    // Started on the next microtask, so that `running` is set before the pass begins: a pass
    // whose first synchronous step triggers its own loop (the inventory's health callback,
    // reached from snapshot(), wakes the ha loop) shares it instead of starting a second one.
    await Promise.resolve();
    const { r } = e;
    const now = (this.o.clock ?? Date.now)();
    if (r.leaderOnly && !this.o.isLeader()) {
      this.schedule(e, r.intervalMs);
      return;
    }
    const end = this.o.metrics.loopDuration.startTimer({ loop: r.name });
    let next = r.intervalMs;
    try {
      const res = await r.pass(now);
      e.failures = 0;
      next = res?.requeueAfterMs ?? r.intervalMs;
      this.o.metrics.loopRuns.inc({ loop: r.name, result: res?.result ?? 'success' });
    } catch (err) {
      e.failures++;
      const backoff = Math.min(this.o.maxBackoffMs ?? 60_000, r.intervalMs * 2 ** Math.min(e.failures, 10));
      // A failing loop never runs more often than a healthy one.
      next = Math.max(r.intervalMs, backoff);
      this.o.metrics.loopRuns.inc({ loop: r.name, result: 'error' });
      this.o.log.warn({ loop: r.name, err: (err as Error).message, retryInMs: next }, 'loop pass failed');
    } finally {
      const seconds = end();
      if (seconds * 1000 > (this.o.slowPassMs ?? 10_000))
        this.o.log.warn({ loop: r.name, ms: Math.round(seconds * 1000) }, 'slow loop pass');
    }
    this.schedule(e, next);
  }
}
