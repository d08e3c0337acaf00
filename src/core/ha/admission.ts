import type { ClusterSnapshot, HostSnapshot, VmSnapshot } from '../model.ts';
import { ACTIVE } from '../placement/context.ts';
import type { Decision } from '../plan.ts';
import {
  type FailoverPlacement,
  planRestarts,
  type RestartContext,
  type RestartRequest,
} from './restart-plan.ts';

/**
 * HA admission control. Pure.
 *
 *   whatIf(snap, failHosts, placement, ctx): Decision
 *     the restart plan a real failure of `failHosts` would run (planRestarts on a view where
 *     those hosts are down and their VMs gone).
 *   checkAdmission(snap, change, placement, policy): null | { code, reason }
 *     refuses a start or placement that would leave some HA VM unable to restart after the
 *     worst `toleratedHostFailures` host failures (every combination of that many up hosts is
 *     tried), or that would commit more than (1 - reservedShare) of a site's guest memory.
 *     A combination that already failed before the change refuses only if the change makes
 *     more VMs fit nowhere.
 */

export interface AdmissionPolicy {
  /** Host failures the HA VMs must survive (0: no check). */
  toleratedHostFailures?: number;
  /** Share 0..1 of each site's guest memory kept free for restarts. */
  reservedShare?: number;
}

/** A VM to start on (or place on) `host`, with its size. */
export interface AdmissionChange {
  vm: string;
  host: string;
  vcpus: number;
  memoryKiB: number;
}

export interface AdmissionRefusal {
  code: 'HaFailuresNotTolerated' | 'HaCapacityReserved';
  reason: string;
}

/** The snapshot as if `failHosts` were down, with the HA VMs they ran as restart requests. */
function failedView(
  snap: ClusterSnapshot,
  failHosts: readonly string[],
  placement: FailoverPlacement,
): { view: ClusterSnapshot; requests: RestartRequest[] } {
  const failed = new Set(failHosts);
  const hosts = new Map<string, HostSnapshot>();
  for (const [n, h] of snap.hosts) hosts.set(n, failed.has(n) ? { ...h, health: 'down', vms: [] } : h);
  const vms = new Map<string, VmSnapshot>();
  const requests: RestartRequest[] = [];
  for (const [n, v] of snap.vms) {
    if (!failed.has(v.host)) vms.set(n, v);
    else if (ACTIVE.has(v.state) && placement.haPriorityOf(n) !== null)
      requests.push({ vm: n, from: v.host, vcpus: v.vcpus, memoryKiB: v.memoryKiB });
  }
  return { view: { ...snap, hosts, vms }, requests };
}

export function whatIf(
  snap: ClusterSnapshot,
  failHosts: readonly string[],
  placement: FailoverPlacement,
  ctx: RestartContext,
): Decision {
  const { view, requests } = failedView(snap, failHosts, placement);
  return planRestarts(view, requests, placement, {
    ...ctx,
    reason: ctx.reason ?? `what if ${[...failHosts].sort().join(', ')} failed`,
  });
}

function combinations(items: readonly string[], k: number): string[][] {
  if (k === 0) return [[]];
  const out: string[][] = [];
  items.forEach((x, i) => {
    for (const rest of combinations(items.slice(i + 1), k - 1)) out.push([x, ...rest]);
  });
  return out;
}

const CHECK_CTX: RestartContext = {
  id: 'dec-admission',
  at: 0,
  ref: 'admission',
  requestedBy: { id: 'controller', name: 'keizokud' },
};

/** The snapshot with `change` applied: the VM running on its host. */
function withChange(snap: ClusterSnapshot, ch: AdmissionChange): ClusterSnapshot {
  const vms = new Map(snap.vms);
  vms.set(ch.vm, {
    name: ch.vm,
    uuid: snap.vms.get(ch.vm)?.uuid ?? ch.vm,
    host: ch.host,
    state: 'running',
    vcpus: ch.vcpus,
    memoryKiB: ch.memoryKiB,
    cpuUsage: null,
    memoryUsedKiB: null,
  });
  return { ...snap, vms };
}

export function checkAdmission(
  snap: ClusterSnapshot,
  change: AdmissionChange,
  placement: FailoverPlacement,
  policy: AdmissionPolicy,
): AdmissionRefusal | null {
  const after = withChange(snap, change);
  const share = policy.reservedShare ?? 0;
  const site = snap.hosts.get(change.host)?.site;
  if (share > 0 && site !== undefined) {
    let cap = 0;
    let used = 0;
    for (const h of after.hosts.values())
      if (h.site === site && h.health === 'up') cap += h.memoryKiB * placement.memoryFraction;
    for (const v of after.vms.values())
      if (ACTIVE.has(v.state) && after.hosts.get(v.host)?.site === site) used += v.memoryKiB;
    if (used > cap * (1 - share))
      return {
        code: 'HaCapacityReserved',
        reason: `starting ${change.vm} on ${change.host} would commit ${Math.round(used / 1024)} MiB of site ${site}'s ${Math.round(cap / 1024)} MiB guest memory, above the ${Math.round((1 - share) * 100)} % allowed (${Math.round(share * 100)} % is kept for HA restarts)`,
      };
  }
  const n = policy.toleratedHostFailures ?? 0;
  if (n <= 0) return null;
  const up = [...after.hosts.values()]
    .filter((h) => h.health === 'up')
    .map((h) => h.name)
    .sort();
  for (const fail of combinations(up, Math.min(n, up.length))) {
    const refusedAfter = whatIf(after, fail, placement, CHECK_CTX).refused;
    if (refusedAfter.length === 0) continue;
    const refusedBefore = whatIf(snap, fail, placement, CHECK_CTX).refused.length;
    if (refusedAfter.length <= refusedBefore) continue;
    return {
      code: 'HaFailuresNotTolerated',
      reason: `starting ${change.vm} on ${change.host} would leave ${refusedAfter.map((r) => r.vm).join(', ')} unable to restart if ${fail.join(', ')} failed (${n} host failure${n === 1 ? '' : 's'} tolerated)`,
    };
  }
  return null;
}
