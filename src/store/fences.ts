import type { Redis } from 'ioredis';
import { type RedisKeys, redisKeys } from './keys.ts';

/**
 * Confirmed fences: when each host was last powered off by a fence whose method confirmed the
 * power off (key `fences` in store/keys.ts). The health model reads them (a host fenced after
 * its last answer is `fenced`, so its VMs may restart elsewhere); a later successful read of
 * the host (it was powered on again) outranks the record. A copy is kept in memory for the
 * snapshot and refreshed by refresh(), as the maintenance book does.
 */

export interface FenceRecord {
  host: string;
  method: string;
  /** When the power off was confirmed (ms since the epoch). */
  at: number;
  /** What confirmed it, in the method's words (e.g. "chassis power status: off"). */
  evidence: string;
  /** What asked for the fence: `drill:<id>`, `failover:<id>`, `operator`. */
  ref: string;
}

export class FenceBook {
  private current = new Map<string, FenceRecord>();
  private readonly keys: RedisKeys;

  constructor(
    private readonly redis: Redis,
    prefix: string,
  ) {
    this.keys = redisKeys(prefix);
  }

  /** When each host's last confirmed fence happened (from the last refresh). */
  fencedAt(host: string): number | null {
    return this.current.get(host)?.at ?? null;
  }

  records(): ReadonlyMap<string, FenceRecord> {
    return this.current;
  }

  async record(r: FenceRecord): Promise<void> {
    await this.redis.hset(this.keys.fences, r.host, JSON.stringify(r));
    this.current.set(r.host, r);
  }

  async refresh(): Promise<void> {
    const next = new Map<string, FenceRecord>();
    for (const [host, json] of Object.entries(await this.redis.hgetall(this.keys.fences))) {
      try {
        next.set(host, JSON.parse(json) as FenceRecord);
      } catch {
        // an unreadable record counts as no fence: nothing restarts on it
      }
    }
    this.current = next;
  }
}
