import type { ClusterSnapshot, HostSnapshot, VmSnapshot } from './model.ts';

/**
 * Where may a VM run, and where is best: filters (is this host feasible?) then scorers (how
 * good?), as in the Kubernetes scheduler. Pure: a function of the snapshot and the rules.
 * Every verdict carries its reasons and scores so that the API can explain a decision.
 */

export interface VmRules {
  /** VMs of one affinity group are kept on one host. */
  affinityGroup: string | null;
  /** No two VMs of one anti-affinity group on the same host. */
  antiAffinityGroup: string | null;
}

export interface PlacementContext {
  rulesOf(vm: string): VmRules;
  /** Committed vCPUs may reach this many times the host's CPUs. */
  cpuOvercommit: number;
  /** Committed guest memory may reach this fraction of the host's memory. */
  memoryFraction: number;
}

export interface HostVerdict {
  host: string;
  feasible: boolean;
  /** Why not, one sentence per failed filter. */
  reasons: string[];
  /** 0..1, higher is better; only meaningful when feasible. */
  score: number;
  scores: Record<string, number>;
}

/** Memory and vCPUs committed to VMs that run (or are paused) on each host. */
export interface Commitments {
  memoryKiB: Map<string, number>;
  vcpus: Map<string, number>;
  /** VM names on each host, for the affinity filters. */
  vms: Map<string, Set<string>>;
}

const ACTIVE = new Set(['running', 'paused', 'blocked', 'pmsuspended']);

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

/** Moves `vm` in `c` (for planning several moves in a row). */
export function commitMove(c: Commitments, vm: VmSnapshot, from: string, to: string): void {
  c.memoryKiB.set(from, (c.memoryKiB.get(from) ?? 0) - vm.memoryKiB);
  c.vcpus.set(from, (c.vcpus.get(from) ?? 0) - vm.vcpus);
  c.vms.get(from)?.delete(vm.name);
  c.memoryKiB.set(to, (c.memoryKiB.get(to) ?? 0) + vm.memoryKiB);
  c.vcpus.set(to, (c.vcpus.get(to) ?? 0) + vm.vcpus);
  if (!c.vms.has(to)) c.vms.set(to, new Set());
  c.vms.get(to)!.add(vm.name);
}

const mib = (kib: number) => `${Math.round(kib / 1024)} MiB`;

/** The verdict of one host for one VM. */
export function judgeHost(
  snap: ClusterSnapshot,
  vm: VmSnapshot,
  host: HostSnapshot,
  ctx: PlacementContext,
  c: Commitments = commitments(snap),
): HostVerdict {
  const reasons: string[] = [];
  if (host.name === vm.host) reasons.push(`${vm.name} already runs on ${host.name}`);
  if (host.health !== 'up') reasons.push(`host ${host.name} is ${host.health}`);
  if (host.maintenance) reasons.push(`host ${host.name} is in maintenance`);
  const memCap = host.memoryKiB * ctx.memoryFraction;
  const memAfter = (c.memoryKiB.get(host.name) ?? 0) + vm.memoryKiB;
  if (memAfter > memCap)
    reasons.push(
      `host ${host.name} has ${mib(Math.max(0, memCap - (c.memoryKiB.get(host.name) ?? 0)))} of guest memory free, ${vm.name} needs ${mib(vm.memoryKiB)}`,
    );
  const cpuCap = host.cpus * ctx.cpuOvercommit;
  const cpuAfter = (c.vcpus.get(host.name) ?? 0) + vm.vcpus;
  if (cpuAfter > cpuCap)
    reasons.push(
      `host ${host.name} would have ${cpuAfter} vCPUs committed on ${host.cpus} CPUs (limit ${cpuCap})`,
    );
  const rules = ctx.rulesOf(vm.name);
  const others = [...(c.vms.get(host.name) ?? [])].filter((n) => n !== vm.name);
  if (rules.antiAffinityGroup) {
    const clash = others.filter((n) => ctx.rulesOf(n).antiAffinityGroup === rules.antiAffinityGroup);
    if (clash.length > 0)
      reasons.push(
        `anti-affinity group "${rules.antiAffinityGroup}": ${clash.sort().join(', ')} already on ${host.name}`,
      );
  }
  if (rules.affinityGroup) {
    const mates = [...snap.vms.values()].filter(
      (v) =>
        v.name !== vm.name &&
        ACTIVE.has(v.state) &&
        ctx.rulesOf(v.name).affinityGroup === rules.affinityGroup,
    );
    const elsewhere = mates.filter((v) => !(c.vms.get(host.name) ?? new Set()).has(v.name));
    // Only binding when the group's other members are all together somewhere else.
    if (mates.length > 0 && elsewhere.length === mates.length)
      reasons.push(
        `affinity group "${rules.affinityGroup}" runs on ${[...new Set(elsewhere.map((v) => v.host))].sort().join(', ')}`,
      );
  }
  const memoryFree = memCap > 0 ? Math.max(0, 1 - memAfter / memCap) : 0;
  const cpuFree = cpuCap > 0 ? Math.max(0, 1 - cpuAfter / cpuCap) : 0;
  const measured = host.cpuUtilisation === null ? 0.5 : 1 - host.cpuUtilisation;
  const scores = { memoryFree, cpuFree, cpuIdleMeasured: measured };
  const score = 0.5 * memoryFree + 0.3 * cpuFree + 0.2 * measured;
  return { host: host.name, feasible: reasons.length === 0, reasons, score, scores };
}

/** Every host's verdict for `vm`, feasible ones first, best first. */
export function rankHosts(
  snap: ClusterSnapshot,
  vm: VmSnapshot,
  ctx: PlacementContext,
  o: { sites?: readonly string[]; commitments?: Commitments } = {},
): HostVerdict[] {
  const c = o.commitments ?? commitments(snap);
  return [...snap.hosts.values()]
    .filter((h) => h.name !== vm.host && (o.sites === undefined || o.sites.includes(h.site)))
    .map((h) => judgeHost(snap, vm, h, ctx, c))
    .sort(
      (a, b) => Number(b.feasible) - Number(a.feasible) || b.score - a.score || a.host.localeCompare(b.host),
    );
}

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

export interface EvacuationPlan {
  host: string;
  ok: boolean;
  moves: { vm: string; to: string; score: number }[];
  /** VMs that fit nowhere, with each candidate host's reasons. */
  refused: { vm: string; reasons: string[] }[];
}

/**
 * Moves that empty `host` of its active VMs, onto hosts of the same site unless `anySite`.
 * Order: higher HA priority first, then smaller VMs (quicker to move). All or nothing: when
 * one VM fits nowhere the plan is not ok, and nothing should be moved.
 */
export function planEvacuation(
  snap: ClusterSnapshot,
  hostName: string,
  ctx: PlacementContext & { haPriorityOf(vm: string): number },
  o: { anySite?: boolean } = {},
): EvacuationPlan {
  const host = snap.hosts.get(hostName);
  if (!host)
    return {
      host: hostName,
      ok: false,
      moves: [],
      refused: [{ vm: '-', reasons: [`no host named "${hostName}"`] }],
    };
  // The evacuated host takes nothing back while it empties.
  const hosts = new Map(snap.hosts);
  hosts.set(hostName, { ...host, maintenance: true });
  const view: ClusterSnapshot = { ...snap, hosts };
  const c = commitments(view);
  const vms = [...snap.vms.values()]
    .filter((v) => v.host === hostName && ACTIVE.has(v.state))
    .sort(
      (a, b) =>
        ctx.haPriorityOf(b.name) - ctx.haPriorityOf(a.name) ||
        a.memoryKiB - b.memoryKiB ||
        a.name.localeCompare(b.name),
    );
  const plan: EvacuationPlan = { host: hostName, ok: true, moves: [], refused: [] };
  for (const vm of vms) {
    const sites = o.anySite ? undefined : [host.site];
    const ranked = rankHosts(view, vm, ctx, { commitments: c, ...(sites ? { sites } : {}) });
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
