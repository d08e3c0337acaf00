import type { ClusterSnapshot, VmSnapshot } from '../model.ts';
import { commitMove, copyCommitments, groupsOf, newPass, sharedCommitments } from '../placement/context.ts';
import { type PlacementContext, rank, toCandidates } from '../placement/index.ts';
import type { Decision } from '../plan.ts';

/**
 * The rule a restart elsewhere keeps: a VM is started on another host only once its old host
 * is known not to run it. Pure. The old host must be `fenced` (powered off by a confirmed
 * fence after its last answer); every other host that might hold the VM must be up and seen
 * not to run it; the target must be up and not in maintenance. The failover planner decides
 * restarts; `submit` and the executor check them again with this on a fresh snapshot.
 */

const ACTIVE = new Set(['running', 'paused', 'blocked', 'pmsuspended']);

export interface RestartAction {
  vm: string;
  from: string;
  to: string;
}

/** Why `vm` must not be restarted from `from` on `to` now (empty: it may). */
export function restartRefusals(snap: ClusterSnapshot, a: RestartAction): string[] {
  const out: string[] = [];
  const from = snap.hosts.get(a.from);
  const to = snap.hosts.get(a.to);
  if (!from) out.push(`no host named "${a.from}"`);
  else if (from.health !== 'fenced')
    out.push(`host ${a.from} is ${from.health}, not fenced: it might still run ${a.vm}`);
  if (!to) out.push(`no host named "${a.to}"`);
  else {
    if (to.health !== 'up') out.push(`target host ${a.to} is ${to.health}`);
    if (to.maintenance) out.push(`target host ${a.to} is in maintenance`);
  }
  if (a.from === a.to) out.push(`${a.vm} cannot restart on the host it was lost with`);
  const vm = snap.vms.get(a.vm);
  if (vm && ACTIVE.has(vm.state)) out.push(`VM "${a.vm}" is already ${vm.state} on ${vm.host}`);
  const conflict = snap.conflicts?.find((c) => c.vm === a.vm);
  if (conflict) out.push(`VM "${a.vm}" is active on ${conflict.copies.map((c) => c.host).join(' and ')}`);
  for (const h of [...snap.hosts.values()].sort((x, y) => x.name.localeCompare(y.name))) {
    if (h.name === a.from || h.health === 'up' || h.health === 'fenced') continue;
    if (h.health === 'unknown')
      out.push(`host ${h.name} is unknown (not observed yet): it might run ${a.vm}`);
    else if (h.lastKnownVms?.includes(a.vm))
      out.push(`host ${h.name} is ${h.health} and last listed ${a.vm}: it might still run it there`);
  }
  return out;
}

/** What a restart plan needs besides the snapshot (ids and time come in: planners stay pure). */
export interface RestartContext {
  id: string;
  at: number;
  ref: string;
}

/**
 * Restarts of `lost` (the VMs `hostName` last ran, as they were last seen) on other hosts of
 * the same site, with the `failover` placement profile: higher HA priority first, then larger
 * VMs (hardest to place), then by name; each placement is committed to the working copy before
 * the next. A VM that fits nowhere is refused with every host's reasons and planned again later;
 * the others go ahead (a partial recovery beats none).
 */
export function planRestarts(
  snap: ClusterSnapshot,
  hostName: string,
  lost: readonly VmSnapshot[],
  placement: PlacementContext & { haPriorityOf(vm: string): number },
  ctx: RestartContext,
): Decision {
  const decision: Decision = {
    ...ctx,
    planner: 'failover',
    reason: `host ${hostName} is fenced; its VMs restart elsewhere`,
    requestedBy: { id: 'controller', name: 'controller' },
    vms: [],
    candidates: {},
    actions: [],
    ok: true,
    refused: [],
  };
  const host = snap.hosts.get(hostName);
  if (!host)
    return { ...decision, ok: false, refused: [{ vm: '-', reasons: [`no host named "${hostName}"`] }] };
  const c = copyCommitments(sharedCommitments(snap));
  groupsOf(c, placement.rulesOf);
  const pass = newPass(snap, placement, c, { sites: [host.site], leaving: hostName });
  const order = [...lost]
    .map((v) => ({ ...v, host: hostName }))
    .sort(
      (a, b) =>
        placement.haPriorityOf(b.name) - placement.haPriorityOf(a.name) ||
        b.memoryKiB - a.memoryKiB ||
        a.name.localeCompare(b.name),
    );
  for (const vm of order) {
    decision.vms.push(vm.name);
    const ranked = rank(pass, vm, 'failover', true);
    decision.candidates[vm.name] = toCandidates(ranked);
    const best = ranked.find((v) => v.feasible && v.host !== hostName);
    if (!best) {
      decision.ok = false;
      decision.refused.push({
        vm: vm.name,
        reasons: ranked.length
          ? ranked.flatMap((v) => v.reasons.map((r) => `${v.host}: ${r}`))
          : [`no other host in site ${host.site}`],
      });
      continue;
    }
    decision.actions.push({ kind: 'restart-elsewhere', vm: vm.name, from: hostName, to: best.host });
    commitMove(c, vm, hostName, best.host);
  }
  return decision;
}
