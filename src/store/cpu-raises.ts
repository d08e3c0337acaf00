import type { Redis } from 'ioredis';
import type { CpuRaise } from '../core/limits.ts';
import { redisKeys } from './keys.ts';

/**
 * The CPU caps DRS raised within a VM's burst allowance. The executor's raise action writes one
 * before it changes the cap on the host; the key expires when the raise lapses, so a controller
 * that stops renewing it (the burst is over, or it is no longer the leader) lets the limits loop
 * put the profile's cap back without anyone having to remember to.
 */
export class CpuRaises {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  async set(vm: string, raise: CpuRaise, now = Date.now()): Promise<void> {
    const ms = Math.max(1, Math.round(raise.until - now));
    await this.redis.set(redisKeys(this.prefix).vmCpuRaise(vm), JSON.stringify(raise), 'PX', ms);
  }

  async get(vm: string): Promise<CpuRaise | null> {
    const raw = await this.redis.get(redisKeys(this.prefix).vmCpuRaise(vm));
    if (!raw) return null;
    try {
      const r = JSON.parse(raw) as CpuRaise;
      return typeof r.quotaPercent === 'number' && typeof r.until === 'number' ? r : null;
    } catch {
      return null;
    }
  }
}
