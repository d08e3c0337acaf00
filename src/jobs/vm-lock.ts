import type { Redis } from 'ioredis';
import { type RedisKeys, redisKeys } from '../store/keys.ts';

/**
 * The one job a VM may have at a time, taken and released atomically in Redis: a hash of the
 * job's id, its BullMQ queue, the run's generation and when it was taken (Redis time), at
 * `vmJob` in store/keys.ts. A lock is free when absent, or when its holder's BullMQ job has
 * finished (`finishedOn`) or no longer exists. The check reads the holder's job hash inside the same script as the take,
 * so two takers can never both win. A holder whose job hash does not exist yet is busy for
 * `graceMs` after the take: the job is created just after its lock.
 *
 * A run of a job claims its lock with a new generation; release needs job id and generation,
 * so a stalled re-run of the same job (same id, older generation) never releases the winner's
 * lock or deletes its keys.
 */

/** One lock of a plan: the VM, and the job (id, queue) that will hold it. */
export interface LockRequest {
  vm: string;
  job: string;
  queue: string;
}

/** A change made in the same step as the locks, only when every lock was taken. */
export type LockEffect =
  | { op: 'SADD' | 'SREM'; key: string; member: string }
  | { op: 'HSET'; key: string; field: string; value: string }
  | { op: 'DEL'; key: string };

export interface LockConflict {
  vm: string;
  /** The job that holds the VM. */
  job: string;
  queue: string;
}

export type TakeResult = { ok: true } | { ok: false; conflicts: LockConflict[] };

// Shared by the scripts: the holder of a lock key, or false when free (see the class comment).
const HOLDER = `
local function holder(key, bull, grace, now)
  local t = redis.call('TYPE', key).ok
  local job, queue, at
  if t == 'string' then
    job = redis.call('GET', key); queue = 'migrate'; at = 0
  elseif t == 'hash' then
    local v = redis.call('HMGET', key, 'job', 'queue', 'at')
    job = v[1]; queue = v[2]; at = tonumber(v[3]) or 0
  else
    return false
  end
  if not job or not queue then return false end
  local h = bull .. ':' .. queue .. ':' .. job
  if redis.call('EXISTS', h) == 0 then
    if now - at < grace then return {job, queue} end
    return false
  end
  if redis.call('HEXISTS', h, 'finishedOn') == 1 then return false end
  return {job, queue}
end
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
`;

// KEYS: n lock keys, then one key per effect. ARGV: n, bull prefix, grace ms, n x (job, queue),
// then per effect: op, a, b. All locks and effects, or nothing and the conflicts.
const TAKE = `${HOLDER}
local n = tonumber(ARGV[1])
local bull, grace, now = ARGV[2], tonumber(ARGV[3]), now_ms()
local conflicts = {}
for i = 1, n do
  local h = holder(KEYS[i], bull, grace, now)
  local job = ARGV[2 + 2 * i]
  if h and h[1] ~= job then
    table.insert(conflicts, i); table.insert(conflicts, h[1]); table.insert(conflicts, h[2])
  end
end
if #conflicts > 0 then return conflicts end
-- Every effect's key must have its type before anything is written (a script is not undone).
local want = { SADD = 'set', SREM = 'set', HSET = 'hash' }
local a = 4 + 2 * n
for k = n + 1, #KEYS do
  local w, t = want[ARGV[a]], redis.call('TYPE', KEYS[k]).ok
  if w and t ~= 'none' and t ~= w then return {-1, KEYS[k], t} end
  a = a + 3
end
for i = 1, n do
  redis.call('DEL', KEYS[i])
  redis.call('HSET', KEYS[i], 'job', ARGV[2 + 2 * i], 'queue', ARGV[3 + 2 * i], 'gen', 0, 'at', now)
end
a = 4 + 2 * n
for k = n + 1, #KEYS do
  local op, x, y = ARGV[a], ARGV[a + 1], ARGV[a + 2]
  a = a + 3
  if op == 'SADD' or op == 'SREM' then redis.call(op, KEYS[k], x)
  elseif op == 'HSET' then redis.call('HSET', KEYS[k], x, y)
  elseif op == 'DEL' then redis.call('DEL', KEYS[k]) end
end
return {}`;

// KEYS: lock. ARGV: job, queue. The job's run takes a new generation; 0 when another job holds it.
const CLAIM = `
local t = redis.call('TYPE', KEYS[1]).ok
if t == 'string' then
  if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
  redis.call('DEL', KEYS[1])
  t = 'none'
end
if t == 'none' then
  local tm = redis.call('TIME')
  redis.call('HSET', KEYS[1], 'job', ARGV[1], 'queue', ARGV[2], 'gen', 1, 'at', tonumber(tm[1]) * 1000)
  return 1
end
if redis.call('HGET', KEYS[1], 'job') ~= ARGV[1] then return 0 end
return redis.call('HINCRBY', KEYS[1], 'gen', 1)`;

// KEYS: lock, then keys deleted with it. ARGV: job, gen. Only the owner's token releases.
const RELEASE = `
if redis.call('TYPE', KEYS[1]).ok ~= 'hash' then return 0 end
local v = redis.call('HMGET', KEYS[1], 'job', 'gen')
if v[1] ~= ARGV[1] or v[2] ~= ARGV[2] then return 0 end
redis.call('DEL', unpack(KEYS))
return 1`;

// KEYS: lock, key. ARGV: job, gen, value, ttl s. Sets the key only while the token owns the lock.
const SET_IF_OWNER = `
if redis.call('TYPE', KEYS[1]).ok ~= 'hash' then return 0 end
local v = redis.call('HMGET', KEYS[1], 'job', 'gen')
if v[1] ~= ARGV[1] or v[2] ~= ARGV[2] then return 0 end
redis.call('SET', KEYS[2], ARGV[3], 'EX', ARGV[4])
return 1`;

// KEYS: lock. ARGV: bull prefix, grace. The holder, or nothing when free.
const PEEK = `${HOLDER}
local h = holder(KEYS[1], ARGV[1], tonumber(ARGV[2]), now_ms())
if h then return h end
return {}`;

export class VmLocks {
  private readonly keys: RedisKeys;

  constructor(
    private readonly redis: Redis,
    prefix: string,
    /** BullMQ's key prefix (queue keys are `{bull}:{queue}:{id}`). */
    private readonly bullPrefix: string,
    private readonly graceMs = 30_000,
  ) {
    this.keys = redisKeys(prefix);
  }

  key(vm: string): string {
    return this.keys.vmJob(vm);
  }

  /** Takes every lock, and applies the effects, in one step; or nothing, and says who holds what. */
  async take(locks: readonly LockRequest[], effects: readonly LockEffect[] = []): Promise<TakeResult> {
    if (new Set(locks.map((l) => l.vm)).size !== locks.length) throw new Error('one lock per VM in a plan');
    const args: string[] = [String(locks.length), this.bullPrefix, String(this.graceMs)];
    for (const l of locks) args.push(l.job, l.queue);
    for (const e of effects)
      args.push(
        e.op,
        e.op === 'HSET' ? e.field : e.op === 'DEL' ? '' : e.member,
        e.op === 'HSET' ? e.value : '',
      );
    const keys = [...locks.map((l) => this.key(l.vm)), ...effects.map((e) => e.key)];
    const r = (await this.redis.eval(TAKE, keys.length, ...keys, ...args)) as (string | number)[];
    if (r.length === 0) return { ok: true };
    if (r[0] === -1) throw new Error(`${r[1]} is a ${r[2]}, not what the plan writes: nothing was changed`);
    const conflicts: LockConflict[] = [];
    for (let i = 0; i + 2 < r.length; i += 3)
      conflicts.push({ vm: locks[Number(r[i]) - 1]!.vm, job: String(r[i + 1]), queue: String(r[i + 2]) });
    return { ok: false, conflicts };
  }

  /** A run of `job` claims the VM's lock: its generation, or null when another job holds it. */
  async claim(vm: string, job: string, queue: string): Promise<number | null> {
    const gen = Number(await this.redis.eval(CLAIM, 1, this.key(vm), job, queue));
    return gen > 0 ? gen : null;
  }

  /** Releases the lock (and deletes `alsoDelete`) only for its owner's job and generation. */
  async release(vm: string, job: string, gen: number, alsoDelete: readonly string[] = []): Promise<boolean> {
    const r = await this.redis.eval(
      RELEASE,
      1 + alsoDelete.length,
      this.key(vm),
      ...alsoDelete,
      job,
      String(gen),
    );
    return r === 1;
  }

  /** Sets `key` only while `job` at `gen` owns the VM's lock (false: superseded). */
  async setIfOwner(
    vm: string,
    job: string,
    gen: number,
    key: string,
    value: string,
    ttlSec: number,
  ): Promise<boolean> {
    const r = await this.redis.eval(
      SET_IF_OWNER,
      2,
      this.key(vm),
      key,
      job,
      String(gen),
      value,
      String(ttlSec),
    );
    return r === 1;
  }

  /** The job that holds the VM, or null when the lock is free. */
  async holder(vm: string): Promise<{ job: string; queue: string } | null> {
    const r = (await this.redis.eval(
      PEEK,
      1,
      this.key(vm),
      this.bullPrefix,
      String(this.graceMs),
    )) as string[];
    return r.length === 2 ? { job: r[0]!, queue: r[1]! } : null;
  }
}
