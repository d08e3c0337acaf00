import type { Redis } from 'ioredis';
import { assignmentFor, type DeepReadonly, type VmAssignment } from '../config/index.ts';
import { NO_LABELS, type VmLabels } from '../core/vm-labels.ts';
import { redisKeys } from './keys.ts';

/**
 * The policy in force for each VM: the config's `vms:` entry, with the fields an operator
 * overrode through the API on top. Overrides live in Redis (`policyOverrides` in store/keys.ts)
 * so every replica sees them; this keeps a copy that is refreshed on each call of
 * refresh() and at once after a change made here.
 */

export interface PolicyOverride {
  tier?: string;
  limits?: string | null;
  haPriority?: number;
}

export interface EffectivePolicy {
  tier: string;
  limits: string | null;
  haPriority: number;
  homeSite: string | null;
  recoverySite: string | null;
  source: 'config' | 'override';
}

export class PolicyBook {
  private overrides = new Map<string, PolicyOverride>();
  private readonly key: string;
  /** The config's entry for each VM asked about since the last refresh (globs are costly to match). */
  private readonly assigned = new Map<
    string,
    { labels: VmLabels; entry: DeepReadonly<VmAssignment> | undefined }
  >();

  constructor(
    private readonly redis: Redis,
    prefix: string,
    private readonly assignments: readonly DeepReadonly<VmAssignment>[],
    /** A VM's labels (from its domain metadata), which `match.labels` selects by. */
    private readonly labelsOf: (vm: string) => VmLabels = () => NO_LABELS,
  ) {
    this.key = redisKeys(prefix).policyOverrides;
  }

  async refresh(): Promise<void> {
    const all = await this.redis.hgetall(this.key);
    const next = new Map<string, PolicyOverride>();
    for (const [vm, raw] of Object.entries(all)) {
      try {
        next.set(vm, JSON.parse(raw) as PolicyOverride);
      } catch {
        // A value not written by keizokud: ignored rather than trusted.
      }
    }
    this.overrides = next;
    // Forgets the VMs that are gone.
    this.assigned.clear();
  }

  async set(vm: string, override: PolicyOverride | null): Promise<void> {
    if (override === null) await this.redis.hdel(this.key, vm);
    else await this.redis.hset(this.key, vm, JSON.stringify(override));
    await this.refresh();
  }

  policyOf(vm: string): EffectivePolicy | null {
    // The entry is kept while the VM's labels are the same object (they are replaced when the
    // metadata is read again, so a changed label is matched afresh).
    const labels = this.labelsOf(vm);
    let cached = this.assigned.get(vm);
    if (cached?.labels !== labels) {
      cached = { labels, entry: assignmentFor(this.assignments, { name: vm, labels }) };
      this.assigned.set(vm, cached);
    }
    const a = cached.entry;
    const o = this.overrides.get(vm);
    if (!a && !o?.tier) return null;
    const base: EffectivePolicy = {
      tier: a?.tier ?? '',
      limits: a?.limits ?? null,
      haPriority: a?.haPriority ?? 0,
      homeSite: a?.homeSite ?? null,
      recoverySite: a?.recoverySite ?? null,
      source: 'config',
    };
    if (!o) return base;
    return {
      ...base,
      ...(o.tier !== undefined ? { tier: o.tier } : {}),
      ...(o.limits !== undefined ? { limits: o.limits } : {}),
      ...(o.haPriority !== undefined ? { haPriority: o.haPriority } : {}),
      source: 'override',
    };
  }
}
