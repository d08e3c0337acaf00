import type { Redis } from 'ioredis';
import type { DecisionRecord } from '../core/plan.ts';
import { type RedisKeys, redisKeys } from './keys.ts';

/**
 * Decisions kept for explaining moves, bounded (newest kept): each record, indexed by time in
 * all and per VM (keys `decision`, `decisions`, `vmDecisions` in store/keys.ts).
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
  private readonly keys: RedisKeys;

  constructor(
    private readonly redis: Redis,
    prefix: string,
    o: DecisionStoreOptions = {},
  ) {
    this.keys = redisKeys(prefix);
    this.max = o.max ?? 10_000;
    this.perVm = o.perVm ?? 50;
  }

  /** Stores (or replaces) a decision and indexes it by time and by each of its VMs. */
  async put(d: DecisionRecord): Promise<void> {
    const m = this.redis.multi();
    m.set(this.keys.decision(d.id), JSON.stringify(d));
    m.zadd(this.keys.decisions, d.at, d.id);
    for (const vm of new Set(d.vms)) {
      m.zadd(this.keys.vmDecisions(vm), d.at, d.id);
      m.zremrangebyrank(this.keys.vmDecisions(vm), 0, -(this.perVm + 1));
    }
    await m.exec();
    await this.trim();
  }

  async get(id: string): Promise<DecisionRecord | null> {
    const raw = await this.redis.get(this.keys.decision(id));
    if (raw === null) return null;
    try {
      return JSON.parse(raw) as DecisionRecord;
    } catch {
      return null;
    }
  }

  /** The newest decisions that touched `vm`, newest first. */
  async forVm(vm: string, limit = 10): Promise<DecisionRecord[]> {
    const ids = await this.redis.zrevrange(this.keys.vmDecisions(vm), 0, limit - 1);
    const found = await Promise.all(ids.map((id) => this.get(id)));
    return found.filter((d): d is DecisionRecord => d !== null);
  }

  /** Drops the oldest decisions past `max` (their per-VM index entries point at nothing then). */
  private async trim(): Promise<void> {
    const over = (await this.redis.zcard(this.keys.decisions)) - this.max;
    if (over <= 0) return;
    const old = await this.redis.zrange(this.keys.decisions, '0', String(over - 1));
    if (old.length === 0) return;
    await this.redis
      .multi()
      .del(...old.map((id) => this.keys.decision(id)))
      .zrem(this.keys.decisions, ...old)
      .exec();
  }
}
