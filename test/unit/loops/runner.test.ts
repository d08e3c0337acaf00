import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { LoopRunner, type PassResult, type Reconciler } from '../../../src/loops/runner.ts';
import { createMetrics } from '../../../src/metrics/registry.ts';

/** A reconciler whose passes record the time they were given and answer with `next()`. */
function loop(
  name: string,
  o: { leaderOnly?: boolean; intervalMs?: number; next?: () => Promise<PassResult | undefined> } = {},
) {
  const times: number[] = [];
  const close = vi.fn(async () => undefined);
  const r: Reconciler = {
    name,
    leaderOnly: o.leaderOnly ?? false,
    intervalMs: o.intervalMs ?? 1_000,
    pass: async (now) => {
      times.push(now);
      return o.next?.();
    },
    close,
  };
  return { r, times, close };
}

function deferred() {
  let resolve!: () => void;
  const promise = new Promise<undefined>((r) => {
    resolve = () => r(undefined);
  });
  return { promise, resolve };
}

describe('LoopRunner', () => {
  let metrics: ReturnType<typeof createMetrics>;
  let log: { warn: ReturnType<typeof vi.fn<(o: object, msg: string) => void>> };
  let leader: boolean;
  let runner: LoopRunner;

  beforeEach(() => {
    vi.useFakeTimers({ now: 0 });
    metrics = createMetrics();
    log = { warn: vi.fn<(o: object, msg: string) => void>() };
    leader = false;
    runner = new LoopRunner({ isLeader: () => leader, metrics, log, maxBackoffMs: 60_000 });
  });

  afterEach(async () => {
    await runner.stop();
    vi.useRealTimers();
  });

  it('runs a leader-only loop only once this replica is leader, and others everywhere', async () => {
    const decide = loop('decide', { leaderOnly: true });
    const observe = loop('observe');
    runner.add(decide.r);
    runner.add(observe.r);
    runner.start();
    await vi.advanceTimersByTimeAsync(3_500);
    expect(decide.times).toEqual([]);
    expect(observe.times).toEqual([0, 1_000, 2_000, 3_000]);

    leader = true;
    await vi.advanceTimersByTimeAsync(1_000);
    expect(decide.times).toEqual([4_000]);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(decide.times).toEqual([4_000, 5_000]);

    leader = false;
    await vi.advanceTimersByTimeAsync(3_000);
    expect(decide.times).toEqual([4_000, 5_000]);
  });

  it('runs again after requeueAfterMs when the pass asks for it, else after its interval', async () => {
    let soon = 2;
    const l = loop('l', {
      intervalMs: 10_000,
      next: async () => (soon-- > 0 ? { requeueAfterMs: 100 } : undefined),
    });
    runner.add(l.r);
    runner.start();
    await vi.advanceTimersByTimeAsync(10_250);
    expect(l.times).toEqual([0, 100, 200, 10_200]);
  });

  it('backs off twice as long after each failed pass, up to the maximum, and resets after a success', async () => {
    // Six failures, two successes, one failure, then successes.
    const outcomes = [...'ffffffssf'];
    const l = loop('l', {
      intervalMs: 1_000,
      next: async () => {
        if (outcomes.shift() === 'f') throw new Error('host said no');
        return undefined;
      },
    });
    runner = new LoopRunner({ isLeader: () => leader, metrics, log, maxBackoffMs: 10_000 });
    runner.add(l.r);
    runner.start();
    await vi.advanceTimersByTimeAsync(49_500);
    // Failures at 0, 2 s, 6 s, 14 s, 24 s, 34 s (waits 2, 4, 8, then the 10 s cap); successes
    // at 44 and 45 s; the failure at 46 s waits 2 s again, not the cap.
    expect(l.times).toEqual([
      0, 2_000, 6_000, 14_000, 24_000, 34_000, 44_000, 45_000, 46_000, 48_000, 49_000,
    ]);
    expect(log.warn).toHaveBeenCalledWith(
      { loop: 'l', err: 'host said no', retryInMs: 2_000 },
      'loop pass failed',
    );
    expect(log.warn).toHaveBeenCalledWith(
      { loop: 'l', err: 'host said no', retryInMs: 10_000 },
      'loop pass failed',
    );
  });

  it('never backs off to less than the interval of a slow loop', async () => {
    const l = loop('slow', {
      intervalMs: 120_000,
      next: async () => {
        throw new Error('down');
      },
    });
    runner.add(l.r);
    runner.start();
    await vi.advanceTimersByTimeAsync(130_000);
    expect(l.times).toEqual([0, 120_000]);
  });

  it('shares the pass in flight with a trigger instead of running a second one', async () => {
    const gate = deferred();
    let passes = 0;
    const l = loop('l', {
      next: () => {
        passes++;
        return gate.promise;
      },
    });
    runner.add(l.r);
    runner.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(passes).toBe(1);
    let triggered = false;
    const t = runner.trigger('l').then(() => {
      triggered = true;
    });
    await vi.advanceTimersByTimeAsync(5_000);
    expect(passes).toBe(1);
    expect(triggered).toBe(false);
    gate.resolve();
    await t;
    expect(passes).toBe(1);
    // The next timed pass counts from the end of the shared one.
    await vi.advanceTimersByTimeAsync(1_000);
    expect(passes).toBe(2);
    await expect(runner.trigger('nothing')).rejects.toThrow('no loop named nothing');
  });

  it('stop() waits for the pass in flight, then closes every loop, and nothing runs after', async () => {
    const gate = deferred();
    const busy = loop('busy', { next: () => gate.promise });
    const idle = loop('idle', { intervalMs: 60_000 });
    runner.add(busy.r);
    runner.add(idle.r);
    runner.start();
    await vi.advanceTimersByTimeAsync(0);
    let stopped = false;
    const s = runner.stop().then(() => {
      stopped = true;
    });
    await vi.advanceTimersByTimeAsync(2_000);
    expect(stopped).toBe(false);
    expect(busy.close).not.toHaveBeenCalled();
    gate.resolve();
    await s;
    expect(busy.close).toHaveBeenCalledTimes(1);
    expect(idle.close).toHaveBeenCalledTimes(1);
    await runner.trigger('idle');
    await vi.advanceTimersByTimeAsync(120_000);
    expect(busy.times).toEqual([0]);
    expect(idle.times).toEqual([0]);
  });

  it('counts passes by loop and result and times them by loop', async () => {
    const results: (() => Promise<PassResult | undefined>)[] = [
      async () => undefined,
      async () => ({ result: 'partial' }),
      async () => {
        throw new Error('boom');
      },
      async () => ({ result: 'success' }),
    ];
    const l = loop('limits', { intervalMs: 1_000, next: () => results.shift()!() });
    leader = true;
    const other = loop('books', { intervalMs: 100_000, leaderOnly: true });
    runner.add(l.r);
    runner.add(other.r);
    runner.start();
    // Passes at 0 (success), 1 s (partial), 2 s (error), 4 s (success, after a 2 s backoff).
    await vi.advanceTimersByTimeAsync(4_500);
    const runs = (await metrics.loopRuns.get()).values.map((v) => [v.labels.loop, v.labels.result, v.value]);
    expect(runs).toEqual(
      expect.arrayContaining([
        ['limits', 'success', 2],
        ['limits', 'partial', 1],
        ['limits', 'error', 1],
        ['books', 'success', 1],
      ]),
    );
    expect(runs).toHaveLength(4);
    const counts = (await metrics.loopDuration.get()).values
      .filter((v) => v.metricName === 'keizoku_loop_duration_seconds_count')
      .map((v) => [v.labels.loop, v.value]);
    expect(counts).toEqual(
      expect.arrayContaining([
        ['limits', 4],
        ['books', 1],
      ]),
    );
    expect(counts).toHaveLength(2);
  });

  it('refuses two loops of one name', () => {
    runner.add(loop('a').r);
    expect(() => runner.add(loop('a').r)).toThrow('loop a is already registered');
  });

  it('a pass that triggers its own loop before its first await shares itself, never runs twice at once', async () => {
    let inPass = 0;
    let most = 0;
    let passes = 0;
    const r: Reconciler = {
      name: 'reentrant',
      leaderOnly: false,
      intervalMs: 1_000,
      pass: async () => {
        passes++;
        inPass++;
        most = Math.max(most, inPass);
        // What a snapshot callback does in keizokud: wake the loop that is reading it.
        void runner.trigger('reentrant');
        await Promise.resolve();
        inPass--;
        return undefined;
      },
    };
    runner.add(r);
    await runner.trigger('reentrant');
    expect(most).toBe(1);
    expect(passes).toBe(1);
  });
});
