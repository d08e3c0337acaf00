import { EventEmitter } from 'node:events';
import type { Redis } from 'ioredis';
import { redisKeys } from './keys.ts';

/** A leader-only write refused because a newer leader holds a higher fencing token. */
export class FencedError extends Error {
  override name = 'FencedError';
}

export interface LeaseOptions {
  /** Key prefix of the cluster, e.g. `keizoku:prod:`. */
  prefix: string;
  replicaId: string;
  leaseMs: number;
  renewMs: number;
  /** Stop acting this long before the lease could expire in Redis (clock drift, slow calls). */
  safetyMs?: number;
  /**
   * With replicas (Sentinel): how long a new token may take to reach a replica before this
   * replica acts on it. Redis copies to replicas asynchronously, so a token the primary drew
   * just before it died is not on the promoted replica, which would draw it again for another
   * replica: two leaders sharing one token, each passing the other's fencing. Unset: no wait.
   */
  replicaAckMs?: number;
  now?: () => number;
}

// Take the lease only if free, and only then draw the next fencing token.
const ACQUIRE = `
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  local t = redis.call('INCR', KEYS[2])
  redis.call('SET', KEYS[1], ARGV[1] .. ':' .. t, 'PX', ARGV[2])
  return t
end
return false`;
const RENEW = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`;
const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;
// A write by the holder of the newest token only; a paused old leader gets FENCED.
const FENCED_SET = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return redis.error_reply('FENCED') end
redis.call('SET', KEYS[2], ARGV[2])
return 1`;

// Only the holder of the newest token gets 1; a paused old leader gets FENCED.
const FENCE_CHECK = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return redis.error_reply('FENCED') end
return 1`;
// An append to a stream by the holder of the newest token only. ARGV: token, maxlen, fields.
const FENCED_XADD = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return redis.error_reply('FENCED') end
return redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', unpack(ARGV, 3))`;

/**
 * Leader election with a fencing token. Only the holder runs decision loops; every leader-only
 * write goes through `fencedSet`, which Redis refuses unless the writer's token is the newest.
 * Emits 'elected' (token) and 'deposed' (reason).
 */
export class LeaderLease extends EventEmitter {
  private timer: NodeJS.Timeout | null = null;
  private token: number | null = null;
  private validUntil = 0;
  private readonly key: string;
  private readonly tokenKey: string;
  private readonly now: () => number;

  constructor(
    private readonly redis: Redis,
    private readonly o: LeaseOptions,
  ) {
    super();
    const keys = redisKeys(o.prefix);
    this.key = keys.leader;
    this.tokenKey = keys.leaderToken;
    this.now = o.now ?? (() => performance.now());
  }

  /** The fencing token while this replica leads (and its lease is surely valid), else null. */
  get currentToken(): number | null {
    if (this.token !== null && this.now() > this.validUntil)
      this.depose('lease expired before it could be renewed');
    return this.token;
  }

  get isLeader(): boolean {
    return this.currentToken !== null;
  }

  start(): void {
    void this.tick();
    this.timer = setInterval(() => void this.tick(), this.o.renewMs);
  }

  /** Stops renewing; releases the lease if held, so a successor need not wait for expiry. */
  async stop(release = true): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    if (release && this.token !== null) {
      const value = `${this.o.replicaId}:${this.token}`;
      this.depose('stopping');
      await this.redis.eval(RELEASE, 1, this.key, value).catch(() => undefined);
    }
  }

  /** Sets key to value only if this replica's token is the newest issued. */
  async fencedSet(key: string, value: string): Promise<void> {
    await this.fenced((token) => this.redis.eval(FENCED_SET, 2, this.tokenKey, key, String(token), value));
  }

  /** Appends `fields` to the stream `key` (trimmed to about maxLen) only with the newest token. */
  async fencedAppend(key: string, maxLen: number, fields: string[]): Promise<void> {
    await this.fenced((token) =>
      this.redis.eval(FENCED_XADD, 2, this.tokenKey, key, String(token), String(maxLen), ...fields),
    );
  }

  /**
   * Resolves only while this replica leads and its token is still the newest in Redis: called
   * right before a leader-only action outside Redis (a libvirt call), which Redis cannot fence.
   * Throws FencedError (and deposes) otherwise.
   */
  async fence(): Promise<void> {
    await this.fenced((token) => this.redis.eval(FENCE_CHECK, 1, this.tokenKey, String(token)));
  }

  private async fenced(step: (token: number) => Promise<unknown>): Promise<void> {
    const token = this.currentToken;
    if (token === null) throw new FencedError('not the leader');
    try {
      await step(token);
    } catch (e) {
      if ((e as Error).message.includes('FENCED')) {
        this.depose(`fencing token ${token} is no longer the newest`);
        throw new FencedError(`write refused: fencing token ${token} is stale`);
      }
      throw e;
    }
  }

  private async tick(): Promise<void> {
    const sentAt = this.now();
    const safety = this.o.safetyMs ?? Math.min(this.o.renewMs, this.o.leaseMs / 4);
    try {
      if (this.token === null) {
        const t = await this.redis.eval(
          ACQUIRE,
          2,
          this.key,
          this.tokenKey,
          this.o.replicaId,
          String(this.o.leaseMs),
        );
        if (typeof t === 'number') {
          if (!(await this.replicated(t))) return;
          this.token = t;
          this.validUntil = sentAt + this.o.leaseMs - safety;
          this.emit('elected', t);
        }
      } else {
        const ok = await this.redis.eval(
          RENEW,
          1,
          this.key,
          `${this.o.replicaId}:${this.token}`,
          String(this.o.leaseMs),
        );
        if (ok === 1) this.validUntil = sentAt + this.o.leaseMs - safety;
        else this.depose('lease lost to another replica');
      }
    } catch {
      // Redis unreachable: keep acting only while the last renewal surely holds.
      if (this.token !== null && this.now() > this.validUntil)
        this.depose('Redis unreachable past the lease');
    }
  }

  /**
   * True once a replica holds token t (or there is no replica to be promoted). Otherwise the
   * lease is given back and 'unconfirmed' emitted: the next tick tries again with a new token.
   */
  private async replicated(t: number): Promise<boolean> {
    if (this.o.replicaAckMs === undefined) return true;
    const acked = Number(await this.redis.call('WAIT', '1', String(this.o.replicaAckMs)));
    if (acked >= 1) return true;
    const replicas = /connected_slaves:(\d+)/.exec(await this.redis.info('replication'))?.[1];
    if (Number(replicas ?? 0) === 0) return true;
    await this.redis.eval(RELEASE, 1, this.key, `${this.o.replicaId}:${t}`).catch(() => undefined);
    this.emit('unconfirmed', `fencing token ${t} reached no replica within ${this.o.replicaAckMs} ms`);
    return false;
  }

  private depose(reason: string): void {
    if (this.token === null) return;
    this.token = null;
    this.emit('deposed', reason);
  }
}
