import type { Redis } from 'ioredis';
import type { HaState } from '../core/ha/machine.ts';
import type { FailoverRecord } from '../core/ha/timeline.ts';
import { type RedisKeys, redisKeys } from './keys.ts';

/**
 * The failover state machine's state and the HA pause, in Redis (keys `haState`, `haPause`).
 * The state is what a new leader continues from (a controller killed mid-failover resumes the
 * recovery, it does not start it again); the pause expires by itself.
 */

export interface HaPause {
  /** Epoch ms when the pause ends. */
  until: number;
  since: number;
  by: string;
  reason: string | null;
}

/** The machine's state, per VM restarting the job that runs it, and the open failover records. */
export interface HaRecord {
  machine: HaState;
  jobs: Record<string, { job: string; to: string }>;
  /** Failover records still open (absent in state saved by older versions). */
  failovers?: FailoverRecord[];
  /**
   * When each VM was last seen restarted (kept an hour): an observation of it crashed from
   * before that is stale. Saved, so a new leader does not take an old crash for a new one.
   */
  restartedAt?: Record<string, number>;
}

export class HaStore {
  private readonly keys: RedisKeys;

  constructor(
    private readonly redis: Redis,
    prefix: string,
  ) {
    this.keys = redisKeys(prefix);
  }

  async loadState(): Promise<HaRecord | null> {
    const json = await this.redis.get(this.keys.haState);
    if (!json) return null;
    try {
      return JSON.parse(json) as HaRecord;
    } catch {
      return null;
    }
  }

  async saveState(s: HaRecord): Promise<void> {
    await this.redis.set(this.keys.haState, JSON.stringify(s));
  }

  /** An operator clears a VM from `error`: the leader's next pass restarts it. */
  async requestClear(vm: string): Promise<void> {
    await this.redis.multi().sadd(this.keys.haClear, vm).expire(this.keys.haClear, 3600).exec();
  }

  /** The VMs cleared since the last call, taken at once (one leader acts on each). */
  async takeClears(): Promise<string[]> {
    return (await this.redis.spop(this.keys.haClear, 1000)) ?? [];
  }

  async pause(p: HaPause): Promise<void> {
    await this.redis.set(this.keys.haPause, JSON.stringify(p), 'PX', Math.max(1, p.until - Date.now()));
  }

  async resume(): Promise<boolean> {
    return (await this.redis.del(this.keys.haPause)) > 0;
  }

  async paused(): Promise<HaPause | null> {
    const json = await this.redis.get(this.keys.haPause);
    if (!json) return null;
    try {
      const p = JSON.parse(json) as HaPause;
      return p.until > Date.now() ? p : null;
    } catch {
      return null;
    }
  }
}
