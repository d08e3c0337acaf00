import { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { DecisionRecord } from '../../../src/core/plan.ts';
import { DecisionStore } from '../../../src/store/decisions.ts';
import { LeaderLease } from '../../../src/store/lease.ts';
import { causeOfMove, Store } from '../../../src/store/store.ts';
import { startRedis } from '../../support/redis.ts';
import { evacuation, JOB } from '../api/decision-fixture.ts';

/** Move history against a real redis-server: each move names the job and decision behind it. */

let server: Awaited<ReturnType<typeof startRedis>>;
let redis: Redis;
let lease: LeaderLease;
let n = 0;
let prefix = '';
let store: Store;
let decisions: DecisionStore;

beforeAll(async () => {
  server = await startRedis();
  redis = new Redis(server.url);
  lease = new LeaderLease(redis, { prefix: 'kz-lease:', replicaId: 'r1', leaseMs: 10_000, renewMs: 1_000 });
  const elected = new Promise((r) => lease.once('elected', r));
  lease.start();
  await elected;
});
afterAll(async () => {
  await lease.stop();
  redis.disconnect();
  await server.stop();
});
beforeEach(() => {
  prefix = `kz-t${++n}:`;
  decisions = new DecisionStore(redis, prefix);
  // The lease's fencing token lives under its own prefix; the store's keys under the test's.
  store = new Store(redis, prefix, lease, decisions);
});

const T0 = evacuation().at;

describe('move history', () => {
  it('links a move the recorder sees to the newest recent decision that moved the VM there', async () => {
    expect(await store.recordPlacement('web1', 'h1', T0 - 60_000)).toBe(true);
    await decisions.put(evacuation());
    expect(await store.recordPlacement('web1', 'h2', T0 + 30_000)).toBe(true);
    expect(await store.recordPlacement('web1', 'h2', T0 + 40_000)).toBe(false);
    const h = await store.history('web1');
    expect(h).toEqual([
      expect.objectContaining({ kind: 'placed', from: null, to: 'h1', jobId: null, decisionId: null }),
      expect.objectContaining({
        kind: 'moved',
        from: 'h1',
        to: 'h2',
        detail: '',
        jobId: JOB.web1,
        decisionId: evacuation().id,
      }),
    ]);
  });

  it('leaves a move unlinked when no decision sent the VM to that host, or the decision is older', async () => {
    await store.recordPlacement('web1', 'h1', T0 - 60_000);
    await decisions.put(evacuation());
    // Somebody moved it to h3 by hand: the decision sent it to h2.
    await store.recordPlacement('web1', 'h3', T0 + 30_000);
    // Back on h2 long after: the decision predates the VM's time on h3.
    await store.recordPlacement('web1', 'h2', T0 + 90_000);
    const h = await store.history('web1');
    expect(h.slice(1).map((e) => [e.to, e.jobId, e.decisionId])).toEqual([
      ['h3', null, null],
      ['h2', null, null],
    ]);
  });

  it('records a move the executor reports with its cause, once', async () => {
    await store.recordPlacement('db1', 'h1', T0 - 60_000);
    const cause = { jobId: JOB.db1, decisionId: evacuation().id };
    expect(await store.recordMove('db1', 'h1', 'h3', T0 + 20_000, cause)).toBe(true);
    // The recorder sees it there afterwards, and the executor's report is not repeated.
    expect(await store.recordPlacement('db1', 'h3', T0 + 25_000)).toBe(false);
    expect(await store.recordMove('db1', 'h1', 'h3', T0 + 26_000, cause)).toBe(false);
    const h = await store.history('db1');
    expect(h).toHaveLength(2);
    expect(h[1]).toMatchObject({ kind: 'moved', from: 'h1', to: 'h3', ...cause });
    expect(await store.getPlacement('db1')).toEqual({ host: 'h3', since: T0 + 20_000 });
  });

  it('still records a move when the decision lookup fails', async () => {
    const broken = new Store(redis, prefix, lease, {
      forVm: async () => {
        throw new Error('redis went away');
      },
    });
    await broken.recordPlacement('web1', 'h1', T0 - 60_000);
    expect(await broken.recordPlacement('web1', 'h2', T0)).toBe(true);
    expect((await broken.history('web1'))[1]).toMatchObject({ to: 'h2', jobId: null, decisionId: null });
  });

  it('reads events written before the links existed', async () => {
    await redis.xadd(
      `${prefix}vm:old:history`,
      '*',
      'at',
      '5',
      'kind',
      'moved',
      'from',
      'h1',
      'to',
      'h2',
      'detail',
      '',
    );
    expect(await store.history('old')).toEqual([
      expect.objectContaining({ at: 5, kind: 'moved', detail: '', jobId: null, decisionId: null }),
    ]);
  });
});

describe('causeOfMove', () => {
  const restart: DecisionRecord = {
    ...evacuation(),
    id: 'dec-11111111-2222-4333-8444-555555555555',
    planner: 'failover',
    at: T0 + 1_000,
    vms: ['web1'],
    actions: [
      { kind: 'fence', host: 'h2' },
      { kind: 'restart-elsewhere', vm: 'web1', from: 'h2', to: 'h3' },
    ],
    jobs: [
      { id: 'job-fence', vm: null, kind: 'fence' },
      { id: 'job-restart', vm: 'web1', kind: 'restart-elsewhere' },
    ],
  };

  it('picks the newest decision that lands the VM on the host, with that action’s job', () => {
    expect(causeOfMove([evacuation(), restart], 'web1', 'h3', T0 - 1)).toEqual({
      jobId: 'job-restart',
      decisionId: restart.id,
    });
    expect(causeOfMove([restart, evacuation()], 'web1', 'h2', T0 - 1)).toEqual({
      jobId: JOB.web1,
      decisionId: evacuation().id,
    });
    expect(causeOfMove([restart, evacuation()], 'web1', 'h2', T0 + 1)).toBeNull();
    expect(causeOfMove([], 'web1', 'h2', 0)).toBeNull();
  });

  it('names the decision even when its job id is not known yet', () => {
    expect(causeOfMove([{ ...evacuation(), jobs: [] }], 'db1', 'h3', 0)).toEqual({
      jobId: null,
      decisionId: evacuation().id,
    });
  });
});
