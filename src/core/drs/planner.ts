import type { BurstAllowance, CpuRaise } from '../limits.ts';
import type { ClusterSnapshot, HostSnapshot, VmSnapshot } from '../model.ts';
import {
  commitMove,
  copyCommitments,
  groupsOf,
  newPass,
  type PlacementContext,
  sharedCommitments,
} from '../placement/context.ts';
import { type HostVerdict, judge, rank, toCandidates } from '../placement/index.ts';
import type { Action, Decision } from '../plan.ts';
import {
  type CpuSample,
  type HostDemand,
  hostDemands,
  imbalance,
  type VmDemand,
  vmContention,
  vmDemands,
} from './demand.ts';
import { type DrsOptions, drsOptions } from './options.ts';

/**
 * DRS: which running VMs to move so that no host's demand exceeds what it has, and load is
 * even enough, at the least cost and without moving any VM back and forth. Pure: the snapshot,
 * the VMs' CPU history, the recent moves, time and seed come in; a decision comes out.
 */

/** A move DRS (or anyone) made, as DRS remembers it for stability. */
export interface MoveRecord {
  vm: string;
  from: string;
  to: string;
  at: number;
}

export interface DrsInput {
  snap: ClusterSnapshot;
  now: number;
  /** Breaks ties between equally good moves (same input and seed: same plan). */
  seed: number;
  /** Per VM, its CPU samples in time order. */
  history: ReadonlyMap<string, readonly CpuSample[]>;
  recentMoves: readonly MoveRecord[];
  placement: PlacementContext;
  /** The VM's tier has the `drs` mechanism (a tier without it is never moved by DRS). */
  drsAllowed(vm: string): boolean;
  /** The sites DRS may move the VM to (default: its host's site). */
  sitesOf?(vm: string): readonly string[] | undefined;
  /** Memory the guest dirties, MiB/s (default 0). */
  dirtyRateOf?(vm: string): number;
  /** The VM's CPU cap and burst allowance (its limits profile), and the raise that holds now. */
  capOf?(vm: string): { allowance: BurstAllowance; raise: CpuRaise | null } | undefined;
  /** DRS may raise this VM's cap itself (automatic mode); otherwise it only moves it. */
  raiseAllowed?(vm: string): boolean;
  options?: Partial<DrsOptions>;
  decision: { id: string; ref: string; requestedBy: { id: string; name: string } };
}

/** How one candidate move was judged (vCPUs throughout, so that benefit and cost compare). */
export interface MoveScore {
  vm: string;
  from: string;
  to: string;
  /** Demand above the target utilisation removed from the two hosts. */
  contentionRemovedVcpus: number;
  /** Imbalance removed, weighted by the aggressiveness level. */
  imbalanceRemovedVcpus: number;
  costVcpus: number;
  copySeconds: number;
  expectedDowntimeMs: number;
  gainVcpus: number;
  /** The gain the move had to pass (larger for a move back to a host left recently). */
  thresholdVcpus: number;
  reversal: boolean;
  /** The drs profile's placement score of the destination. */
  placementScore: number;
}

/** A CPU cap raised (or a raise renewed) within the VM's burst allowance instead of a move. */
export interface CapRaise {
  vm: string;
  host: string;
  /** The cap per vCPU now and after, % of one physical CPU. */
  fromPercent: number;
  toPercent: number;
  /** The profile's cap and its burst allowance (toPercent never exceeds it). */
  capPercent: number;
  burstPercent: number;
  periodUs: number;
  holdMs: number;
  /** CPU the raise gives the VM beyond its cap now, vCPUs (0 for a renewal). */
  extraVcpus: number;
  renewal: boolean;
  reason: string;
}

export interface VmExplanation {
  vm: string;
  host: string;
  demand: VmDemand;
  /** What it asks for and does not get now, vCPUs. */
  contentionVcpus: number;
  verdict: 'moved' | 'cap-raised' | 'stays' | 'not-eligible';
  reasons: string[];
  /** The best move judged for it (chosen or not). */
  best: MoveScore | null;
}

export interface DrsPlan {
  decision: Decision;
  moves: MoveScore[];
  /** Caps raised before any move is considered (burst protection); not in `decision.actions`. */
  raises: CapRaise[];
  /** Per VM DRS looked at (on a host above target, or moved), why it moved or stayed. */
  explanations: Record<string, VmExplanation>;
  hosts: HostDemand[];
  imbalanceBefore: number;
  imbalanceAfter: number;
  contentionBeforeVcpus: number;
  contentionAfterVcpus: number;
  options: DrsOptions;
}

const round3 = (x: number) => Math.round(x * 1000) / 1000;

/** A stable pseudo-random tie-break from the seed (FNV-1a). */
function tieBreak(seed: number, vm: string, host: string): number {
  let h = (2166136261 ^ seed) >>> 0;
  for (const s of [vm, host])
    for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619) >>> 0;
  return h;
}

/** Copy time and downtime of a pre-copy live migration: each round copies what the last dirtied. */
export function migrationCost(memoryMiB: number, dirtyMiBps: number, bandwidthMiBps: number) {
  if (dirtyMiBps >= bandwidthMiBps) return null;
  const ratio = dirtyMiBps / bandwidthMiBps;
  const copySeconds = memoryMiB / (bandwidthMiBps - dirtyMiBps);
  // After two rounds about memory x ratio^2 is left to copy with the guest paused.
  const expectedDowntimeMs = 30 + (1000 * memoryMiB * ratio * ratio) / bandwidthMiBps;
  return { copySeconds, expectedDowntimeMs };
}

const canRun = (h: HostSnapshot) => h.health === 'up' && !h.maintenance;

/** Short-window demand at this share of its cap or more: the VM is held at the cap. */
const AT_CAP = 0.95;

interface BurstNeed {
  vm: VmSnapshot;
  d: VmDemand;
  allowance: BurstAllowance;
  /** Its cap per vCPU now (raised or the profile's), %. */
  nowPercent: number;
  /** What the rest of its allowance would give it, vCPUs. */
  wantVcpus: number;
  /** A raise that holds should be renewed now (less than half its hold left). */
  renew: boolean;
}

/**
 * The VMs DRS may raise the cap of that need it: held at their cap while they burst (short
 * window well above the long one), or raised already and still using more than the profile's
 * cap. Names in order, so that the plan does not depend on the snapshot's order.
 */
function burstNeeds(input: DrsInput, demands: ReadonlyMap<string, VmDemand>): BurstNeed[] {
  const out: BurstNeed[] = [];
  if (!input.capOf) return out;
  for (const vm of input.snap.vms.values()) {
    if (vm.state !== 'running' || vm.vcpus <= 0 || !(input.raiseAllowed?.(vm.name) ?? false)) continue;
    if (!input.drsAllowed(vm.name)) continue;
    const h = input.snap.hosts.get(vm.host);
    const cap = input.capOf(vm.name);
    const d = demands.get(vm.name);
    if (!cap || !d || !h || !canRun(h)) continue;
    const raise = cap.raise && cap.raise.until > input.now ? cap.raise : null;
    const nowPercent = Math.min(cap.allowance.burstPercent, raise?.quotaPercent ?? cap.allowance.capPercent);
    const capVcpus = (vm.vcpus * nowPercent) / 100;
    const profileVcpus = (vm.vcpus * cap.allowance.capPercent) / 100;
    const needs = raise ? d.short > AT_CAP * profileVcpus : d.short >= AT_CAP * capVcpus && d.burst;
    if (!needs) continue;
    const atCap = d.short >= AT_CAP * capVcpus;
    out.push({
      vm,
      d,
      allowance: cap.allowance,
      nowPercent,
      wantVcpus: atCap ? Math.max(0, (vm.vcpus * cap.allowance.burstPercent) / 100 - capVcpus) : 0,
      renew: raise !== null && raise.until - input.now < cap.allowance.holdMs / 2,
    });
  }
  return out.sort((a, b) => a.vm.name.localeCompare(b.vm.name));
}

export function planDrs(input: DrsInput): DrsPlan {
  const { snap, now } = input;
  const o = drsOptions(input.options, snap.hosts.size);
  const demands = vmDemands(snap, input.history, now, o.windows);
  const hostsBefore = hostDemands(snap, demands);

  // Working copy: demand per host, the hosts' measured utilisation (read by the drs profile's
  // scorer) and the commitments, all updated by each chosen move before the next is chosen.
  const workShort = new Map<string, number>();
  const workLong = new Map<string, number>();
  for (const h of hostsBefore.values()) {
    workShort.set(h.host, h.short);
    workLong.set(h.host, h.long);
  }
  /** A host's demand in the working copy, and what it would be with `d` added (or, -1, removed). */
  const demandOf = (h: string, d?: VmDemand, sign = 1) =>
    Math.max(workShort.get(h)! + sign * (d?.short ?? 0), workLong.get(h)! + sign * (d?.long ?? 0));
  // Utilisation per host, kept with the working copy (the candidate sorts read it often).
  const utilNow = new Map<string, number>();
  const util = (h: HostSnapshot) => utilNow.get(h.name)!;
  const view = new Map(snap.hosts);
  const setUtil = (h: HostSnapshot) => {
    utilNow.set(h.name, h.cpus > 0 ? demandOf(h.name) / h.cpus : 0);
    view.set(h.name, { ...h, cpuUtilisation: utilNow.get(h.name)! });
  };
  for (const h of snap.hosts.values()) setUtil(h);
  const explanations: Record<string, VmExplanation> = {};
  const explain = (vm: VmSnapshot, d: VmDemand): VmExplanation => {
    let e = explanations[vm.name];
    if (!e) {
      e = {
        vm: vm.name,
        host: vm.host,
        demand: d,
        contentionVcpus: round3(vmContention(d, hostsBefore.get(vm.host)!)),
        verdict: 'stays',
        reasons: [],
        best: null,
      };
      explanations[vm.name] = e;
    }
    return e;
  };

  const bursts = burstNeeds(input, demands);
  const raises: CapRaise[] = [];
  const raised = new Set<string>();
  /** Why each bursting VM its host cannot serve counts with what it asks for. */
  const unserved = new Map<string, string>();
  const pct = (x: number) => Math.round(x * 10) / 10;
  const raiseOf = (b: BurstNeed, toPercent: number, extra: number, reason: string): CapRaise => ({
    vm: b.vm.name,
    host: b.vm.host,
    fromPercent: b.nowPercent,
    toPercent,
    capPercent: b.allowance.capPercent,
    burstPercent: b.allowance.burstPercent,
    periodUs: b.allowance.periodUs,
    holdMs: b.allowance.holdMs,
    extraVcpus: extra,
    renewal: extra === 0,
    reason,
  });
  // Burst protection comes first: the host gives a VM bursting against its cap what the allowance
  // allows when it has that much room under target (no copy, no downtime, and the burst is often
  // over before a migration would be). Only a VM its host cannot serve is a candidate to move,
  // counted with what it asks for.
  for (const b of bursts) {
    const e = explain(b.vm, b.d);
    const h = snap.hosts.get(b.vm.host)!;
    const room = Math.max(0, o.targetUtilisation * h.cpus - demandOf(h.name));
    if (b.wantVcpus <= 1e-9) {
      raised.add(b.vm.name);
      e.verdict = 'cap-raised';
      e.reasons = [
        `${b.vm.name} still uses more than its cap of ${pct(b.allowance.capPercent)} %: its raise to ${pct(b.nowPercent)} % (the whole allowance) holds` +
          (b.renew ? `, renewed for ${b.allowance.holdMs / 1000} s` : ''),
      ];
      if (b.renew) raises.push(raiseOf(b, b.nowPercent, 0, e.reasons[0]!));
      continue;
    }
    if (room + 1e-9 >= b.wantVcpus) {
      raised.add(b.vm.name);
      workShort.set(h.name, workShort.get(h.name)! + b.wantVcpus);
      setUtil(h);
      e.verdict = 'cap-raised';
      e.reasons = [
        `${b.vm.name} bursts against its cap of ${pct(b.nowPercent)} % per vCPU; ${h.name} has ${round3(room)} vCPUs free under target, ` +
          `so its cap is raised to ${pct(b.allowance.burstPercent)} % (+${round3(b.wantVcpus)} vCPUs, its whole burst allowance) instead of moving it`,
      ];
      raises.push(raiseOf(b, b.allowance.burstPercent, b.wantVcpus, e.reasons[0]!));
      continue;
    }
    // The host cannot give it all: it counts with what it asks for, and may move.
    const need = { ...b.d, short: b.d.short + b.wantVcpus };
    need.planned = Math.max(need.short, need.long);
    demands.set(b.vm.name, need);
    workShort.set(h.name, workShort.get(h.name)! + b.wantVcpus);
    setUtil(h);
    e.demand = need;
    unserved.set(
      b.vm.name,
      `${b.vm.name} bursts against its cap of ${pct(b.nowPercent)} % per vCPU; ${h.name} has ${round3(room)} of the ${round3(b.wantVcpus)} vCPUs its allowance allows free under target`,
    );
    e.reasons = [unserved.get(b.vm.name)!];
  }
  const viewSnap: ClusterSnapshot = { ...snap, hosts: view };
  const shared = sharedCommitments(snap);
  groupsOf(shared, input.placement.rulesOf);
  const c = copyCommitments(shared);

  const running = [...snap.hosts.values()].filter(canRun);
  const totalCpus = running.reduce((s, h) => s + h.cpus, 0);
  let n = 0;
  let sum = 0;
  let sq = 0;
  for (const h of running) {
    const u = util(h);
    n++;
    sum += u;
    sq += u * u;
  }
  const stdOf = (s: number, q: number) => (n > 0 ? Math.sqrt(Math.max(0, q / n - (s / n) ** 2)) : 0);
  const exc = (demand: number, cpus: number) => Math.max(0, demand - o.targetUtilisation * cpus);

  const lastMove = new Map<string, MoveRecord>();
  const movesInDay = new Map<string, number>();
  const leftRecently = new Map<string, Set<string>>();
  for (const m of input.recentMoves) {
    if (m.at > now) continue;
    const prev = lastMove.get(m.vm);
    if (!prev || m.at > prev.at) lastMove.set(m.vm, m);
    if (m.at > now - 86_400_000) movesInDay.set(m.vm, (movesInDay.get(m.vm) ?? 0) + 1);
    if (m.at > now - o.reverseWindowMs) {
      if (!leftRecently.has(m.vm)) leftRecently.set(m.vm, new Set());
      leftRecently.get(m.vm)!.add(m.from);
    }
  }

  /** Why DRS may not move this VM at all now (null: it may). */
  const notEligible = (vm: VmSnapshot): string | null => {
    if (vm.state !== 'running') return `${vm.name} is ${vm.state}; only a running VM migrates live`;
    if (!input.drsAllowed(vm.name)) return `the tier of ${vm.name} does not have the drs mechanism`;
    const last = lastMove.get(vm.name);
    if (last && now - last.at < o.minMoveIntervalMs)
      return `${vm.name} moved ${Math.round((now - last.at) / 1000)} s ago (at most one move per ${o.minMoveIntervalMs / 1000} s)`;
    return null;
  };

  const hostMoves = new Map<string, number>();
  const hostFree = (h: string) => (hostMoves.get(h) ?? 0) < o.maxMovesPerHost;
  const movedThisPass = new Set<string>();
  const moves: MoveScore[] = [];
  const candidates: Decision['candidates'] = {};
  const pass = newPass(viewSnap, input.placement, c);

  const score = (vm: VmSnapshot, d: VmDemand, from: HostSnapshot, to: HostSnapshot, v: HostVerdict) => {
    const ds = demandOf(from.name);
    const dt = demandOf(to.name);
    const ds2 = demandOf(from.name, d, -1);
    const dt2 = demandOf(to.name, d);
    const contentionRemoved = exc(ds, from.cpus) + exc(dt, to.cpus) - exc(ds2, from.cpus) - exc(dt2, to.cpus);
    let imbalanceRemoved = 0;
    if (o.imbalanceWeight > 0 && from.cpus > 0 && to.cpus > 0) {
      const us = ds / from.cpus;
      const ut = dt / to.cpus;
      const us2 = ds2 / from.cpus;
      const ut2 = dt2 / to.cpus;
      const after = stdOf(sum - us - ut + us2 + ut2, sq - us * us - ut * ut + us2 * us2 + ut2 * ut2);
      imbalanceRemoved = (o.imbalanceWeight * (stdOf(sum, sq) - after) * totalCpus) / 4;
    }
    const cost = migrationCost(vm.memoryKiB / 1024, input.dirtyRateOf?.(vm.name) ?? 0, o.bandwidthMiBps);
    if (!cost) return null;
    const costVcpus =
      cost.copySeconds * o.costVcpusPerCopySecond +
      cost.expectedDowntimeMs / 1000 +
      (movesInDay.get(vm.name) ?? 0) * o.costVcpusPerRecentMove;
    const reversal = leftRecently.get(vm.name)?.has(to.name) ?? false;
    const s: MoveScore = {
      vm: vm.name,
      from: from.name,
      to: to.name,
      contentionRemovedVcpus: contentionRemoved,
      imbalanceRemovedVcpus: imbalanceRemoved,
      costVcpus,
      copySeconds: cost.copySeconds,
      expectedDowntimeMs: cost.expectedDowntimeMs,
      gainVcpus: contentionRemoved + imbalanceRemoved - costVcpus,
      thresholdVcpus: o.minGainVcpus * (reversal ? o.reverseGainFactor : 1),
      reversal,
      placementScore: v.score,
    };
    return s;
  };

  // Destinations coolest first; a move re-sorts only the two hosts it changed.
  const byUtil = (a: HostSnapshot, b: HostSnapshot) => util(a) - util(b) || a.name.localeCompare(b.name);
  const cool = running.filter((h) => h.cpus > 0).sort(byUtil);
  const resort = (h: HostSnapshot) => {
    cool.splice(cool.indexOf(h), 1);
    let lo = 0;
    let hi = cool.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (byUtil(cool[mid]!, h) < 0) lo = mid + 1;
      else hi = mid;
    }
    cool.splice(lo, 0, h);
  };

  while (moves.length < o.maxMovesPerPass) {
    const mean = n > 0 ? sum / n : 0;
    const std = stdOf(sum, sq);
    const busy = running
      .filter((h) => {
        if (!hostFree(h.name) || h.cpus <= 0) return false;
        const u = util(h);
        return u > o.targetUtilisation || (o.imbalanceWeight > 0 && u > mean + std);
      })
      .sort((a, b) => util(b) - util(a) || a.name.localeCompare(b.name))
      // The hottest hosts hold the best moves; looking at all of them costs time, not quality.
      .slice(0, 16);
    if (busy.length === 0) break;
    let best: { s: MoveScore; vm: VmSnapshot; verdicts: HostVerdict[]; tie: number } | null = null;
    for (const from of busy) {
      const on = [...(c.vms.get(from.name) ?? [])]
        .map((name) => snap.vms.get(name)!)
        .filter((vm) => vm && demands.has(vm.name) && !movedThisPass.has(vm.name) && !raised.has(vm.name))
        .sort(
          (a, b) =>
            demands.get(b.name)!.planned - demands.get(a.name)!.planned || a.name.localeCompare(b.name),
        );
      let judged = 0;
      for (const vm of on) {
        if (judged >= o.vmsPerHost) break;
        const d = demands.get(vm.name)!;
        const e = explain(vm, d);
        const why = notEligible(vm);
        if (why) {
          e.verdict = 'not-eligible';
          e.reasons = [why];
          continue;
        }
        judged++;
        const sites = input.sitesOf?.(vm.name) ?? [from.site];
        const verdicts: HostVerdict[] = [];
        for (const to of cool) {
          if (verdicts.length >= o.destinationsPerVm) break;
          if (to.name === from.name || !hostFree(to.name) || !sites.includes(to.site)) continue;
          const v = judge({ ...pass, sites }, vm, view.get(to.name)!, 'drs');
          verdicts.push(v);
          if (!v.feasible) continue;
          // The destination stays under target: a move that makes another hot host is undone next.
          if (demandOf(to.name, d) > o.targetUtilisation * to.cpus) continue;
          const s = score(vm, d, from, to, v);
          if (!s) continue;
          if (!e.best || s.gainVcpus > e.best.gainVcpus) e.best = s;
          // Equal gains: the bursting VM first (it is the cause, and still climbing), then the seed.
          const tie = (d.burst ? 0 : 2 ** 32) + tieBreak(input.seed, vm.name, to.name);
          if (
            s.gainVcpus >= s.thresholdVcpus &&
            (!best ||
              s.gainVcpus > best.s.gainVcpus + 1e-9 ||
              (Math.abs(s.gainVcpus - best.s.gainVcpus) <= 1e-9 && tie < best.tie))
          )
            best = { s, vm, verdicts, tie };
        }
        if (!e.best)
          e.reasons = [
            'no feasible host in reach',
            ...verdicts.flatMap((v) => v.reasons.map((r) => `${v.host}: ${r}`)),
          ];
        else if (e.verdict !== 'moved')
          e.reasons = [
            `best move ${e.best.from} -> ${e.best.to} gains ${round3(e.best.gainVcpus)} vCPUs, needs ${round3(e.best.thresholdVcpus)}${e.best.reversal ? ' (it would reverse a recent move)' : ''}`,
          ];
      }
    }
    if (!best) break;
    const { s, vm } = best;
    const from = snap.hosts.get(s.from)!;
    const to = snap.hosts.get(s.to)!;
    const us = util(from);
    const ut = util(to);
    const d = demands.get(vm.name)!;
    const x = d.planned;
    workShort.set(from.name, workShort.get(from.name)! - d.short);
    workLong.set(from.name, workLong.get(from.name)! - d.long);
    workShort.set(to.name, workShort.get(to.name)! + d.short);
    workLong.set(to.name, workLong.get(to.name)! + d.long);
    setUtil(from);
    setUtil(to);
    resort(from);
    resort(to);
    const us2 = util(from);
    const ut2 = util(to);
    sum += us2 + ut2 - us - ut;
    sq += us2 * us2 + ut2 * ut2 - us * us - ut * ut;
    commitMove(c, vm, from.name, to.name);
    hostMoves.set(from.name, (hostMoves.get(from.name) ?? 0) + 1);
    hostMoves.set(to.name, (hostMoves.get(to.name) ?? 0) + 1);
    movedThisPass.add(vm.name);
    moves.push(s);
    candidates[vm.name] = toCandidates(best.verdicts);
    const e = explanations[vm.name]!;
    const why = unserved.get(vm.name);
    e.verdict = 'moved';
    e.best = s;
    e.reasons = [
      ...(why ? [`${why}: it moves`] : []),
      `${from.name} at ${Math.round(us * 100)} % of its CPUs (target ${Math.round(o.targetUtilisation * 100)} %); ` +
        `moving ${vm.name} (${round3(x)} vCPUs) to ${to.name} removes ${round3(s.contentionRemovedVcpus)} vCPUs of contention` +
        (s.imbalanceRemovedVcpus > 0 ? ` and ${round3(s.imbalanceRemovedVcpus)} of imbalance` : '') +
        ` for a cost of ${round3(s.costVcpus)} (copy ${s.copySeconds.toFixed(1)} s, downtime ~${Math.round(s.expectedDowntimeMs)} ms)`,
    ];
  }

  // A bursting VM that did not move gets what its host can give now (the moves may have made room).
  for (const b of bursts) {
    if (raised.has(b.vm.name) || movedThisPass.has(b.vm.name) || b.wantVcpus <= 1e-9) continue;
    const h = snap.hosts.get(b.vm.host)!;
    const without = Math.max(workShort.get(h.name)! - b.wantVcpus, workLong.get(h.name)!);
    const grant = Math.min(b.wantVcpus, Math.max(0, o.targetUtilisation * h.cpus - without));
    workShort.set(h.name, workShort.get(h.name)! - b.wantVcpus + grant);
    setUtil(h);
    const e = explanations[b.vm.name]!;
    const toPercent = Math.min(b.allowance.burstPercent, b.nowPercent + (100 * grant) / b.vm.vcpus);
    // Less than a tenth of a vCPU is not worth a change on the host.
    if (grant < 0.1) {
      e.reasons.push(
        `it does not move, and ${h.name} has no room under target to raise its cap: it stays at ${pct(b.nowPercent)} %`,
      );
      continue;
    }
    e.verdict = 'cap-raised';
    e.reasons.push(
      `it does not move: its cap is raised to ${pct(toPercent)} % (+${round3(grant)} vCPUs, what ${h.name} has free under target after this plan's moves)`,
    );
    raises.push(raiseOf(b, toPercent, grant, e.reasons.join('; ')));
  }

  const hostsAfter = [...hostsBefore.values()].map((h) => {
    const demand = demandOf(h.host);
    return {
      utilisation: h.cpus > 0 ? demand / h.cpus : 0,
      contention: Math.max(0, demand - h.cpus),
      host: h.host,
    };
  });
  const runningNames = new Set(running.map((h) => h.name));
  const actions: Action[] = moves.map((m) => ({
    kind: 'migrate',
    vm: m.vm,
    from: m.from,
    to: m.to,
    copyStorage: 'auto',
  }));
  const hot = [...new Set(moves.map((m) => m.from))].sort();
  return {
    decision: {
      ...input.decision,
      planner: 'drs',
      at: now,
      reason:
        (moves.length === 0
          ? 'no move: no host above target, or no move gains enough'
          : `rebalance: ${moves.length} move${moves.length === 1 ? '' : 's'} relieve ${hot.join(', ')}`) +
        (raises.length > 0
          ? `; ${raises.length} CPU cap${raises.length === 1 ? '' : 's'} raised within burst allowance`
          : ''),
      vms: moves.map((m) => m.vm),
      candidates,
      actions,
      ok: true,
      refused: [],
    },
    moves,
    raises,
    explanations,
    hosts: [...hostsBefore.values()],
    imbalanceBefore: imbalance([...hostsBefore.values()].filter((h) => runningNames.has(h.host))),
    imbalanceAfter: imbalance(hostsAfter.filter((h) => runningNames.has(h.host))),
    contentionBeforeVcpus: [...hostsBefore.values()].reduce((s, h) => s + h.contention, 0),
    contentionAfterVcpus: hostsAfter.reduce((s, h) => s + h.contention, 0),
    options: o,
  };
}

/** `drs explain VM`: the plan's word on the VM, and every host's verdict for it (why not there). */
export function explainVm(input: DrsInput, vmName: string) {
  const plan = planDrs(input);
  const vm = input.snap.vms.get(vmName);
  if (!vm) return null;
  const pass = newPass(input.snap, input.placement, sharedCommitments(input.snap), {
    sites: input.sitesOf?.(vmName) ?? [input.snap.hosts.get(vm.host)?.site ?? ''],
  });
  return {
    explanation: plan.explanations[vmName] ?? null,
    hosts: toCandidates(rank(pass, vm, 'drs', true)),
  };
}
