import type { ClusterSnapshot, HostSnapshot, VmSnapshot } from '../model.ts';
import { ACTIVE, commitments } from '../placement/context.ts';
import type { Decision } from '../plan.ts';
import {
  type FailoverPlacement,
  planRestarts,
  type RestartContext,
  type RestartRequest,
} from './restart-plan.ts';

/**
 * HA admission control. Pure.
 *
 *   whatIf(snap, failHosts, placement, ctx): Decision
 *     the restart plan a real failure of `failHosts` would run (planRestarts on a view where
 *     those hosts are fenced and their VMs gone, as the state machine plans once they are).
 *   unprotectedOn(snap, failHosts, placement): string[]
 *     the VMs running on `failHosts` that a failure would not restart (their tier has no
 *     failover), so that a what-if names them too.
 *   checkAdmission(snap, change, placement, policy): null | { code, reason }
 *     refuses a start or placement that would leave some HA VM unable to restart after the
 *     worst `toleratedHostFailures` host failures (every combination of that many up hosts is
 *     tried, a combination whose restarts surely fit without running the plan, see
 *     surelyPlaced), or that would commit more than (1 - reservedShare) of a site's guest memory.
 *     A combination that already failed before the change refuses only if the change makes
 *     more VMs fit nowhere.
 */

export interface AdmissionPolicy {
  /** Host failures the HA VMs must survive (0: no check). */
  toleratedHostFailures?: number;
  /** Share 0..1 of each site's guest memory kept free for restarts. */
  reservedShare?: number;
}

/** A VM to start on (or place on) `host`, with its size. */
export interface AdmissionChange {
  vm: string;
  host: string;
  vcpus: number;
  memoryKiB: number;
}

export interface AdmissionRefusal {
  code: 'HaFailuresNotTolerated' | 'HaCapacityReserved';
  reason: string;
}

/** The snapshot as if `failHosts` were down, with the HA VMs they ran as restart requests. */
function failedView(
  snap: ClusterSnapshot,
  failHosts: readonly string[],
  placement: FailoverPlacement,
): { view: ClusterSnapshot; requests: RestartRequest[] } {
  const failed = new Set(failHosts);
  const hosts = new Map<string, HostSnapshot>();
  for (const [n, h] of snap.hosts) hosts.set(n, failed.has(n) ? { ...h, health: 'fenced', vms: [] } : h);
  const vms = new Map<string, VmSnapshot>();
  const requests: RestartRequest[] = [];
  for (const [n, v] of snap.vms) {
    if (!failed.has(v.host)) vms.set(n, v);
    else if (ACTIVE.has(v.state) && placement.haPriorityOf(n) !== null)
      requests.push({ vm: n, from: v.host, vcpus: v.vcpus, memoryKiB: v.memoryKiB });
  }
  return { view: { ...snap, hosts, vms }, requests };
}

export function whatIf(
  snap: ClusterSnapshot,
  failHosts: readonly string[],
  placement: FailoverPlacement,
  ctx: RestartContext,
): Decision {
  const { view, requests } = failedView(snap, failHosts, placement);
  return planRestarts(view, requests, placement, {
    ...ctx,
    reason: ctx.reason ?? `what if ${[...failHosts].sort().join(', ')} failed`,
  });
}

export function unprotectedOn(
  snap: ClusterSnapshot,
  failHosts: readonly string[],
  placement: FailoverPlacement,
): string[] {
  const failed = new Set(failHosts);
  return [...snap.vms.values()]
    .filter((v) => failed.has(v.host) && ACTIVE.has(v.state) && placement.haPriorityOf(v.name) === null)
    .map((v) => v.name)
    .sort();
}

/** Every k-subset of `items`, in lexicographic order, one at a time (C(n, k) can be large). */
function* combinations(items: readonly string[], k: number): Generator<string[]> {
  const idx = Array.from({ length: k }, (_, i) => i);
  if (k > items.length) return;
  for (;;) {
    yield idx.map((i) => items[i]!);
    let i = k - 1;
    while (i >= 0 && idx[i] === items.length - k + i) i--;
    if (i < 0) return;
    idx[i]! += 1;
    for (let j = i + 1; j < k; j++) idx[j] = idx[j - 1]! + 1;
  }
}

interface Request {
  memoryKiB: number;
  vcpus: number;
  anti: string | null;
  affinity: boolean;
}

/**
 * What the quick test reads, built once per check: each host's free room (arrays indexed by
 * host, for the inner loop), the HA VMs each host would leave to restart, and the hosts each
 * anti-affinity group already occupies.
 */
function roomOf(snap: ClusterSnapshot, placement: FailoverPlacement) {
  const c = commitments(snap);
  const names = [...snap.hosts.keys()];
  const index = new Map(names.map((n, i) => [n, i]));
  const site = names.map((n) => snap.hosts.get(n)!.site);
  const candidate = names.map((n) => {
    const h = snap.hosts.get(n)!;
    return h.health === 'up' && !h.maintenance;
  });
  const freeMem = Float64Array.from(
    names,
    (n) => snap.hosts.get(n)!.memoryKiB * placement.memoryFraction - (c.memoryKiB.get(n) ?? 0),
  );
  const freeVcpus = Float64Array.from(
    names,
    (n) => snap.hosts.get(n)!.cpus * placement.cpuOvercommit - (c.vcpus.get(n) ?? 0),
  );
  const requests: Request[][] = names.map(() => []);
  const antiHosts = new Map<string, Set<number>>();
  for (const v of snap.vms.values()) {
    const i = index.get(v.host);
    if (i === undefined || !ACTIVE.has(v.state)) continue;
    const rules = placement.rulesOf(v.name);
    if (rules.antiAffinityGroup) {
      if (!antiHosts.has(rules.antiAffinityGroup)) antiHosts.set(rules.antiAffinityGroup, new Set());
      antiHosts.get(rules.antiAffinityGroup)!.add(i);
    }
    if (placement.haPriorityOf(v.name) !== null)
      requests[i]!.push({
        memoryKiB: v.memoryKiB,
        vcpus: v.vcpus,
        anti: rules.antiAffinityGroup,
        affinity: rules.affinityGroup !== null,
      });
  }
  return {
    index,
    site,
    candidate,
    freeMem,
    freeVcpus,
    requests,
    antiHosts,
    term: new Float64Array(names.length),
    mark: new Uint8Array(names.length),
  };
}

/**
 * surelyPlaced for every set of `n` failed hosts at once, from bounds that hold for all of
 * them: per site, the requests of any n hosts weigh at most the n heaviest hosts' HA memory
 * (and vCPUs), and no request is larger than the site's largest HA VM, so each host's term is
 * at least its term under those bounds; the n failed hosts take away at most the n largest
 * terms, and a group at most as many fellows as its n most crowded hosts hold. False means
 * "look at each combination".
 */
function surelyPlacedAll(room: ReturnType<typeof roomOf>, n: number, anySite: boolean): boolean {
  const topSum = (xs: readonly number[]) =>
    [...xs]
      .sort((a, b) => b - a)
      .slice(0, n)
      .reduce((a, b) => a + b, 0);
  for (const site of anySite ? [''] : [...new Set(room.site)]) {
    const inSite = room.site.flatMap((s, i) => (anySite || s === site ? [i] : []));
    let memMax = 0;
    let vcpuMax = 0;
    const hostMem: number[] = [];
    const hostVcpus: number[] = [];
    const groupCount = new Map<string, number[]>();
    for (const i of inSite) {
      let m = 0;
      let v = 0;
      const here = new Map<string, number>();
      for (const r of room.requests[i]!) {
        if (r.affinity || r.memoryKiB <= 0 || r.vcpus <= 0) return false;
        m += r.memoryKiB;
        v += r.vcpus;
        memMax = Math.max(memMax, r.memoryKiB);
        vcpuMax = Math.max(vcpuMax, r.vcpus);
        if (r.anti) here.set(r.anti, (here.get(r.anti) ?? 0) + 1);
      }
      hostMem.push(m);
      hostVcpus.push(v);
      for (const [g, k] of here) groupCount.set(g, [...(groupCount.get(g) ?? []), k]);
    }
    const mem = topSum(hostMem);
    const vcpus = topSum(hostVcpus);
    if (mem === 0) continue;
    const terms: number[] = [];
    const termOf = new Map<number, number>();
    for (const i of inSite) {
      if (!room.candidate[i]) continue;
      const m = room.freeMem[i]! - memMax;
      const v = room.freeVcpus[i]! - vcpuMax;
      const t = m <= 0 || v <= 0 ? 0 : Math.min(m / mem, v / vcpus);
      terms.push(t);
      termOf.set(i, t);
    }
    const total = terms.reduce((a, b) => a + b, 0);
    const lost = topSum(terms);
    const largest = Math.max(0, ...terms);
    if (total - lost < 2) return false;
    for (const [g, counts] of groupCount) {
      let held = 0;
      for (const i of room.antiHosts.get(g) ?? []) held += termOf.get(i) ?? 0;
      if (total - held - lost - (topSum(counts) - 1) * largest < 2) return false;
    }
  }
  return true;
}

/**
 * True when every HA VM of `fail` surely finds a host, whatever order and choices the restart
 * plan makes (then whatIf refuses none and need not run). The plan places each VM on some
 * host that fits it. Were a VM of memory m and v vCPUs refused, every candidate host h would
 * lack room: the VMs placed before it on h exceed freeMem(h) - m or freeVcpus(h) - v. Those
 * placed VMs add up to less than all the requests, M and V, so summed over the hosts,
 * placedMem/M + placedVcpus/V < 2. Hence if the sum over candidate hosts of
 * min(max(0, freeMem - mMax)/M, max(0, freeVcpus - vMax)/V) is at least 2, none is refused.
 * A member of an anti-affinity group with k requests also loses the hosts its group holds and
 * at most k - 1 more (where its fellows went): the same sum over the rest, less k - 1 times
 * the largest term, must reach 2. Affinity groups are not judged here (false: run the plan).
 */
export function restartsSurelyFit(
  snap: ClusterSnapshot,
  failHosts: readonly string[],
  placement: FailoverPlacement,
): boolean {
  return surelyPlaced(roomOf(snap, placement), failHosts, false);
}

function surelyPlaced(room: ReturnType<typeof roomOf>, fail: readonly string[], anySite: boolean): boolean {
  const failed = new Set(fail.map((n) => room.index.get(n)!));
  for (const i of failed) room.mark[i] = 1;
  try {
    return placedIn(room, failed, anySite);
  } finally {
    for (const i of failed) room.mark[i] = 0;
  }
}

function placedIn(room: ReturnType<typeof roomOf>, failed: ReadonlySet<number>, anySite: boolean): boolean {
  const bySite = new Map<string, Request[]>();
  for (const i of failed)
    for (const r of room.requests[i]!) {
      if (r.affinity || r.memoryKiB <= 0 || r.vcpus <= 0) return false;
      const site = anySite ? '' : room.site[i]!;
      if (!bySite.has(site)) bySite.set(site, []);
      bySite.get(site)!.push(r);
    }
  const { term, freeMem, freeVcpus, candidate } = room;
  for (const [site, requests] of bySite) {
    let mem = 0;
    let vcpus = 0;
    let memMax = 0;
    let vcpuMax = 0;
    const groups = new Map<string, number>();
    for (const r of requests) {
      mem += r.memoryKiB;
      vcpus += r.vcpus;
      memMax = Math.max(memMax, r.memoryKiB);
      vcpuMax = Math.max(vcpuMax, r.vcpus);
      if (r.anti) groups.set(r.anti, (groups.get(r.anti) ?? 0) + 1);
    }
    let total = 0;
    let largest = 0;
    for (let i = 0; i < term.length; i++) {
      let t = 0;
      if (candidate[i] && room.mark[i] === 0 && (anySite || room.site[i] === site)) {
        const m = freeMem[i]! - memMax;
        const v = freeVcpus[i]! - vcpuMax;
        t = m <= 0 || v <= 0 ? 0 : Math.min(m / mem, v / vcpus);
      }
      term[i] = t;
      total += t;
      if (t > largest) largest = t;
    }
    if (total < 2) return false;
    for (const [g, k] of groups) {
      let held = 0;
      for (const i of room.antiHosts.get(g) ?? []) held += term[i]!;
      if (total - held - (k - 1) * largest < 2) return false;
    }
  }
  return true;
}

const CHECK_CTX: RestartContext = {
  id: 'dec-admission',
  at: 0,
  ref: 'admission',
  requestedBy: { id: 'controller', name: 'keizokud' },
};

/** The snapshot with `change` applied: the VM running on its host. */
function withChange(snap: ClusterSnapshot, ch: AdmissionChange): ClusterSnapshot {
  const vms = new Map(snap.vms);
  vms.set(ch.vm, {
    name: ch.vm,
    uuid: snap.vms.get(ch.vm)?.uuid ?? ch.vm,
    host: ch.host,
    state: 'running',
    vcpus: ch.vcpus,
    memoryKiB: ch.memoryKiB,
    cpuUsage: null,
    memoryUsedKiB: null,
  });
  return { ...snap, vms };
}

export function checkAdmission(
  snap: ClusterSnapshot,
  change: AdmissionChange,
  placement: FailoverPlacement,
  policy: AdmissionPolicy,
): AdmissionRefusal | null {
  const after = withChange(snap, change);
  const share = policy.reservedShare ?? 0;
  const site = snap.hosts.get(change.host)?.site;
  if (share > 0 && site !== undefined) {
    let cap = 0;
    let used = 0;
    for (const h of after.hosts.values())
      if (h.site === site && h.health === 'up') cap += h.memoryKiB * placement.memoryFraction;
    for (const v of after.vms.values())
      if (ACTIVE.has(v.state) && after.hosts.get(v.host)?.site === site) used += v.memoryKiB;
    if (used > cap * (1 - share))
      return {
        code: 'HaCapacityReserved',
        reason: `starting ${change.vm} on ${change.host} would commit ${Math.round(used / 1024)} MiB of site ${site}'s ${Math.round(cap / 1024)} MiB guest memory, above the ${Math.round((1 - share) * 100)} % allowed (${Math.round(share * 100)} % is kept for HA restarts)`,
      };
  }
  const n = policy.toleratedHostFailures ?? 0;
  if (n <= 0) return null;
  const up = [...after.hosts.values()]
    .filter((h) => h.health === 'up')
    .map((h) => h.name)
    .sort();
  const room = roomOf(after, placement);
  const k = Math.min(n, up.length);
  if (surelyPlacedAll(room, k, CHECK_CTX.anySite === true)) return null;
  for (const fail of combinations(up, k)) {
    if (surelyPlaced(room, fail, CHECK_CTX.anySite === true)) continue;
    const refusedAfter = whatIf(after, fail, placement, CHECK_CTX).refused;
    if (refusedAfter.length === 0) continue;
    const refusedBefore = whatIf(snap, fail, placement, CHECK_CTX).refused.length;
    if (refusedAfter.length <= refusedBefore) continue;
    return {
      code: 'HaFailuresNotTolerated',
      reason: `starting ${change.vm} on ${change.host} would leave ${refusedAfter.map((r) => r.vm).join(', ')} unable to restart if ${fail.join(', ')} failed (${n} host failure${n === 1 ? '' : 's'} tolerated)`,
    };
  }
  return null;
}
