import type { Redis } from 'ioredis';

/**
 * Cluster-wide counting semaphores in Redis, so that every replica's workers together respect
 * the per-host and per-cluster migration limits. A holder's claim expires unless refreshed,
 * so a crashed worker does not hold a slot forever.
 *   {prefix}slots:{name}   zset  holder -> expiry (ms)
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

export class Slots {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly ttlMs = 30_000,
  ) {}

  private keys(names: string[]): string[] {
    return names.map((n) => `${this.prefix}slots:${n}`);
  }

  /** Takes one slot of each named semaphore, or none when any is full. */
  async acquire(
    holder: string,
    wanted: { name: string; limit: number }[],
    now = Date.now(),
  ): Promise<boolean> {
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

  async refresh(holder: string, names: string[], now = Date.now()): Promise<void> {
    const pipe = this.redis.pipeline();
    for (const key of this.keys(names)) pipe.zadd(key, 'XX', String(now + this.ttlMs), holder);
    await pipe.exec();
  }

  async release(holder: string, names: string[]): Promise<void> {
    const pipe = this.redis.pipeline();
    for (const key of this.keys(names)) pipe.zrem(key, holder);
    await pipe.exec();
  }

  async holders(name: string, now = Date.now()): Promise<string[]> {
    return this.redis.zrangebyscore(`${this.prefix}slots:${name}`, String(now), '+inf');
  }
}
