import type { ClusterSnapshot, VmSnapshot } from '../model.ts';

// What the filters and scorers read: the rules, the commitments on each host, and an index of
// group membership per host, built once per pass and kept current by commitMove.

export interface VmRules {
  /** VMs of one affinity group are kept on one host. */
  affinityGroup: string | null;
  /** No two VMs of one anti-affinity group on the same host. */
  antiAffinityGroup: string | null;
  /**
   * A VM-host rule: the VM runs only on these hosts (must), or prefers them (should: other
   * hosts rank after them, and DRS never moves the VM off them); or never runs on them
   * (must-not), or avoids them (should-not: they rank after the others, and DRS never moves
   * the VM onto them).
   */
  hostGroup?: HostGroupRule | null;
}

export type HostGroupRuleKind = 'must' | 'should' | 'must-not' | 'should-not';

export interface HostGroupRule {
  name: string;
  hosts: readonly string[];
  rule: HostGroupRuleKind;
}

/** Whether the rule would rather the VM were not on this host (a hard or a soft rule). */
export function againstHostGroup(g: HostGroupRule | null | undefined, host: string): boolean {
  if (!g) return false;
  const inGroup = g.hosts.includes(host);
  return g.rule === 'must' || g.rule === 'should' ? !inGroup : inGroup;
}

/** A hard rule (must, must-not) holds for every placement; a soft one only for DRS. */
export const hardHostGroupRule = (g: HostGroupRule) => g.rule === 'must' || g.rule === 'must-not';

export interface PlacementContext {
  rulesOf(vm: string): VmRules;
  /** Committed vCPUs may reach this many times the host's CPUs. */
  cpuOvercommit: number;
  /** Committed guest memory may reach this fraction of the host's memory. */
  memoryFraction: number;
}

/** Memory and vCPUs committed to VMs that run (or are paused) on each host. */
export interface Commitments {
  memoryKiB: Map<string, number>;
  vcpus: Map<string, number>;
  /** VM names on each host. */
  vms: Map<string, Set<string>>;
  /** Group membership per host, built on first use by the affinity filters (see groupsOf). */
  groups?: GroupIndex;
}

/** Who is in which group where, from the commitments, with every VM's rules resolved once. */
export interface GroupIndex {
  /** The rules function the index was built with (another one means another index). */
  builtWith: PlacementContext['rulesOf'];
  rules: Map<string, VmRules>;
  /** host -> anti-affinity group -> its VMs there. */
  antiOnHost: Map<string, Map<string, Set<string>>>;
  /** affinity group -> host -> its VMs there. */
  affinityHosts: Map<string, Map<string, Set<string>>>;
}

export const ACTIVE = new Set(['running', 'paused', 'blocked', 'pmsuspended']);

export function commitments(snap: ClusterSnapshot): Commitments {
  const c: Commitments = { memoryKiB: new Map(), vcpus: new Map(), vms: new Map() };
  for (const h of snap.hosts.values()) {
    c.memoryKiB.set(h.name, 0);
    c.vcpus.set(h.name, 0);
    c.vms.set(h.name, new Set());
  }
  for (const vm of snap.vms.values()) {
    if (!ACTIVE.has(vm.state)) continue;
    c.memoryKiB.set(vm.host, (c.memoryKiB.get(vm.host) ?? 0) + vm.memoryKiB);
    c.vcpus.set(vm.host, (c.vcpus.get(vm.host) ?? 0) + vm.vcpus);
    if (!c.vms.has(vm.host)) c.vms.set(vm.host, new Set());
    c.vms.get(vm.host)!.add(vm.name);
  }
  return c;
}

/**
 * The commitments of a snapshot, computed once per snapshot object for callers that only read
 * them (snapshots are immutable). Never pass the result to commitMove: copy with commitments().
 */
const readOnly = new WeakMap<ClusterSnapshot, Commitments>();
export function sharedCommitments(snap: ClusterSnapshot): Commitments {
  let c = readOnly.get(snap);
  if (!c) {
    c = commitments(snap);
    readOnly.set(snap, c);
  }
  return c;
}

/** A working copy of `c` for planning moves (the group index too, if built). */
export function copyCommitments(c: Commitments): Commitments {
  const copy: Commitments = {
    memoryKiB: new Map(c.memoryKiB),
    vcpus: new Map(c.vcpus),
    vms: new Map([...c.vms].map(([h, set]) => [h, new Set(set)])),
  };
  if (c.groups) {
    const deep = (m: Map<string, Map<string, Set<string>>>) =>
      new Map([...m].map(([k, inner]) => [k, new Map([...inner].map(([k2, set]) => [k2, new Set(set)]))]));
    copy.groups = {
      builtWith: c.groups.builtWith,
      // Rules do not change with moves: the memo is shared.
      rules: c.groups.rules,
      antiOnHost: deep(c.groups.antiOnHost),
      affinityHosts: deep(c.groups.affinityHosts),
    };
  }
  return copy;
}

const inner = <K, V>(m: Map<K, V>, k: K, make: () => V): V => {
  let v = m.get(k);
  if (v === undefined) {
    v = make();
    m.set(k, v);
  }
  return v;
};

function place(g: GroupIndex, vm: string, host: string, add: boolean): void {
  const r = rulesIn(g, vm);
  const op = (set: Set<string>) => (add ? set.add(vm) : set.delete(vm));
  if (r.antiAffinityGroup)
    op(
      inner(
        inner(g.antiOnHost, host, () => new Map()),
        r.antiAffinityGroup,
        () => new Set(),
      ),
    );
  if (r.affinityGroup)
    op(
      inner(
        inner(g.affinityHosts, r.affinityGroup, () => new Map()),
        host,
        () => new Set(),
      ),
    );
}

/** A VM's rules, resolved once per index (also for VMs that are not active, e.g. to restart). */
export function rulesIn(g: GroupIndex, vm: string): VmRules {
  return inner(g.rules, vm, () => g.builtWith(vm));
}

/** The group index of `c` under `rulesOf`: one pass over the VMs, then kept by commitMove. */
export function groupsOf(c: Commitments, rulesOf: PlacementContext['rulesOf']): GroupIndex {
  if (c.groups?.builtWith === rulesOf) return c.groups;
  const g: GroupIndex = {
    builtWith: rulesOf,
    rules: new Map(),
    antiOnHost: new Map(),
    affinityHosts: new Map(),
  };
  for (const [host, vms] of c.vms) for (const vm of vms) place(g, vm, host, true);
  c.groups = g;
  return g;
}

/** Moves `vm` in `c` (for planning several moves in a row). */
export function commitMove(c: Commitments, vm: VmSnapshot, from: string, to: string): void {
  c.memoryKiB.set(from, (c.memoryKiB.get(from) ?? 0) - vm.memoryKiB);
  c.vcpus.set(from, (c.vcpus.get(from) ?? 0) - vm.vcpus);
  c.vms.get(from)?.delete(vm.name);
  c.memoryKiB.set(to, (c.memoryKiB.get(to) ?? 0) + vm.memoryKiB);
  c.vcpus.set(to, (c.vcpus.get(to) ?? 0) + vm.vcpus);
  inner(c.vms, to, () => new Set()).add(vm.name);
  if (c.groups) {
    place(c.groups, vm.name, from, false);
    place(c.groups, vm.name, to, true);
  }
}

/** What one placement pass judges against; filters and scorers read only this. */
export interface Pass {
  snap: ClusterSnapshot;
  ctx: PlacementContext;
  c: Commitments;
  /** The sites a VM may go to (undefined: any). */
  sites: readonly string[] | undefined;
  /** A host being emptied: its VMs are all leaving, so they bind no affinity group to it. */
  leaving: string | undefined;
  groups(): GroupIndex;
  /** Active VMs per host over the whole cluster (for the spread scorer). */
  meanVmsPerHost(): number;
}

export function newPass(
  snap: ClusterSnapshot,
  ctx: PlacementContext,
  c: Commitments,
  o: { sites?: readonly string[] | undefined; leaving?: string } = {},
): Pass {
  let mean: number | undefined;
  return {
    snap,
    ctx,
    c,
    sites: o.sites,
    leaving: o.leaving,
    groups: () => groupsOf(c, ctx.rulesOf),
    meanVmsPerHost: () => {
      if (mean === undefined) {
        let vms = 0;
        for (const set of c.vms.values()) vms += set.size;
        mean = c.vms.size > 0 ? vms / c.vms.size : 0;
      }
      return mean;
    },
  };
}
