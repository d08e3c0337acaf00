import type { ClusterSnapshot, VmSnapshot } from '../model.ts';
import { newPass } from '../placement/context.ts';
import { commitMove, commitments, type PlacementContext, rank, toCandidates } from '../placement/index.ts';
import type { Action, Decision } from '../plan.ts';

/**
 * The restart plan of a failover. Pure.
 *
 *   planRestarts(snap, requests, placement, ctx): Decision   (planner 'failover')
 *
 * Each request is a VM whose host is lost (fenced) or whose QEMU died, with its stored size.
 * Order: tier rank (0 = most critical first), then HA priority (higher first), then name.
 * Placement: the placement runner with the `failover` profile (filters: host up, not in
 * maintenance, capacity, anti-affinity, affinity/keep-together), on the VM's own site unless
 * `anySite`. A host that already failed to start the VM is used only when no other host fits.
 * Each placement is applied to a working copy of the commitments before the next is chosen.
 * A VM that fits nowhere is `refused` with every host's reasons: the caller tries again later;
 * no rule is ever broken. `ok` is false when any VM is refused, but each `restart-elsewhere`
 * action stands alone: the failover submits the placed ones and retries the refused ones.
 */

export interface FailoverPlacement extends PlacementContext {
  /** HA priority of a VM; null: the VM is not HA (never restarted by failover). */
  haPriorityOf(vm: string): number | null;
  /** Tier rank of a VM: 0 is the most critical tier, restarted first. */
  tierRankOf(vm: string): number;
}

export interface RestartRequest {
  vm: string;
  /** The host it ran on (lost, or where it died). */
  from: string;
  vcpus: number;
  memoryKiB: number;
  /** Hosts where a restart of this VM already failed during this failover. */
  failedOn?: readonly string[];
}

export interface RestartContext {
  id: string;
  at: number;
  ref: string;
  requestedBy: { id: string; name: string };
  /** Restart on any site (default: the VM's own site only). */
  anySite?: boolean;
  /** The decision's sentence (default: which hosts' HA VMs are restarted). */
  reason?: string;
}

const asVm = (r: RestartRequest): VmSnapshot => ({
  name: r.vm,
  uuid: r.vm,
  host: r.from,
  state: 'shutoff',
  vcpus: r.vcpus,
  memoryKiB: r.memoryKiB,
  cpuUsage: null,
  memoryUsedKiB: null,
});

/** Restart order: tier rank, then HA priority (higher first), then name. */
export function restartOrder(requests: readonly RestartRequest[], p: FailoverPlacement): RestartRequest[] {
  const prio = (vm: string) => p.haPriorityOf(vm) ?? Number.NEGATIVE_INFINITY;
  return [...requests].sort(
    (a, b) => p.tierRankOf(a.vm) - p.tierRankOf(b.vm) || prio(b.vm) - prio(a.vm) || a.vm.localeCompare(b.vm),
  );
}

export function planRestarts(
  snap: ClusterSnapshot,
  requests: readonly RestartRequest[],
  placement: FailoverPlacement,
  ctx: RestartContext,
): Decision {
  const c = commitments(snap);
  const actions: Action[] = [];
  const refused: Decision['refused'] = [];
  const candidates: Decision['candidates'] = {};
  const ordered = restartOrder(requests, placement);
  for (const r of ordered) {
    const vm = asVm(r);
    const from = snap.hosts.get(r.from);
    const sites = ctx.anySite || !from ? undefined : [from.site];
    const pass = newPass(snap, placement, c, { sites });
    const ranked = rank(pass, vm, 'failover');
    candidates[r.vm] = toCandidates(ranked);
    const feasible = ranked.filter((v) => v.feasible);
    const failed = new Set(r.failedOn ?? []);
    const best = feasible.find((v) => !failed.has(v.host)) ?? feasible[0];
    if (!best) {
      refused.push({
        vm: r.vm,
        reasons:
          ranked.length === 0
            ? [`no other host${sites ? ` in site ${sites[0]}` : ''}`]
            : ranked.flatMap((v) => v.reasons.map((x) => `${v.host}: ${x}`)),
      });
      continue;
    }
    actions.push({ kind: 'restart-elsewhere', vm: r.vm, from: r.from, to: best.host });
    commitMove(c, vm, r.from, best.host);
  }
  const froms = [...new Set(requests.map((r) => r.from))].sort();
  return {
    id: ctx.id,
    planner: 'failover',
    at: ctx.at,
    reason: ctx.reason ?? `restart the HA VMs of ${froms.join(', ') || 'no host'}`,
    ref: ctx.ref,
    requestedBy: ctx.requestedBy,
    vms: ordered.map((r) => r.vm),
    candidates,
    actions,
    ok: refused.length === 0,
    refused,
  };
}
