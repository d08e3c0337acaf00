import type { ClusterSnapshot } from '../model.ts';
import { type PlacementContext, planEvacuation, toCandidates } from '../placement/index.ts';
import type { Action, Decision } from '../plan.ts';

/**
 * Maintenance as decisions. Pure.
 * - Enter: the evacuation plan of core/placement (every active VM off the host, all or
 *   nothing; refused for a host that is not `up`, whose VMs are not known) with every
 *   candidate host's verdict per VM.
 * - Exit with moveBack: the VMs evacuations moved off, back to the host, if they still run
 *   elsewhere; refused for a host that is not `up`.
 */

export interface EvacuateContext {
  id: string;
  at: number;
  ref: string;
  requestedBy: { id: string; name: string };
}

/** The `vm` of a refusal that is about the whole host, not one VM (as core/placement writes it). */
export const WHOLE_HOST = '-';

export function planEnterMaintenance(
  snap: ClusterSnapshot,
  hostName: string,
  placement: PlacementContext & { haPriorityOf(vm: string): number },
  o: { anySite?: boolean },
  ctx: EvacuateContext,
): Decision {
  const plan = planEvacuation(snap, hostName, placement, { anySite: o.anySite ?? false });
  const candidates: Decision['candidates'] = {};
  for (const [vm, verdicts] of Object.entries(plan.candidates)) candidates[vm] = toCandidates(verdicts);
  const moves: Action[] = plan.moves.map((m) => ({
    kind: 'migrate',
    vm: m.vm,
    from: hostName,
    to: m.to,
    copyStorage: 'auto',
  }));
  return {
    ...ctx,
    planner: 'evacuate',
    reason: `host ${hostName} enters maintenance`,
    vms: Object.keys(plan.candidates),
    candidates,
    actions: plan.ok ? moves : [],
    ok: plan.ok,
    refused: plan.refused,
  };
}

/** Moves back to `hostName` the VMs its evacuations moved off that still run elsewhere. */
export function planExitMaintenance(
  snap: ClusterSnapshot,
  hostName: string,
  evacuated: readonly { vm: string; to: string }[],
  o: { moveBack: boolean },
  ctx: EvacuateContext,
): Decision {
  const decision: Decision = {
    ...ctx,
    planner: 'evacuate',
    reason: o.moveBack
      ? `host ${hostName} leaves maintenance; its VMs move back`
      : `host ${hostName} leaves maintenance`,
    vms: [],
    candidates: {},
    actions: [],
    ok: true,
    refused: [],
  };
  const refuse = (reason: string): Decision => ({
    ...decision,
    ok: false,
    refused: [{ vm: WHOLE_HOST, reasons: [reason] }],
  });
  const host = snap.hosts.get(hostName);
  if (!host) return refuse(`no host named "${hostName}"`);
  if (!o.moveBack) return decision;
  if (host.health !== 'up') return refuse(`host ${hostName} is ${host.health}: its VMs cannot move back`);
  for (const e of evacuated) {
    const vm = snap.vms.get(e.vm);
    if (vm?.state !== 'running' || vm.host === hostName) continue;
    decision.vms.push(vm.name);
    decision.actions.push({ kind: 'migrate', vm: vm.name, from: vm.host, to: hostName, copyStorage: 'auto' });
  }
  return decision;
}

/** A refused decision's reasons as one sentence per VM (the whole host's without a prefix). */
export function refusalText(d: Decision): string {
  return d.refused
    .map((r) => (r.vm === WHOLE_HOST ? r.reasons.join('; ') : `${r.vm}: ${r.reasons.join('; ')}`))
    .join(' | ');
}
