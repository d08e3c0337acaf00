import type { Redis } from 'ioredis';
import type { DecisionRecord } from '../core/plan.ts';

/**
 * Decisions kept for explaining moves, bounded (newest kept):
 *   {prefix}decision:{id}        string  JSON DecisionRecord (expires with the index trim)
 *   {prefix}decisions            zset    id by time, trimmed to `max`
 *   {prefix}vm:{vm}:decisions    zset    id by time, per VM, trimmed to `perVm`
 */
export interface DecisionStoreOptions {
  /** Decisions kept in all (default 10,000). */
  max?: number;
  /** Decisions kept per VM (default 50). */
  perVm?: number;
}

export class DecisionStore {
  private readonly max: number;
  private readonly perVm: number;

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    o: DecisionStoreOptions = {},
  ) {
    this.max = o.max ?? 10_000;
    this.perVm = o.perVm ?? 50;
  }

  private key(id: string): string {
    return `${this.prefix}decision:${id}`;
  }

  /** Stores (or replaces) a decision and indexes it by time and by each of its VMs. */
  async put(d: DecisionRecord): Promise<void> {
    const m = this.redis.multi();
    m.set(this.key(d.id), JSON.stringify(d));
    m.zadd(`${this.prefix}decisions`, d.at, d.id);
    for (const vm of new Set(d.vms)) {
      m.zadd(`${this.prefix}vm:${vm}:decisions`, d.at, d.id);
      m.zremrangebyrank(`${this.prefix}vm:${vm}:decisions`, 0, -(this.perVm + 1));
    }
    await m.exec();
    await this.trim();
  }

  async get(id: string): Promise<DecisionRecord | null> {
    const raw = await this.redis.get(this.key(id));
    if (raw === null) return null;
    try {
      return JSON.parse(raw) as DecisionRecord;
    } catch {
      return null;
    }
  }

  /** The newest decisions that touched `vm`, newest first. */
  async forVm(vm: string, limit = 10): Promise<DecisionRecord[]> {
    const ids = await this.redis.zrevrange(`${this.prefix}vm:${vm}:decisions`, 0, limit - 1);
    const found = await Promise.all(ids.map((id) => this.get(id)));
    return found.filter((d): d is DecisionRecord => d !== null);
  }

  /** Drops the oldest decisions past `max` (their per-VM index entries point at nothing then). */
  private async trim(): Promise<void> {
    const over = (await this.redis.zcard(`${this.prefix}decisions`)) - this.max;
    if (over <= 0) return;
    const old = await this.redis.zrange(`${this.prefix}decisions`, '0', String(over - 1));
    if (old.length === 0) return;
    await this.redis
      .multi()
      .del(...old.map((id) => this.key(id)))
      .zrem(`${this.prefix}decisions`, ...old)
      .exec();
  }
}
