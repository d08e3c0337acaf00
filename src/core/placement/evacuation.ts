import type { ClusterSnapshot } from '../model.ts';
import {
  ACTIVE,
  commitMove,
  copyCommitments,
  groupsOf,
  newPass,
  type PlacementContext,
  sharedCommitments,
} from './context.ts';
import type { ProfileName } from './profiles.ts';
import { type HostVerdict, rank } from './runner.ts';

export interface EvacuationPlan {
  host: string;
  ok: boolean;
  moves: { vm: string; to: string; score: number }[];
  /**
   * VMs that fit nowhere, with each candidate host's reasons. `vm: '-'` is the plan as a whole
   * (no such host, or a host whose VMs are not known).
   */
  refused: { vm: string; reasons: string[] }[];
  /** Per VM, every candidate host's verdict when its move was chosen (for the decision). */
  candidates: Record<string, HostVerdict[]>;
}

const refuseAll = (host: string, reason: string): EvacuationPlan => ({
  host,
  ok: false,
  moves: [],
  refused: [{ vm: '-', reasons: [reason] }],
  candidates: {},
});

/**
 * Moves that empty `host` of its active VMs, onto hosts of the same site unless `anySite`.
 * Order: higher HA priority first, then smaller VMs (quicker to move), then by name. Each move
 * is applied to the working commitments before the next is chosen. All or nothing: when one
 * VM fits nowhere the plan is not ok, and nothing should be moved.
 */
export function planEvacuation(
  snap: ClusterSnapshot,
  hostName: string,
  ctx: PlacementContext & { haPriorityOf(vm: string): number },
  o: { anySite?: boolean; profile?: ProfileName } = {},
): EvacuationPlan {
  const host = snap.hosts.get(hostName);
  if (!host) return refuseAll(hostName, `no host named "${hostName}"`);
  // The snapshot lists no VMs (or stale ones) for a host that is not up: an empty plan would
  // say "nothing to move" of a host that may run VMs.
  if (host.health !== 'up')
    return refuseAll(hostName, `host ${hostName} is ${host.health}: the VMs on it are not known`);
  // The evacuated host takes nothing back while it empties.
  const hosts = new Map(snap.hosts);
  hosts.set(hostName, { ...host, maintenance: true });
  const view: ClusterSnapshot = { ...snap, hosts };
  // The view differs from the snapshot in one flag, not in VMs: start from the snapshot's
  // commitments and group index (built once per snapshot), copied since the plan moves VMs.
  const shared = sharedCommitments(snap);
  groupsOf(shared, ctx.rulesOf);
  const c = copyCommitments(shared);
  const priority = new Map<string, number>();
  const vms = [...snap.vms.values()].filter((v) => v.host === hostName && ACTIVE.has(v.state));
  for (const v of vms) priority.set(v.name, ctx.haPriorityOf(v.name));
  vms.sort(
    (a, b) =>
      priority.get(b.name)! - priority.get(a.name)! ||
      a.memoryKiB - b.memoryKiB ||
      a.name.localeCompare(b.name),
  );
  const pass = newPass(view, ctx, c, { sites: o.anySite ? undefined : [host.site], leaving: hostName });
  const plan: EvacuationPlan = { host: hostName, ok: true, moves: [], refused: [], candidates: {} };
  for (const vm of vms) {
    const ranked = rank(pass, vm, o.profile ?? 'evacuate');
    // The decision shows every host, the emptied one and other sites with the filter that
    // rejected them, so "why not there" has an answer too.
    plan.candidates[vm.name] = rank(pass, vm, o.profile ?? 'evacuate', true);
    const best = ranked.find((v) => v.feasible);
    if (!best) {
      plan.ok = false;
      plan.refused.push({
        vm: vm.name,
        reasons:
          ranked.length === 0
            ? [`no other host in site ${host.site}`]
            : ranked.flatMap((v) => v.reasons.map((r) => `${v.host}: ${r}`)),
      });
      continue;
    }
    plan.moves.push({ vm: vm.name, to: best.host, score: Number(best.score.toFixed(3)) });
    commitMove(c, vm, hostName, best.host);
  }
  return plan;
}
