import type { Redis } from 'ioredis';
import { type RedisKeys, redisKeys } from '../store/keys.ts';

/**
 * Cluster-wide counting semaphores in Redis, so that every replica's workers together respect
 * the per-host and per-cluster migration limits. A holder's claim expires unless refreshed,
 * so a crashed worker does not hold a slot forever. One zset per semaphore (`slots` in store/keys.ts).
 */

// KEYS: slot zsets. ARGV: holder, now, expiry, then one limit per key. All or none.
const ACQUIRE = `
for i, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', ARGV[2])
  if redis.call('ZSCORE', key, ARGV[1]) == false and redis.call('ZCARD', key) >= tonumber(ARGV[3 + i]) then
    return 0
  end
end
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, ARGV[3], ARGV[1])
  redis.call('PEXPIRE', key, 3600000)
end
return 1`;

export interface SlotWanted {
  name: string;
  limit: number;
}

export class Slots {
  private readonly redisKeys: RedisKeys;

  constructor(
    private readonly redis: Redis,
    prefix: string,
    private readonly ttlMs = 30_000,
  ) {
    this.redisKeys = redisKeys(prefix);
  }

  private keys(names: string[]): string[] {
    return names.map((n) => this.redisKeys.slots(n));
  }

  /** Takes one slot of each named semaphore, or none when any is full. */
  async acquire(holder: string, wanted: SlotWanted[], now = Date.now()): Promise<boolean> {
    const keys = this.keys(wanted.map((w) => w.name));
    const r = await this.redis.eval(
      ACQUIRE,
      keys.length,
      ...keys,
      holder,
      String(now),
      String(now + this.ttlMs),
      ...wanted.map((w) => String(w.limit)),
    );
    return r === 1;
  }

  /** How often a holder should refresh: well within the claim's time to live. */
  get refreshMs(): number {
    return Math.max(10, Math.floor(this.ttlMs / 3));
  }

  /**
   * Extends the holder's claims; a claim that expired meanwhile (a stall, Redis away) is taken
   * again when there is room. False: a claim is lost (its semaphore filled up without it).
   */
  async refresh(holder: string, wanted: SlotWanted[], now = Date.now()): Promise<boolean> {
    // The same step as acquire: a claim still held is extended, a lapsed one taken again if free.
    return this.acquire(holder, wanted, now);
  }

  async release(holder: string, names: string[]): Promise<void> {
    const pipe = this.redis.pipeline();
    for (const key of this.keys(names)) pipe.zrem(key, holder);
    await pipe.exec();
  }

  async holders(name: string, now = Date.now()): Promise<string[]> {
    return this.redis.zrangebyscore(this.redisKeys.slots(name), String(now), '+inf');
  }
}
