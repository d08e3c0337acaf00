import type { ClusterSnapshot, HostSnapshot, VmSnapshot } from '../model.ts';
import type { CandidateHost } from '../plan.ts';
import { type Commitments, newPass, type PlacementContext, sharedCommitments } from './context.ts';
import type { ProfileName } from './profiles.ts';
import { type HostVerdict, judge, rank } from './runner.ts';

/**
 * Where may a VM run, and where is best: filter plugins (is this host feasible?) then score
 * plugins weighted by a profile (how good?), as in the Kubernetes scheduler. Pure: a function
 * of the snapshot and the rules. Every verdict carries the filters that rejected the host, or
 * its scores, so that a decision can show why.
 */

export {
  type Commitments,
  commitMove,
  commitments,
  type GroupIndex,
  type HostGroupRule,
  type PlacementContext,
  type VmRules,
} from './context.ts';
export { type EvacuationPlan, planEvacuation } from './evacuation.ts';
export { Code, FILTERS, type FilterPlugin } from './filters.ts';
export { PROFILES, type ProfileName } from './profiles.ts';
export { type HostVerdict, judge, rank } from './runner.ts';
export { SCORERS, type ScorerName, type ScorerPlugin } from './scorers.ts';

/** The verdict of one host for one VM. */
export function judgeHost(
  snap: ClusterSnapshot,
  vm: VmSnapshot,
  host: HostSnapshot,
  ctx: PlacementContext,
  c: Commitments = sharedCommitments(snap),
  profile: ProfileName = 'migrate',
): HostVerdict {
  return judge(newPass(snap, ctx, c), vm, host, profile);
}

/**
 * Every candidate host's verdict for `vm` (not its own host; only `sites` when given),
 * feasible ones first, best first. `everyHost` lists the others too, with their verdicts.
 */
export function rankHosts(
  snap: ClusterSnapshot,
  vm: VmSnapshot,
  ctx: PlacementContext,
  o: {
    sites?: readonly string[];
    commitments?: Commitments;
    profile?: ProfileName;
    everyHost?: boolean;
  } = {},
): HostVerdict[] {
  const pass = newPass(snap, ctx, o.commitments ?? sharedCommitments(snap), { sites: o.sites });
  return rank(pass, vm, o.profile ?? 'migrate', o.everyHost ?? false);
}

/** Verdicts as a decision records them (core/plan.ts). */
export const toCandidates = (verdicts: readonly HostVerdict[]): CandidateHost[] =>
  verdicts.map((v) => ({
    host: v.host,
    feasible: v.feasible,
    rejectedBy: v.rejectedBy,
    scores: v.scores,
    score: v.score,
  }));

/** Why a live migration of `vm` to `to` must be refused (empty: it may go). */
export function migrationRefusals(
  snap: ClusterSnapshot,
  vmName: string,
  to: string,
  ctx: PlacementContext,
): string[] {
  const vm = snap.vms.get(vmName);
  if (!vm) return [`no VM named "${vmName}"`];
  if (vm.state !== 'running') return [`${vmName} is ${vm.state}; only a running VM migrates live`];
  const dest = snap.hosts.get(to);
  if (!dest) return [`no host named "${to}"`];
  const source = snap.hosts.get(vm.host);
  const out: string[] = [];
  if (source && source.health !== 'up') out.push(`source host ${source.name} is ${source.health}`);
  return [...out, ...judgeHost(snap, vm, dest, ctx).reasons];
}
