import type { Redis } from 'ioredis';

/**
 * Hosts in maintenance (no VM is placed there; its VMs were evacuated), shared by replicas:
 *   {prefix}maintenance            set   host names
 *   {prefix}host:{h}:evacuated     hash  vm -> host it was moved to, by every evacuation
 *                                        since the host entered maintenance
 * Entering and leaving are written by jobs/evacuate.ts, in the same Redis step as the locks of
 * the moves. A copy is kept in memory for the snapshot and refreshed by refresh().
 */
export class MaintenanceBook {
  private current = new Set<string>();

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  get setKey(): string {
    return `${this.prefix}maintenance`;
  }

  evacuatedKey(host: string): string {
    return `${this.prefix}host:${host}:evacuated`;
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
