import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redisOptions } from '../../../src/jobs/connection.ts';
import { LeaderLease } from '../../../src/store/lease.ts';
import { type SentinelGroup, startSentinelGroup } from '../../support/redis.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A new leader's fencing token must be on a replica before it acts on it: Redis replicates
 * asynchronously, and a promoted replica without the token would draw it again for another
 * replica. Real primary, replica and sentinels; the replica is held with SIGSTOP, so it takes
 * nothing from the primary meanwhile.
 */
describe('leader lease with a replica (redis.sentinels)', () => {
  let group: SentinelGroup;
  let redis: Redis;
  const replicaPid = () => group.nodes[1]!.pid;

  beforeAll(async () => {
    group = await startSentinelGroup();
    redis = new Redis({ maxRetriesPerRequest: 1, ...redisOptions(group.target) });
    redis.on('error', () => undefined);
  }, 60_000);
  afterAll(async () => {
    redis?.disconnect();
    await group?.stop();
  });

  it('acts on a token only once a replica holds it; without the wait it would lead on a token the replica never got', async () => {
    process.kill(replicaPid(), 'SIGSTOP');
    let waiting: LeaderLease | null = null;
    try {
      // Without replicaAckMs (as before): leader at once, on a token only the primary has.
      const eager = new LeaderLease(redis, {
        prefix: 'kz-eager:',
        replicaId: 'e',
        leaseMs: 5_000,
        renewMs: 200,
      });
      const eagerToken = await new Promise<number>((r) => {
        eager.once('elected', r);
        eager.start();
      });
      await eager.stop();
      expect(eagerToken).toBeGreaterThan(0);

      waiting = new LeaderLease(redis, {
        prefix: 'kz-acked:',
        replicaId: 'a',
        leaseMs: 5_000,
        renewMs: 200,
        replicaAckMs: 150,
      });
      const unconfirmed: string[] = [];
      let token: number | null = null;
      waiting.on('unconfirmed', (why: string) => unconfirmed.push(why));
      waiting.on('elected', (t: number) => {
        token = t;
      });
      waiting.start();
      for (let i = 0; i < 100 && unconfirmed.length < 3; i++) await sleep(50);
      expect(unconfirmed.length, 'tries given back while the replica is held').toBeGreaterThanOrEqual(3);
      expect(unconfirmed[0]).toMatch(/^fencing token \d+ reached no replica within 150 ms$/);
      expect(token).toBeNull();
      expect(waiting.isLeader).toBe(false);

      process.kill(replicaPid(), 'SIGCONT');
      for (let i = 0; i < 200 && token === null; i++) await sleep(50);
      expect(token, 'leader once the replica answers again').not.toBeNull();
      // The token it acts on is on the replica: a promotion now would not hand it out again.
      const replica = new Redis(group.nodes[1]!.port, '127.0.0.1', { maxRetriesPerRequest: 1 });
      try {
        expect(Number(await replica.get('kz-acked:leader:token'))).toBeGreaterThanOrEqual(token!);
      } finally {
        replica.disconnect();
      }
    } finally {
      process.kill(replicaPid(), 'SIGCONT');
      await waiting?.stop();
    }
  }, 60_000);
});
