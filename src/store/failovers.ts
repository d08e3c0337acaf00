import type { Redis } from 'ioredis';
import type { FailoverRecord } from '../core/ha/timeline.ts';
import { type RedisKeys, redisKeys } from './keys.ts';

/**
 * Failover records (core/ha/timeline.ts), one per host failure, in Redis (keys `haFailovers`,
 * `haFailoversIndex`): written by the leader's ha loop as the failover goes on, read by the
 * API and the host-failure drill. Bounded: the newest `max` (default 500) are kept.
 */
export class FailoverStore {
  private readonly keys: RedisKeys;
  private readonly max: number;

  constructor(
    private readonly redis: Redis,
    prefix: string,
    o: { max?: number } = {},
  ) {
    this.keys = redisKeys(prefix);
    this.max = o.max ?? 500;
  }

  /** Stores (or replaces) records, then drops the oldest past the bound. */
  async put(records: readonly FailoverRecord[]): Promise<void> {
    if (records.length === 0) return;
    const m = this.redis.multi();
    for (const r of records) {
      m.hset(this.keys.haFailovers, r.id, JSON.stringify(r));
      m.zadd(this.keys.haFailoversIndex, r.detectedAt, r.id);
    }
    await m.exec();
    const over = (await this.redis.zcard(this.keys.haFailoversIndex)) - this.max;
    if (over <= 0) return;
    const old = await this.redis.zrange(this.keys.haFailoversIndex, '0', String(over - 1));
    if (old.length > 0)
      await this.redis
        .multi()
        .hdel(this.keys.haFailovers, ...old)
        .zrem(this.keys.haFailoversIndex, ...old)
        .exec();
  }

  async get(id: string): Promise<FailoverRecord | null> {
    const raw = await this.redis.hget(this.keys.haFailovers, id);
    return raw === null ? null : parse(raw);
  }

  /** The newest first, at most `limit`, optionally of one host only. */
  async list(o: { limit?: number; host?: string } = {}): Promise<FailoverRecord[]> {
    const limit = o.limit ?? 50;
    const ids = await this.redis.zrevrange(this.keys.haFailoversIndex, 0, o.host ? -1 : limit - 1);
    if (ids.length === 0) return [];
    const raws = await this.redis.hmget(this.keys.haFailovers, ...ids);
    return raws
      .flatMap((raw) => (raw === null ? [] : [parse(raw)]))
      .filter((r): r is FailoverRecord => r !== null && (!o.host || r.host === o.host))
      .slice(0, limit);
  }
}

function parse(raw: string): FailoverRecord | null {
  try {
    return JSON.parse(raw) as FailoverRecord;
  } catch {
    return null;
  }
}
