import type { Redis } from 'ioredis';

/**
 * Hosts in maintenance (no VM is placed there; its VMs were evacuated), shared by replicas:
 *   {prefix}maintenance            set   host names
 *   {prefix}host:{h}:evacuated     JSON  [{ vm, to }] moved off by the last evacuation
 * A copy is kept in memory for the snapshot and refreshed by refresh().
 */
export class MaintenanceBook {
  private current = new Set<string>();

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  hosts(): ReadonlySet<string> {
    return this.current;
  }

  async refresh(): Promise<void> {
    this.current = new Set(await this.redis.smembers(`${this.prefix}maintenance`));
  }

  async enter(host: string, evacuated: { vm: string; to: string }[]): Promise<void> {
    await this.redis
      .multi()
      .sadd(`${this.prefix}maintenance`, host)
      .set(`${this.prefix}host:${host}:evacuated`, JSON.stringify(evacuated))
      .exec();
    await this.refresh();
  }

  /** Leaves maintenance; returns what the last evacuation moved off the host. */
  async exit(host: string): Promise<{ vm: string; to: string }[]> {
    const raw = await this.redis.get(`${this.prefix}host:${host}:evacuated`);
    await this.redis
      .multi()
      .srem(`${this.prefix}maintenance`, host)
      .del(`${this.prefix}host:${host}:evacuated`)
      .exec();
    await this.refresh();
    try {
      return raw ? (JSON.parse(raw) as { vm: string; to: string }[]) : [];
    } catch {
      return [];
    }
  }
}
