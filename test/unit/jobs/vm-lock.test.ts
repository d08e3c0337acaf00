import { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { VmLocks } from '../../../src/jobs/vm-lock.ts';
import { startRedis } from '../../support/redis.ts';

const P = 'kz:test:';
const BULL = `${P}bull`;

/** The VM lock against a real redis-server: atomic take, owner-only release, plans all or nothing. */
describe('VM locks', () => {
  let server: Awaited<ReturnType<typeof startRedis>>;
  let redis: Redis;
  let locks: VmLocks;

  beforeAll(async () => {
    server = await startRedis();
    redis = new Redis(server.url);
  });
  afterAll(async () => {
    redis?.disconnect();
    await server?.stop();
  });
  beforeEach(async () => {
    await redis.flushdb();
    locks = new VmLocks(redis, P, BULL, 30_000);
  });

  /** A BullMQ job hash as BullMQ leaves it: unfinished, or with finishedOn. */
  const job = (queue: string, id: string, finished: boolean) =>
    redis.hset(`${BULL}:${queue}:${id}`, 'name', queue, ...(finished ? ['finishedOn', '1'] : []));

  it('takes a free lock, and refuses another job while the holder is unfinished', async () => {
    expect(await locks.take([{ vm: 'vm1', job: 'mig-a', queue: 'migrate' }])).toEqual({ ok: true });
    await job('migrate', 'mig-a', false);
    expect(await locks.take([{ vm: 'vm1', job: 'mig-b', queue: 'migrate' }])).toEqual({
      ok: false,
      conflicts: [{ vm: 'vm1', job: 'mig-a', queue: 'migrate' }],
    });
    expect(await locks.holder('vm1')).toEqual({ job: 'mig-a', queue: 'migrate' });
  });

  it('takes over a lock whose holder has finished or is gone, and holds one whose job is about to be created', async () => {
    await locks.take([{ vm: 'vm1', job: 'mig-a', queue: 'migrate' }]);
    // Just taken, its job not created yet: busy.
    expect((await locks.take([{ vm: 'vm1', job: 'mig-b', queue: 'migrate' }])).ok).toBe(false);
    await job('migrate', 'mig-a', true);
    expect(await locks.holder('vm1')).toBeNull();
    expect((await locks.take([{ vm: 'vm1', job: 'mig-b', queue: 'migrate' }])).ok).toBe(true);
    // A holder whose job hash is gone (removed) after the grace is free.
    const quick = new VmLocks(redis, P, BULL, 0);
    expect((await quick.take([{ vm: 'vm1', job: 'start-c', queue: 'power' }])).ok).toBe(true);
  });

  it('treats an old string lock (one job id) like a migration holding it', async () => {
    await redis.set(`${P}vm:vm1:job`, 'mig-old');
    await job('migrate', 'mig-old', false);
    expect(await locks.holder('vm1')).toEqual({ job: 'mig-old', queue: 'migrate' });
    await job('migrate', 'mig-old', true);
    expect((await locks.take([{ vm: 'vm1', job: 'mig-new', queue: 'migrate' }])).ok).toBe(true);
  });

  it('lets exactly one of many concurrent takers win a stale lock', async () => {
    // A finished holder's lock left behind (a crash before its release).
    await locks.take([{ vm: 'vm1', job: 'mig-stale', queue: 'migrate' }]);
    await job('migrate', 'mig-stale', true);
    const clients = Array.from({ length: 8 }, () => new Redis(server.url));
    try {
      const results = await Promise.all(
        clients.map((c, i) =>
          new VmLocks(c, P, BULL).take([{ vm: 'vm1', job: `mig-${i}`, queue: 'migrate' }]),
        ),
      );
      expect(results.filter((r) => r.ok)).toHaveLength(1);
      const winner = results.findIndex((r) => r.ok);
      expect(await locks.holder('vm1')).toEqual({ job: `mig-${winner}`, queue: 'migrate' });
      for (const r of results.filter((x) => !x.ok))
        expect(r).toEqual({ ok: false, conflicts: [{ vm: 'vm1', job: `mig-${winner}`, queue: 'migrate' }] });
    } finally {
      for (const c of clients) c.disconnect();
    }
  });

  it('takes every lock of a plan and applies its effects, or none and changes nothing', async () => {
    await locks.take([{ vm: 'vm2', job: 'mig-busy', queue: 'migrate' }]);
    await job('migrate', 'mig-busy', false);
    const plan = ['vm1', 'vm2', 'vm3'].map((vm) => ({ vm, job: `mig-${vm}`, queue: 'migrate' }));
    const mark = [
      { op: 'SADD' as const, key: `${P}maintenance`, member: 'h1' },
      { op: 'HSET' as const, key: `${P}host:h1:evacuated`, field: 'vm1', value: 'h2' },
    ];
    expect(await locks.take(plan, mark)).toEqual({
      ok: false,
      conflicts: [{ vm: 'vm2', job: 'mig-busy', queue: 'migrate' }],
    });
    expect(await redis.exists(`${P}vm:vm1:job`, `${P}vm:vm3:job`)).toBe(0);
    expect(await redis.sismember(`${P}maintenance`, 'h1')).toBe(0);
    await job('migrate', 'mig-busy', true);
    expect(await locks.take(plan, mark)).toEqual({ ok: true });
    expect(await redis.sismember(`${P}maintenance`, 'h1')).toBe(1);
    expect(await redis.hgetall(`${P}host:h1:evacuated`)).toEqual({ vm1: 'h2' });
    for (const vm of ['vm1', 'vm2', 'vm3'])
      expect(await locks.holder(vm)).toEqual({ job: `mig-${vm}`, queue: 'migrate' });
  });

  it('releases only for the owner: a stalled re-run of the same job never releases the winner', async () => {
    await locks.take([{ vm: 'vm1', job: 'mig-a', queue: 'migrate' }]);
    await job('migrate', 'mig-a', false);
    const first = await locks.claim('vm1', 'mig-a', 'migrate');
    const rerun = await locks.claim('vm1', 'mig-a', 'migrate');
    expect([first, rerun]).toEqual([1, 2]);
    expect(await locks.claim('vm1', 'mig-other', 'migrate')).toBeNull();
    await redis.set(`${P}job:mig-a:attempt`, '{}');
    // The first run wakes up late: it neither writes as the owner nor releases.
    expect(await locks.setIfOwner('vm1', 'mig-a', first!, `${P}job:mig-a:attempt`, 'x', 60)).toBe(false);
    expect(await locks.release('vm1', 'mig-a', first!, [`${P}job:mig-a:attempt`])).toBe(false);
    expect(await redis.get(`${P}job:mig-a:attempt`)).toBe('{}');
    expect(await locks.holder('vm1')).toEqual({ job: 'mig-a', queue: 'migrate' });
    expect(await locks.release('vm1', 'mig-a', rerun!, [`${P}job:mig-a:attempt`])).toBe(true);
    expect(await redis.exists(`${P}vm:vm1:job`, `${P}job:mig-a:attempt`)).toBe(0);
  });
});
