import type { Redis } from 'ioredis';
import { z } from 'zod';
import type { LeaderLease } from './lease.ts';

/**
 * keizokud's state in Redis, under one prefix per cluster:
 *   {prefix}vm:{name}:desired    JSON DesiredVm         what the config wants of the VM
 *   {prefix}vm:{name}:domain     JSON DomainRecord      last known domain XML and its host
 *   {prefix}vm:{name}:placement  JSON Placement         where it was last seen running
 *   {prefix}vm:{name}:history    stream                 placement changes and moves, newest last
 *   {prefix}vms                  set                    names of every VM with state here
 *   {prefix}leader, leader:token                        the lease (lease.ts)
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
  detail: string;
}

/** A stored value that does not parse: names the key instead of crashing the reader. */
export class StoreCorruptError extends Error {
  override name = 'StoreCorruptError';
}

const HISTORY_MAX = 1000;

export class Store {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly lease: LeaderLease,
  ) {}

  private key(vm: string, what: string): string {
    return `${this.prefix}vm:${vm}:${what}`;
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
    await this.lease.fencedSet(this.key(vm, 'desired'), JSON.stringify(desiredSchema.parse(d)));
    await this.redis.sadd(`${this.prefix}vms`, vm);
  }

  getDesired(vm: string): Promise<DesiredVm | null> {
    return this.read(this.key(vm, 'desired'), desiredSchema);
  }

  async putDomain(vm: string, d: DomainRecord): Promise<void> {
    await this.lease.fencedSet(this.key(vm, 'domain'), JSON.stringify(d));
    await this.redis.sadd(`${this.prefix}vms`, vm);
  }

  getDomain(vm: string): Promise<DomainRecord | null> {
    return this.read(this.key(vm, 'domain'), domainSchema);
  }

  getPlacement(vm: string): Promise<Placement | null> {
    return this.read(this.key(vm, 'placement'), placementSchema);
  }

  /** Records where the VM runs; a change of host is appended to its history. */
  async recordPlacement(vm: string, host: string, at: number): Promise<boolean> {
    const prev = await this.getPlacement(vm).catch(() => null);
    if (prev?.host === host) return false;
    await this.lease.fencedSet(this.key(vm, 'placement'), JSON.stringify({ host, since: at }));
    await this.redis.sadd(`${this.prefix}vms`, vm);
    await this.appendHistory(vm, {
      at,
      kind: prev ? 'moved' : 'placed',
      from: prev?.host ?? null,
      to: host,
      detail: '',
    });
    return true;
  }

  async appendHistory(vm: string, e: Omit<HistoryEvent, 'id'>): Promise<void> {
    if (!this.lease.isLeader) return;
    await this.redis.xadd(
      this.key(vm, 'history'),
      'MAXLEN',
      '~',
      String(HISTORY_MAX),
      '*',
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
    );
  }

  async history(vm: string, limit = 50): Promise<HistoryEvent[]> {
    const rows = await this.redis.xrevrange(this.key(vm, 'history'), '+', '-', 'COUNT', limit);
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
      };
    });
  }

  async listVms(): Promise<string[]> {
    return (await this.redis.smembers(`${this.prefix}vms`)).sort();
  }
}
