import type { HostSnapshot, VmSnapshot } from '../model.ts';
import type { FilterVerdict } from '../plan.ts';
import { againstHostGroup, type Pass, rulesIn } from './context.ts';
import { FEASIBILITY_FILTERS, SCOPE_FILTERS } from './filters.ts';
import { PROFILES, type ProfileName } from './profiles.ts';
import { SCORERS } from './scorers.ts';

// The runner: filters, then the profile's scorers, for each host of a pass.

export interface HostVerdict {
  host: string;
  feasible: boolean;
  /** Every filter that rejected the host, in filter order (empty when feasible). */
  rejectedBy: FilterVerdict[];
  /** The same, as sentences. */
  reasons: string[];
  /** Weighted sum of `scores`, 0..1, higher is better; 0 when not feasible. */
  score: number;
  /** Each scorer of the profile, 0..1 (empty when not feasible: scorers run on feasible hosts). */
  scores: Record<string, number>;
  /** Against the VM's host-group rule (outside its should group, inside its should-not one): ranks after every feasible host the rule prefers. */
  outsideHostGroup?: true;
}

/** Runs every filter, then, on a feasible host, the profile's scorers. */
export function judge(pass: Pass, vm: VmSnapshot, host: HostSnapshot, profile: ProfileName): HostVerdict {
  const rejectedBy: FilterVerdict[] = [];
  for (const f of SCOPE_FILTERS) {
    const v = f.filter(pass, vm, host, profile);
    if (v) rejectedBy.push(v);
  }
  for (const f of FEASIBILITY_FILTERS) {
    const v = f.filter(pass, vm, host, profile);
    if (v) rejectedBy.push(v);
  }
  const feasible = rejectedBy.length === 0;
  const scores: Record<string, number> = {};
  let score = 0;
  if (feasible)
    for (const [name, weight] of PROFILES[profile]) {
      const s = SCORERS[name].score(pass, vm, host);
      scores[name] = s;
      score += weight * s;
    }
  const v: HostVerdict = {
    host: host.name,
    feasible,
    rejectedBy,
    reasons: rejectedBy.map((r) => r.reason),
    score,
    scores,
  };
  const g = rulesIn(pass.groups(), vm.name).hostGroup;
  if (againstHostGroup(g, host.name)) v.outsideHostGroup = true;
  return v;
}

const byRank = (a: HostVerdict, b: HostVerdict) =>
  Number(b.feasible) - Number(a.feasible) ||
  Number(a.outsideHostGroup ?? false) - Number(b.outsideHostGroup ?? false) ||
  b.score - a.score ||
  a.host.localeCompare(b.host);

function admitted(pass: Pass, vm: VmSnapshot, host: HostSnapshot): boolean {
  for (const f of SCOPE_FILTERS) if (!f.admits(pass, vm, host)) return false;
  return true;
}

/** Ranks the hosts of a pass for `vm`, feasible ones first, best first, then by name. */
export function rank(pass: Pass, vm: VmSnapshot, profile: ProfileName, everyHost = false): HostVerdict[] {
  const out: HostVerdict[] = [];
  for (const h of pass.snap.hosts.values()) {
    // The source host and other sites are not candidates; listed only when asked for.
    if (!everyHost && !admitted(pass, vm, h)) continue;
    out.push(judge(pass, vm, h, profile));
  }
  return out.sort(byRank);
}
