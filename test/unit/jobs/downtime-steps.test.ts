import { describe, expect, it } from 'vitest';
import { type JobHandle, runMigration } from '../../../src/jobs/migrate.ts';
import { fakeMove, movePorts, moveRequest, policy } from './fake-move.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const job: JobHandle = {
  id: 'j',
  progress: async () => undefined,
  heartbeat: async () => undefined,
  cancelled: async () => false,
};

describe('switch-over limit raised by iteration (migration.maxDowntimeSteps)', () => {
  it('starts at maxDowntimeMs and raises it once per step reached, never down, recorded with the move', async () => {
    const f = fakeMove();
    const p = policy({
      maxDowntimeMs: 50,
      maxDowntimeSteps: [
        { afterIterations: 3, maxDowntimeMs: 100 },
        { afterIterations: 5, maxDowntimeMs: 80 },
        { afterIterations: 6, maxDowntimeMs: 300 },
      ],
      progressIntervalMs: 5,
    });
    const run = runMigration(moveRequest, job, movePorts(f, p), async () => true);
    const readsAfter = async (n: number) => {
      const start = f.statsReads.length;
      while (f.statsReads.length < start + n) await sleep(2);
    };
    await readsAfter(3);
    expect(f.maxDowntimeSets).toEqual([50]);
    f.iteration = 2;
    await readsAfter(3);
    expect(f.maxDowntimeSets).toEqual([50]);
    f.iteration = 3;
    await readsAfter(3);
    expect(f.maxDowntimeSets).toEqual([50, 100]);
    // 80 after iteration 5 is below the 100 already allowed: nothing changes.
    f.iteration = 5;
    await readsAfter(3);
    expect(f.maxDowntimeSets).toEqual([50, 100]);
    f.iteration = 7;
    await readsAfter(3);
    expect(f.maxDowntimeSets).toEqual([50, 100, 300]);
    f.complete();
    const r = await run;
    expect(r.outcome).toBe('succeeded');
    expect(r.downtimeRaises.map((x) => [x.iteration, x.maxDowntimeMs])).toEqual([
      [3, 100],
      [7, 300],
    ]);
    expect(r.settings?.maxDowntimeSteps).toHaveLength(3);
  });

  it('a request that starts above every step is never raised', async () => {
    const f = fakeMove();
    const p = policy({
      maxDowntimeSteps: [{ afterIterations: 3, maxDowntimeMs: 100 }],
      progressIntervalMs: 5,
    });
    const run = runMigration(
      { ...moveRequest, policy: { maxDowntimeMs: 500 } },
      job,
      movePorts(f, p),
      async () => true,
    );
    while (f.statsReads.length < 3) await sleep(2);
    f.iteration = 9;
    const n = f.statsReads.length;
    while (f.statsReads.length < n + 3) await sleep(2);
    f.complete();
    const r = await run;
    expect(f.maxDowntimeSets).toEqual([500]);
    expect(r.downtimeRaises).toEqual([]);
  });
});
