import { randomUUID } from 'node:crypto';
import type { DrsMode } from '../config/index.ts';
import {
  type Aggressiveness,
  type CapRaise,
  type CpuSample,
  type DrsInput,
  type DrsPlan,
  drsOptions,
  explainVm,
  type MoveRecord,
  type MoveScore,
  planDrs,
  vmDemands,
} from '../core/drs/index.ts';
import type { BurstAllowance, CpuRaise } from '../core/limits.ts';
import type { ClusterSnapshot } from '../core/model.ts';
import type { PlacementContext } from '../core/placement/index.ts';
import type { Decision } from '../core/plan.ts';
import { JobConflict, type JobSystem, SubmitRefused, type Submitted } from '../jobs/queue.ts';
import type { Metrics } from '../metrics/registry.ts';
import type { PassResult, Reconciler } from './runner.ts';

/**
 * The DRS reconciler (leader only). Every pass it keeps a short CPU history per VM from the
 * inventory's snapshot (the inventory keeps only the last figure). It plans with the pure
 * planner (core/drs) every `intervalMs`, and early when a VM starts to burst. By each VM's mode
 * it then runs the move as a job (automatic: one decision per move, under the VM's lock, probe
 * attached like every migration), keeps it as a recommendation for an operator (manual), or
 * leaves it (off: the planner never sees the VM as movable).
 */

export interface DrsRecommendation {
  /** `rec-…`; stays the same while later passes plan the same move. */
  id: string;
  vm: string;
  from: string;
  to: string;
  /** Why the move pays (the planner's sentence). */
  reason: string;
  score: MoveScore;
  /** First and last pass that planned it. */
  createdAt: number;
  plannedAt: number;
  /** The single-move decision `apply` submits (planner drs). */
  decision: Decision;
}

export type DrsMoveOutcome = 'submitted' | 'conflict' | 'refused';

export interface DrsLoopOptions {
  snapshot: () => ClusterSnapshot;
  jobs: Pick<JobSystem, 'submit' | 'holderOf'>;
  placement: PlacementContext;
  /** The VM's mode: its vms[] entry's drs, else the cluster's drs.mode. */
  modeOf: (vm: string) => DrsMode;
  /** Whether any VM may have a mode other than off (else the loop only samples). */
  anyEnabled: () => boolean;
  /** The VM's tier has the drs mechanism. */
  tierAllows: (vm: string) => boolean;
  sitesOf?: (vm: string) => readonly string[] | undefined;
  aggressiveness: Aggressiveness;
  /** Time between two plans. */
  planIntervalMs: number;
  /** Time between two samples (the inventory's interval): the pass interval. */
  sampleIntervalMs: number;
  /** The leader's fencing check right before submitting (LeaderLease.fence). */
  fenceCheck?: () => Promise<void>;
  metrics?: Pick<
    Metrics,
    'drsImbalance' | 'drsContention' | 'drsRecommendations' | 'drsMoves' | 'drsCapRaises'
  >;
  log: { info(o: object, msg: string): void; warn(o: object, msg: string): void };
  /** Decision ids (default `dec-<uuid>`) and recommendation ids (default `rec-<uuid>`). */
  newId?: () => string;
  newRecommendationId?: () => string;
  seed?: number;
  /** The burst allowance of the VM's limits profile (null: no cap, or no allowance). */
  burstAllowanceOf?: (vm: string) => BurstAllowance | null;
  /** The raise that holds for the VM now (store/cpu-raises.ts). */
  raiseOf?: (vm: string) => Promise<CpuRaise | null>;
}

const CONTROLLER = { id: 'controller', name: 'controller' };
const DAY_MS = 86_400_000;
/** A submitted move shows in the inventory within this (else it is counted again as another's). */
const OWN_MOVE_SEEN_WITHIN_MS = 3_600_000;

/** One migrate action of a plan as a decision of its own, so that each move runs and fails alone. */
export function moveDecision(
  plan: DrsPlan,
  move: MoveScore,
  o: { id: string; ref: string; requestedBy: { id: string; name: string } },
): Decision {
  const action = plan.decision.actions.find((a) => a.kind === 'migrate' && a.vm === move.vm)!;
  const why = plan.explanations[move.vm]?.reasons[0];
  return {
    ...plan.decision,
    id: o.id,
    ref: o.ref,
    requestedBy: o.requestedBy,
    reason: why ? `rebalance: ${why}` : plan.decision.reason,
    vms: [move.vm],
    candidates: plan.decision.candidates[move.vm] ? { [move.vm]: plan.decision.candidates[move.vm]! } : {},
    actions: [action],
    ok: true,
    refused: [],
  };
}

/** A raise of a VM's CPU cap within its burst allowance as a decision of its own (planner drs). */
export function raiseDecision(
  raise: CapRaise,
  at: number,
  o: { id: string; ref: string; requestedBy: { id: string; name: string } },
): Decision {
  return {
    ...o,
    planner: 'drs',
    at,
    reason: `burst protection: ${raise.reason}`,
    vms: [raise.vm],
    candidates: {},
    actions: [
      {
        kind: 'raise-cpu-cap',
        vm: raise.vm,
        host: raise.host,
        quotaPercent: raise.toPercent,
        periodUs: raise.periodUs,
        holdMs: raise.holdMs,
      },
    ],
    ok: true,
    refused: [],
  };
}

/** A move's job lets go of its VM before the inventory has read the destination: grace for that. */
const LANDING_GRACE_MS = 30_000;
/** No move holds planning back for longer (a move that hangs is the migration job's to end). */
const LANDING_MAX_MS = 600_000;

export class DrsLoop implements Reconciler {
  readonly name = 'drs';
  readonly leaderOnly = true;
  readonly intervalMs: number;
  private readonly history = new Map<string, CpuSample[]>();
  private readonly lastHost = new Map<string, string>();
  private readonly moves: MoveRecord[] = [];
  private readonly recs = new Map<string, DrsRecommendation>();
  private readonly historyMs: number;
  private lastPlanAt = Number.NEGATIVE_INFINITY;
  private bursting = new Set<string>();
  /**
   * DRS's own moves until the inventory shows their VM on the destination: the snapshot shows a
   * moving VM (and its burst) on its source, so a plan made meanwhile would move another VM off a
   * host that the first move relieves already. Planning waits for them.
   */
  private readonly landing = new Map<string, { to: string; at: number }>();
  /** Per capped VM with a burst allowance: the allowance and the raise that holds (read each pass). */
  private caps = new Map<string, { allowance: BurstAllowance; raise: CpuRaise | null }>();
  /** The last plan, for the API (null before the first). */
  lastPlan: DrsPlan | null = null;

  constructor(private readonly o: DrsLoopOptions) {
    this.intervalMs = Math.min(o.sampleIntervalMs, o.planIntervalMs);
    this.historyMs = drsOptions({ aggressiveness: o.aggressiveness }).windows.longMs;
  }

  /** The manual-mode moves of the last plan, oldest first. */
  recommendations(): DrsRecommendation[] {
    return [...this.recs.values()].sort((a, b) => a.createdAt - b.createdAt || a.id.localeCompare(b.id));
  }

  recommendation(id: string): DrsRecommendation | null {
    return this.recs.get(id) ?? null;
  }

  async pass(now: number): Promise<PassResult> {
    const snap = this.o.snapshot();
    this.sample(snap, now);
    if (!this.o.anyEnabled()) {
      this.recs.clear();
      this.publish(null);
      return {};
    }
    const windows = drsOptions({ aggressiveness: this.o.aggressiveness }).windows;
    const bursting = new Set(
      [...vmDemands(snap, this.history, now, windows).values()].filter((d) => d.burst).map((d) => d.vm),
    );
    const newBurst = [...bursting].some((vm) => !this.bursting.has(vm));
    this.bursting = bursting;
    const due = now - this.lastPlanAt >= this.o.planIntervalMs;
    if (!due && !newBurst && bursting.size === 0) return {};
    if (await this.stillLanding(snap, now)) return {};
    // While a VM bursts, plan at every sample: its demand is still climbing.
    this.lastPlanAt = now;
    await this.readCaps(snap);
    const plan = planDrs(this.input(snap, now));
    this.lastPlan = plan;
    const partial = await this.act(plan, now);
    this.publish(plan);
    return { result: partial ? 'partial' : 'success' };
  }

  /**
   * Whether one of DRS's own moves has not landed yet: its VM is not on the destination in the
   * snapshot and its job still holds it. A move whose job let go without the VM showing there
   * (failed, or the inventory not read since) is waited for LANDING_GRACE_MS after its submit;
   * none is waited for longer than LANDING_MAX_MS.
   */
  private async stillLanding(snap: ClusterSnapshot, now: number): Promise<boolean> {
    for (const [vm, m] of this.landing) {
      const age = now - m.at;
      if (snap.vms.get(vm)?.host === m.to || age > LANDING_MAX_MS) {
        this.landing.delete(vm);
        continue;
      }
      if (age <= LANDING_GRACE_MS || (await this.o.jobs.holderOf(vm))) return true;
      this.landing.delete(vm);
    }
    return false;
  }

  /** The burst allowance of every running VM that has one, and the raise that holds for it. */
  private async readCaps(snap: ClusterSnapshot): Promise<void> {
    const caps = new Map<string, { allowance: BurstAllowance; raise: CpuRaise | null }>();
    if (this.o.burstAllowanceOf)
      for (const vm of snap.vms.values()) {
        if (vm.state !== 'running') continue;
        const allowance = this.o.burstAllowanceOf(vm.name);
        if (!allowance) continue;
        const raise = await (this.o.raiseOf?.(vm.name) ?? Promise.resolve(null)).catch(() => null);
        caps.set(vm.name, { allowance, raise });
      }
    this.caps = caps;
  }

  /** `drs explain VM`: the planner's word on the VM now, with every host's verdict for it. */
  explain(vm: string, now: number) {
    const snap = this.o.snapshot();
    if (!snap.vms.has(vm)) return null;
    const e = explainVm(this.input(snap, now), vm);
    if (!e) return null;
    return { vm, host: snap.vms.get(vm)!.host, mode: this.modeOf(vm), ...e };
  }

  /** An operator applies a recommendation: its move is submitted now, as that operator's. */
  async apply(id: string, requestedBy: { id: string; name: string }): Promise<Submitted | null> {
    const rec = this.recs.get(id);
    if (!rec) return null;
    const decision: Decision = {
      ...rec.decision,
      id: this.newId(),
      at: Date.now(),
      ref: `drs:recommendation:${id}`,
      requestedBy,
    };
    const submitted = await this.o.jobs.submit(decision, { reason: `drs:${rec.from}` });
    this.recs.delete(id);
    this.moves.push({ vm: rec.vm, from: rec.from, to: rec.to, at: decision.at });
    this.landing.set(rec.vm, { to: rec.to, at: decision.at });
    this.o.metrics?.drsMoves.inc({ outcome: 'submitted', mode: 'manual' });
    this.o.metrics?.drsRecommendations.set(this.recs.size);
    return submitted;
  }

  private modeOf(vm: string): DrsMode {
    return this.o.tierAllows(vm) ? this.o.modeOf(vm) : 'off';
  }

  private newId(): string {
    return (this.o.newId ?? (() => `dec-${randomUUID()}`))();
  }

  private input(snap: ClusterSnapshot, now: number): DrsInput {
    return {
      snap,
      now,
      seed: this.o.seed ?? 0,
      history: this.history,
      recentMoves: this.moves,
      placement: this.o.placement,
      drsAllowed: (vm) => this.modeOf(vm) !== 'off',
      capOf: (vm) => this.caps.get(vm),
      // An operator applies moves; a raise is DRS's own only where it acts on its own.
      raiseAllowed: (vm) => this.modeOf(vm) === 'automatic',
      ...(this.o.sitesOf ? { sitesOf: this.o.sitesOf } : {}),
      options: { aggressiveness: this.o.aggressiveness },
      decision: { id: this.newId(), ref: 'drs', requestedBy: CONTROLLER },
    };
  }

  /** One sample per VM per inventory observation; a VM seen on another host counts as moved. */
  private sample(snap: ClusterSnapshot, now: number): void {
    const seen = new Set<string>();
    for (const vm of snap.vms.values()) {
      seen.add(vm.name);
      const was = this.lastHost.get(vm.name);
      if (was !== undefined && was !== vm.host)
        this.noteMove({ vm: vm.name, from: was, to: vm.host, at: now });
      this.lastHost.set(vm.name, vm.host);
      if (vm.state !== 'running' || vm.cpuUsage === null) continue;
      const at = snap.hosts.get(vm.host)?.observedAt ?? snap.takenAt;
      const ring = this.history.get(vm.name) ?? [];
      this.history.set(vm.name, ring);
      if (ring.length > 0 && ring[ring.length - 1]!.at >= at) continue;
      ring.push({ at, cpu: vm.cpuUsage });
      while (ring.length > 0 && ring[0]!.at < now - this.historyMs) ring.shift();
    }
    for (const vm of this.history.keys()) if (!seen.has(vm)) this.history.delete(vm);
    for (const vm of this.lastHost.keys()) if (!seen.has(vm)) this.lastHost.delete(vm);
    while (this.moves.length > 0 && this.moves[0]!.at < now - DAY_MS) this.moves.shift();
  }

  /** A move seen in the inventory (anyone's), unless it is one DRS itself submitted. */
  private noteMove(m: MoveRecord): void {
    const known = this.moves.some(
      (x) => x.vm === m.vm && x.from === m.from && x.to === m.to && m.at - x.at < OWN_MOVE_SEEN_WITHIN_MS,
    );
    if (!known) this.moves.push(m);
  }

  /** Runs the automatic moves, keeps the manual ones; true when a move could not be submitted. */
  private async act(plan: DrsPlan, now: number): Promise<boolean> {
    let partial = await this.raise(plan, now);
    const planned = new Set<string>();
    for (const move of plan.moves) {
      const mode = this.modeOf(move.vm);
      if (mode === 'manual') {
        planned.add(this.keep(plan, move, now));
        continue;
      }
      if (mode !== 'automatic') continue;
      if (await this.o.jobs.holderOf(move.vm)) continue;
      const decision = moveDecision(plan, move, { id: this.newId(), ref: 'drs', requestedBy: CONTROLLER });
      try {
        await this.o.jobs.submit(decision, {
          reason: `drs:${move.from}`,
          ...(this.o.fenceCheck ? { fence: this.o.fenceCheck } : {}),
        });
        this.moves.push({ vm: move.vm, from: move.from, to: move.to, at: now });
        this.landing.set(move.vm, { to: move.to, at: now });
        this.o.metrics?.drsMoves.inc({ outcome: 'submitted', mode: 'automatic' });
        this.o.log.info(
          { vm: move.vm, from: move.from, to: move.to, decision: decision.id, reason: decision.reason },
          'drs move submitted',
        );
      } catch (e) {
        if (!(e instanceof JobConflict || e instanceof SubmitRefused)) throw e;
        const outcome: DrsMoveOutcome = e instanceof JobConflict ? 'conflict' : 'refused';
        this.o.metrics?.drsMoves.inc({ outcome, mode: 'automatic' });
        this.o.log.warn({ vm: move.vm, to: move.to, err: e.message }, 'drs move not submitted');
        partial = true;
      }
    }
    // A recommendation the plan no longer makes is gone (its reason no longer holds).
    for (const id of this.recs.keys()) if (!planned.has(id)) this.recs.delete(id);
    return partial;
  }

  /** Submits the plan's cap raises (automatic VMs only); true when one could not be submitted. */
  private async raise(plan: DrsPlan, now: number): Promise<boolean> {
    let partial = false;
    for (const r of plan.raises) {
      if (this.modeOf(r.vm) !== 'automatic' || (await this.o.jobs.holderOf(r.vm))) continue;
      const decision = raiseDecision(r, now, { id: this.newId(), ref: 'drs', requestedBy: CONTROLLER });
      try {
        await this.o.jobs.submit(decision, {
          reason: `drs:burst:${r.host}`,
          ...(this.o.fenceCheck ? { fence: this.o.fenceCheck } : {}),
        });
        this.o.metrics?.drsCapRaises.inc({ outcome: 'submitted', kind: r.renewal ? 'renewal' : 'raise' });
        this.o.log.info(
          { vm: r.vm, host: r.host, fromPercent: r.fromPercent, toPercent: r.toPercent, renewal: r.renewal },
          'drs cap raise submitted',
        );
      } catch (e) {
        if (!(e instanceof JobConflict || e instanceof SubmitRefused)) throw e;
        this.o.metrics?.drsCapRaises.inc({
          outcome: e instanceof JobConflict ? 'conflict' : 'refused',
          kind: r.renewal ? 'renewal' : 'raise',
        });
        this.o.log.warn({ vm: r.vm, err: e.message }, 'drs cap raise not submitted');
        partial = true;
      }
    }
    return partial;
  }

  private keep(plan: DrsPlan, move: MoveScore, now: number): string {
    const same = [...this.recs.values()].find(
      (r) => r.vm === move.vm && r.from === move.from && r.to === move.to,
    );
    const id = same?.id ?? (this.o.newRecommendationId ?? (() => `rec-${randomUUID()}`))();
    const decision = moveDecision(plan, move, {
      id: this.newId(),
      ref: `drs:recommendation:${id}`,
      requestedBy: CONTROLLER,
    });
    this.recs.set(id, {
      id,
      vm: move.vm,
      from: move.from,
      to: move.to,
      reason: decision.reason,
      score: move,
      createdAt: same?.createdAt ?? now,
      plannedAt: now,
      decision,
    });
    return id;
  }

  private publish(plan: DrsPlan | null): void {
    const m = this.o.metrics;
    if (!m) return;
    m.drsRecommendations.set(this.recs.size);
    if (!plan) return;
    m.drsImbalance.set(plan.imbalanceBefore);
    m.drsContention.set(plan.contentionBeforeVcpus);
  }
}
