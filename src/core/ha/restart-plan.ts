import type { ClusterSnapshot, VmSnapshot } from '../model.ts';
import { ACTIVE, newPass } from '../placement/context.ts';
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

/**
 * The affinity groups to hold back: every member is restarted now (none runs elsewhere to join)
 * and some member fits nowhere. Placing the others would split the group for good, since
 * keep-together then binds the late member to a host it does not fit on.
 */
function groupsToHold(
  snap: ClusterSnapshot,
  requests: readonly RestartRequest[],
  refused: readonly string[],
  placement: FailoverPlacement,
): Set<string> {
  const asked = new Set(requests.map((r) => r.vm));
  const running = new Set<string>();
  for (const v of snap.vms.values()) {
    const g = placement.rulesOf(v.name).affinityGroup;
    if (g && ACTIVE.has(v.state) && !asked.has(v.name)) running.add(g);
  }
  const hold = new Set<string>();
  for (const vm of refused) {
    const g = placement.rulesOf(vm).affinityGroup;
    if (
      g &&
      !running.has(g) &&
      requests.some((r) => r.vm !== vm && placement.rulesOf(r.vm).affinityGroup === g)
    )
      hold.add(g);
  }
  return hold;
}

export function planRestarts(
  snap: ClusterSnapshot,
  requests: readonly RestartRequest[],
  placement: FailoverPlacement,
  ctx: RestartContext,
): Decision {
  // Hold back split groups until a pass splits none (holding one frees room for the others).
  const hold = new Set<string>();
  const held = (r: RestartRequest) => hold.has(placement.rulesOf(r.vm).affinityGroup ?? '');
  const first = placeAll(snap, requests, placement, ctx.anySite === true);
  let placed = first;
  for (;;) {
    const more = groupsToHold(
      snap,
      requests,
      placed.refused.map((r) => r.vm),
      placement,
    );
    const before = hold.size;
    for (const g of more) hold.add(g);
    if (hold.size === before) break;
    placed = placeAll(
      snap,
      requests.filter((r) => !held(r)),
      placement,
      ctx.anySite === true,
    );
  }
  for (const r of restartOrder(requests.filter(held), placement)) {
    if (placed.refused.some((x) => x.vm === r.vm)) continue;
    const g = placement.rulesOf(r.vm).affinityGroup!;
    const members = restartOrder(requests, placement)
      .filter((x) => placement.rulesOf(x.vm).affinityGroup === g)
      .map((x) => x.vm);
    // The first pass's affinity verdicts point at where a split-off member was put: not a reason.
    const own = (first.refused.find((x) => x.vm === r.vm)?.reasons ?? []).filter(
      (x) => !x.includes(`affinity group "${g}" runs on`),
    );
    placed.refused.push({
      vm: r.vm,
      reasons: [`keep-together group "${g}" (${members.join(', ')}) fits on no single host`, ...own],
    });
    placed.candidates[r.vm] = first.candidates[r.vm] ?? [];
  }
  const ordered = restartOrder(requests, placement);
  const froms = [...new Set(requests.map((r) => r.from))].sort();
  return {
    id: ctx.id,
    planner: 'failover',
    at: ctx.at,
    reason: ctx.reason ?? `restart the HA VMs of ${froms.join(', ') || 'no host'}`,
    ref: ctx.ref,
    requestedBy: ctx.requestedBy,
    vms: ordered.map((r) => r.vm),
    candidates: placed.candidates,
    actions: placed.actions,
    ok: placed.refused.length === 0,
    refused: placed.refused,
  };
}

/** Places each request in restart order on a working copy of the commitments. */
function placeAll(
  snap: ClusterSnapshot,
  requests: readonly RestartRequest[],
  placement: FailoverPlacement,
  anySite: boolean,
): Pick<Decision, 'actions' | 'refused' | 'candidates'> {
  const c = commitments(snap);
  const actions: Action[] = [];
  const refused: Decision['refused'] = [];
  const candidates: Decision['candidates'] = {};
  const ordered = restartOrder(requests, placement);
  for (const r of ordered) {
    const vm = asVm(r);
    const from = snap.hosts.get(r.from);
    const sites = anySite || !from ? undefined : [from.site];
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
  return { actions, refused, candidates };
}
