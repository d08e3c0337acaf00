import type { MigrationConfig } from '../../config/index.ts';
import type { Principal } from './rbac.ts';

/**
 * How far a role below operator (a vm-admin with allowMigrate) may override the migration
 * policy in POST /v1/vms/{name}/migrate (config `api.vmAdminMigrationPolicy`). A tenant must
 * not hold host and cluster slots for a day, crawl at 1 MiB/s and stall maintenance for the
 * whole cluster, or force post-copy, where a network failure loses the VM. Pure.
 */
export interface MigrationPolicyLimits {
  /** Longest `timeoutMs` it may ask for. */
  maxTimeoutMs: number;
  /** Lowest bandwidth cap it may set, MiB/s (0, unlimited, is always allowed). */
  minBandwidthMiBs: number;
  /** Whether it may turn post-copy on (`postCopyAfterIterations`, `postCopyAfterMs`). */
  allowPostCopy: boolean;
}

/** Why this principal may not ask for this policy; empty when it may. */
export function policyRefusals(
  p: Principal,
  policy: Partial<MigrationConfig>,
  limits: MigrationPolicyLimits,
): string[] {
  if (p.role === 'admin' || p.role === 'operator') return [];
  const out: string[] = [];
  if (policy.timeoutMs !== undefined && policy.timeoutMs > limits.maxTimeoutMs)
    out.push(`policy.timeoutMs may be at most ${limits.maxTimeoutMs}`);
  const bw = policy.bandwidthMiBs;
  if (bw !== undefined && bw !== 0 && bw < limits.minBandwidthMiBs)
    out.push(`policy.bandwidthMiBs must be 0 (unlimited) or at least ${limits.minBandwidthMiBs}`);
  if (!limits.allowPostCopy)
    for (const k of ['postCopyAfterIterations', 'postCopyAfterMs'] as const)
      if ((policy[k] ?? 0) > 0) out.push(`policy.${k}: post-copy is for operators`);
  return out;
}
