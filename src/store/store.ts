import type { Redis } from 'ioredis';
import { z } from 'zod';
import type { DecisionRecord } from '../core/plan.ts';
import { type RedisKeys, redisKeys } from './keys.ts';
import type { LeaderLease } from './lease.ts';

/**
 * Each VM's state in Redis: what the config wants of it, its last known domain XML, where it
 * was last seen running, and its history of placements and moves with the job and decision
 * that moved it (keys `vms`, `vmDesired`, `vmDomain`, `vmPlacement`, `vmHistory` in store/keys.ts).
 * Writes that decide (desired state, placement, history) are the leader's, fenced by its token.
 */

const desiredSchema = z.object({
  tier: z.string(),
  limits: z.string().nullable(),
  homeSite: z.string().nullable(),
  haPriority: z.number().int(),
});
const domainSchema = z.object({ host: z.string(), xml: z.string(), observedAt: z.number() });
const placementSchema = z.object({ host: z.string(), since: z.number() });

export type DesiredVm = z.infer<typeof desiredSchema>;
export type DomainRecord = z.infer<typeof domainSchema>;
export type Placement = z.infer<typeof placementSchema>;
export interface HistoryEvent {
  id: string;
  at: number;
  kind: string;
  from: string | null;
  to: string | null;
  /** Always empty; kept for readers of the old shape (jobId and decisionId say why now). */
  detail: string;
  /** The job that moved the VM, when known. */
  jobId?: string | null;
  /** The decision that job carried out, when known (`GET /v1/decisions/{id}`). */
  decisionId?: string | null;
}

/** Which job of which decision moved a VM. */
export interface MoveCause {
  jobId: string | null;
  decisionId: string | null;
}

/** Where a move's cause is looked up when the recorder, not the executor, sees it first. */
export type DecisionLookup = { forVm(vm: string, limit?: number): Promise<DecisionRecord[]> };

/** Actions that leave a VM running on a host, and which host. */
function landsOn(a: DecisionRecord['actions'][number]): { vm: string; host: string } | null {
  if (a.kind === 'migrate' || a.kind === 'restart-elsewhere' || a.kind === 'restart-from-replica')
    return { vm: a.vm, host: a.to };
  if (a.kind === 'start') return { vm: a.vm, host: a.host };
  return null;
}

/**
 * The newest decision that put `vm` on `host` and was made after `since` (when the VM was
 * last seen where it came from), with the job that carried it out. Pure.
 */
export function causeOfMove(
  decisions: readonly DecisionRecord[],
  vm: string,
  host: string,
  since: number,
): MoveCause | null {
  const newest = [...decisions].sort((a, b) => b.at - a.at);
  for (const d of newest) {
    if (d.at < since) break;
    const action = d.actions.find((a) => {
      const l = landsOn(a);
      return l !== null && l.vm === vm && l.host === host;
    });
    if (!action) continue;
    const job = d.jobs.filter((j) => j.vm === vm && j.kind === action.kind).at(-1);
    return { jobId: job?.id ?? null, decisionId: d.id };
  }
  return null;
}

/** A stored value that does not parse: names the key instead of crashing the reader. */
export class StoreCorruptError extends Error {
  override name = 'StoreCorruptError';
}

const HISTORY_MAX = 1000;

export class Store {
  private readonly keys: RedisKeys;

  constructor(
    private readonly redis: Redis,
    prefix: string,
    private readonly lease: LeaderLease,
    private readonly decisions?: DecisionLookup,
  ) {
    this.keys = redisKeys(prefix);
  }

  private async read<T>(key: string, schema: z.ZodType<T>): Promise<T | null> {
    const raw = await this.redis.get(key);
    if (raw === null) return null;
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw);
    } catch {
      throw new StoreCorruptError(`${key}: not JSON`);
    }
    const r = schema.safeParse(parsed);
    if (!r.success)
      throw new StoreCorruptError(
        `${key}: ${r.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`,
      );
    return r.data;
  }

  async putDesired(vm: string, d: DesiredVm): Promise<void> {
    await this.lease.fencedSet(this.keys.vmDesired(vm), JSON.stringify(desiredSchema.parse(d)));
    await this.redis.sadd(this.keys.vms, vm);
  }

  getDesired(vm: string): Promise<DesiredVm | null> {
    return this.read(this.keys.vmDesired(vm), desiredSchema);
  }

  async putDomain(vm: string, d: DomainRecord): Promise<void> {
    await this.lease.fencedSet(this.keys.vmDomain(vm), JSON.stringify(d));
    await this.redis.sadd(this.keys.vms, vm);
  }

  getDomain(vm: string): Promise<DomainRecord | null> {
    return this.read(this.keys.vmDomain(vm), domainSchema);
  }

  getPlacement(vm: string): Promise<Placement | null> {
    return this.read(this.keys.vmPlacement(vm), placementSchema);
  }

  /**
   * Records where the VM runs; a change of host is appended to its history, linked to the
   * job and decision that moved it when a recent decision did.
   */
  async recordPlacement(vm: string, host: string, at: number): Promise<boolean> {
    const prev = await this.getPlacement(vm).catch(() => null);
    if (prev?.host === host) return false;
    const cause = prev ? await this.lookupCause(vm, host, prev.since) : null;
    await this.place(vm, prev?.host ?? null, host, at, cause);
    return true;
  }

  /**
   * For the executor, when a job has moved `vm` from `from` to `to`: records the placement
   * and the move with its cause. False when the recorder has already seen it there.
   */
  async recordMove(vm: string, from: string, to: string, at: number, cause: MoveCause): Promise<boolean> {
    const prev = await this.getPlacement(vm).catch(() => null);
    if (prev?.host === to) return false;
    await this.place(vm, prev?.host ?? from, to, at, cause);
    return true;
  }

  private async place(
    vm: string,
    from: string | null,
    to: string,
    at: number,
    cause: MoveCause | null,
  ): Promise<void> {
    await this.lease.fencedSet(this.keys.vmPlacement(vm), JSON.stringify({ host: to, since: at }));
    await this.redis.sadd(this.keys.vms, vm);
    await this.appendHistory(vm, {
      at,
      kind: from === null ? 'placed' : 'moved',
      from,
      to,
      detail: '',
      jobId: cause?.jobId ?? null,
      decisionId: cause?.decisionId ?? null,
    });
  }

  private async lookupCause(vm: string, host: string, since: number): Promise<MoveCause | null> {
    if (!this.decisions) return null;
    try {
      return causeOfMove(await this.decisions.forVm(vm, 5), vm, host, since);
    } catch {
      return null; // the history still records the move, without its cause
    }
  }

  /** Leader-only and fenced: a deposed leader's append is refused (FencedError), not written. */
  async appendHistory(vm: string, e: Omit<HistoryEvent, 'id'>): Promise<void> {
    await this.lease.fencedAppend(this.keys.vmHistory(vm), HISTORY_MAX, [
      'at',
      String(e.at),
      'kind',
      e.kind,
      'from',
      e.from ?? '',
      'to',
      e.to ?? '',
      'detail',
      e.detail,
      ...(e.jobId ? ['jobId', e.jobId] : []),
      ...(e.decisionId ? ['decisionId', e.decisionId] : []),
    ]);
  }

  async history(vm: string, limit = 50): Promise<HistoryEvent[]> {
    const rows = await this.redis.xrevrange(this.keys.vmHistory(vm), '+', '-', 'COUNT', limit);
    return rows.reverse().map(([id, fields]) => {
      const f: Record<string, string> = {};
      for (let i = 0; i + 1 < fields.length; i += 2) f[fields[i]!] = fields[i + 1]!;
      return {
        id,
        at: Number(f.at),
        kind: f.kind ?? '',
        from: f.from || null,
        to: f.to || null,
        detail: f.detail ?? '',
        jobId: f.jobId || null,
        decisionId: f.decisionId || null,
      };
    });
  }

  async listVms(): Promise<string[]> {
    return (await this.redis.smembers(this.keys.vms)).sort();
  }
}
