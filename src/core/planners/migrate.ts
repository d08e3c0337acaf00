import type { ClusterSnapshot } from '../model.ts';
import { migrationRefusals, type PlacementContext, rankHosts, toCandidates } from '../placement/index.ts';
import type { Decision, PlannerName } from '../plan.ts';

/**
 * One live migration as a decision: the destination given, or the best feasible host of the
 * VM's site, with every host of the site judged (the verdicts say why there and not elsewhere).
 */

export interface MigrateContext {
  id: string;
  at: number;
  planner: PlannerName;
  ref: string;
  requestedBy: { id: string; name: string };
}

export interface MigrateOptions {
  /** Destination; default: the best feasible host of the VM's site. */
  to?: string;
  copyStorage: boolean | 'auto';
  policy?: Record<string, unknown>;
}

export function planMigration(
  snap: ClusterSnapshot,
  vmName: string,
  o: MigrateOptions,
  placement: PlacementContext,
  ctx: MigrateContext,
): Decision {
  const base = {
    id: ctx.id,
    planner: ctx.planner,
    at: ctx.at,
    ref: ctx.ref,
    requestedBy: ctx.requestedBy,
    vms: [vmName],
  };
  const refuse = (reasons: string[], candidates: Decision['candidates'] = {}): Decision => ({
    ...base,
    reason: `migrate ${vmName}`,
    candidates,
    actions: [],
    ok: false,
    refused: [{ vm: vmName, reasons }],
  });
  const vm = snap.vms.get(vmName);
  if (!vm) return refuse([`no VM named "${vmName}"`]);
  const site = snap.hosts.get(vm.host)?.site;
  const ranked = toCandidates(rankHosts(snap, vm, placement, site ? { sites: [site] } : {}));
  const candidates = { [vmName]: ranked };
  const to = o.to ?? ranked.find((c) => c.feasible)?.host;
  if (to === undefined) return refuse([`no host in site ${site} can take ${vmName}`], candidates);
  const refusals = migrationRefusals(snap, vmName, to, placement);
  if (refusals.length > 0) return refuse(refusals, candidates);
  return {
    ...base,
    reason:
      o.to === undefined ? `move ${vmName} to the best host of ${site}: ${to}` : `move ${vmName} to ${to}`,
    candidates,
    actions: [
      {
        kind: 'migrate',
        vm: vmName,
        from: vm.host,
        to,
        copyStorage: o.copyStorage,
        ...(o.policy ? { policy: o.policy } : {}),
      },
    ],
    ok: true,
    refused: [],
  };
}
