import type { Redis } from 'ioredis';
import { type RedisKeys, redisKeys } from './keys.ts';

/**
 * Hosts in maintenance (no VM is placed there; its VMs were evacuated), shared by replicas,
 * and what evacuations moved off each (keys `maintenance`, `hostEvacuated` in store/keys.ts).
 * Entering and leaving are written by jobs/evacuate.ts, in the same Redis step as the locks of
 * the moves. A copy is kept in memory for the snapshot and refreshed by refresh().
 */
export class MaintenanceBook {
  private current = new Set<string>();
  private readonly keys: RedisKeys;

  constructor(
    private readonly redis: Redis,
    prefix: string,
  ) {
    this.keys = redisKeys(prefix);
  }

  get setKey(): string {
    return this.keys.maintenance;
  }

  evacuatedKey(host: string): string {
    return this.keys.hostEvacuated(host);
  }

  hosts(): ReadonlySet<string> {
    return this.current;
  }

  async refresh(): Promise<void> {
    this.current = new Set(await this.redis.smembers(this.setKey));
  }

  /** What evacuations moved off the host (a JSON list left by older versions becomes the hash). */
  async evacuated(host: string): Promise<{ vm: string; to: string }[]> {
    const key = this.evacuatedKey(host);
    if ((await this.redis.type(key)) === 'string') {
      let old: { vm: string; to: string }[] = [];
      try {
        old = JSON.parse((await this.redis.get(key)) ?? '[]') as { vm: string; to: string }[];
      } catch {
        // unreadable: dropped
      }
      const m = this.redis.multi().del(key);
      for (const e of old) m.hset(key, e.vm, e.to);
      await m.exec();
    }
    return Object.entries(await this.redis.hgetall(key)).map(([vm, to]) => ({ vm, to }));
  }
}
