import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bullConnection, redisOptions } from '../../../src/jobs/connection.ts';
import { LeaderLease } from '../../../src/store/lease.ts';
import { type SentinelGroup, startSentinelGroup } from '../../support/redis.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Real Redis primary, replica and three sentinels: the connections keizokud makes from
 * `redis.sentinels` (store, lease, BullMQ) follow the promoted replica after kill -9 of the
 * primary.
 */
describe('Redis connections through Sentinel', () => {
  let group: SentinelGroup;
  const closers: (() => Promise<unknown> | unknown)[] = [];

  beforeAll(async () => {
    group = await startSentinelGroup();
  }, 60_000);
  afterAll(async () => {
    for (const c of closers.reverse()) await c();
    await group?.stop();
  });

  it('the store connection, the lease and a BullMQ worker carry on on the promoted replica', async () => {
    const prefix = 'keizoku:sentinel:';
    // As keizokud makes it (its default of one retry applies without sentinels only).
    const redis = new Redis({ maxRetriesPerRequest: 1, ...redisOptions(group.target) });
    redis.on('error', () => undefined);
    closers.push(() => redis.disconnect());
    const lease = new LeaderLease(redis, { prefix, replicaId: 'a', leaseMs: 8_000, renewMs: 500 });
    const elected = new Promise<number>((r) => lease.once('elected', r));
    lease.start();
    closers.push(() => lease.stop());
    const token = await elected;
    const deposed: string[] = [];
    lease.on('deposed', (why: string) => deposed.push(why));
    await lease.fencedSet(`${prefix}before`, 'written');

    const queue = new Queue('t', { connection: bullConnection(group.target), prefix: `${prefix}bull` });
    closers.push(() => queue.close());
    const done: string[] = [];
    const worker = new Worker(
      't',
      async (job) => {
        done.push(job.id!);
      },
      { connection: bullConnection(group.target), prefix: `${prefix}bull` },
    );
    closers.push(() => worker.close());
    worker.on('error', () => undefined);
    await queue.add('x', {}, { jobId: 'j1' });
    for (let i = 0; i < 100 && !done.includes('j1'); i++) await sleep(50);
    expect(done).toEqual(['j1']);
    // The replica has what the primary was told (it is promoted with it).
    await redis.wait(1, 2_000);

    const killed = await group.killPrimary();
    // Sent while the primary is dead and no replica is promoted yet: the write waits for the
    // promotion instead of failing (a job's lock or slot write failing would fail its move).
    await lease.fencedSet(`${prefix}after`, 'written');
    const followedMs = Math.round(performance.now() - killed.at);
    const promoted = await group.awaitPromotion(killed.port);
    expect(promoted).toBe(group.nodes[1]!.port);
    console.log(
      `a write sent after kill -9 of the primary landed ${followedMs} ms on (down-after ${group.downAfterMs} ms)`,
    );
    expect(followedMs).toBeGreaterThanOrEqual(group.downAfterMs);
    const direct = new Redis(promoted, '127.0.0.1');
    closers.push(() => direct.disconnect());
    expect(await direct.get(`${prefix}before`)).toBe('written');
    expect(await direct.get(`${prefix}after`)).toBe('written');
    // The lease held throughout (8 s is longer than the promotion): the same token leads.
    expect(lease.currentToken).toBe(token);
    expect(deposed).toEqual([]);
    await queue.add('x', {}, { jobId: 'j2' });
    for (let i = 0; i < 200 && !done.includes('j2'); i++) await sleep(50);
    expect(done).toEqual(['j1', 'j2']);
    expect(await queue.getJobState('j1')).toBe('completed');
  }, 60_000);
});
