import { randomUUID } from 'node:crypto';
import {
  emptyHaState,
  type FenceResult,
  type HaCommand,
  type HaConfig,
  type HaEvent,
  type HaInput,
  type HaState,
  stepHa,
} from '../core/ha/machine.ts';
import type { FailoverPlacement } from '../core/ha/restart-plan.ts';
import type { ClusterSnapshot } from '../core/model.ts';
import type { Decision } from '../core/plan.ts';
import type { FenceResult as FenceOutcome } from '../fence/run.ts';
import { JobConflict, type JobSystem, SubmitRefused } from '../jobs/queue.ts';
import type { JobView } from '../jobs/views.ts';
import type { Metrics } from '../metrics/registry.ts';
import type { AuditLog } from '../store/audit.ts';
import type { FenceRecord } from '../store/fences.ts';
import type { HaRecord, HaStore } from '../store/ha.ts';
import type { FailoverTimeline } from './failover-timeline.ts';
import type { PassResult, Reconciler } from './runner.ts';

/**
 * Automatic failover (leader only): each pass feeds the pure state machine (core/ha/machine.ts
 * stepHa, the one the simulator runs) with every host's judged health, the snapshot, the HA
 * pause, and what happened since the last pass (fence results, restart job outcomes), saves
 * its state, then runs its commands:
 * - `fence`: the host's fence method (src/fence), in the background; a confirmed power off is
 *   recorded in the fence book (so the health model says `fenced` and the executor allows the
 *   restart) before the machine hears of it;
 * - `restart`: the machine's Decision submitted to the executor (one job per VM, each under
 *   the VM's lock, checked again on a fresh snapshot: core/planners/restart.ts).
 * Every event goes to the log and the audit log (action `ha.<kind>`). The state lives in Redis
 * (store/ha.ts): a new leader continues a recovery where the old one left it, and a restart
 * whose job it cannot find is reported failed and planned again, never run twice. Each host
 * failure has its record (loops/failover-timeline.ts), the open ones saved with the state.
 */

export type HaStorePort = Pick<HaStore, 'loadState' | 'saveState' | 'paused' | 'takeClears'>;

export interface HaLoopOptions {
  snapshot: () => ClusterSnapshot;
  jobs: Pick<JobSystem, 'submit' | 'get'>;
  fence: (host: string) => Promise<FenceOutcome>;
  recordFence: (r: FenceRecord) => Promise<void>;
  store: HaStorePort;
  /** haPriorityOf is null for a VM that is not restarted on failover (its tier has no failover). */
  placement: FailoverPlacement;
  /** A VM's size when it is not running anywhere: the last seen, else its stored definition. */
  specOf: (vm: string) => Promise<{ vcpus: number; memoryKiB: number } | null>;
  config: HaConfig;
  /** The leader's fencing check before every write and submit (LeaderLease.fence). */
  fenceCheck: () => Promise<void>;
  audit: Pick<AuditLog, 'record'>;
  metrics?: Pick<Metrics, 'haEvents' | 'haHostPhase' | 'haPaused' | 'fences'>;
  log: { info(o: object, msg: string): void; warn(o: object, msg: string): void };
  intervalMs: number;
  /** Asks for a pass soon (a fence finished): the machine hears of it without waiting an interval. */
  wake?: () => void;
  now?: () => number;
  /** The failover records (one per host failure) kept as the failover goes on. */
  timeline?: FailoverTimeline;
}

/** How long a restart's time is kept against stale crash observations (they are seconds old). */
const RESTARTED_KEPT_MS = 3_600_000;

const ACTIVE = new Set(['running', 'paused', 'blocked', 'pmsuspended']);
const FINISHED = (j: JobView) => j.state !== 'waiting' && j.state !== 'active';

export class HaLoop implements Reconciler {
  readonly name = 'ha';
  readonly leaderOnly = true;
  readonly intervalMs: number;
  /** Fence results not yet given to the machine (a success only once the health says fenced). */
  private fenceResults: FenceResult[] = [];
  private readonly fencing = new Set<string>();
  private readonly seen = new Map<string, { vcpus: number; memoryKiB: number }>();
  /** Refusals already audited, by text (the machine repeats them at every re-plan). */
  private readonly refusedSeen = new Set<string>();
  private declareTimer: NodeJS.Timeout | null = null;

  constructor(private readonly o: HaLoopOptions) {
    this.intervalMs = o.intervalMs;
  }

  async pass(): Promise<PassResult> {
    const now = (this.o.now ?? Date.now)();
    const snap = this.o.snapshot();
    for (const v of snap.vms.values()) this.seen.set(v.name, { vcpus: v.vcpus, memoryKiB: v.memoryKiB });
    const record = (await this.o.store.loadState()) ?? { machine: emptyHaState(), jobs: {} };
    const pause = await this.o.store.paused();
    this.o.metrics?.haPaused.set(pause ? 1 : 0);

    const restartResults = await this.restartResults(record, snap);
    record.restartedAt = Object.fromEntries(
      Object.entries(record.restartedAt ?? {}).filter(([, t]) => now - t < RESTARTED_KEPT_MS),
    );
    for (const r of restartResults) if (r.ok) record.restartedAt[r.vm] = now;
    // Taken before the step: a leader lost before saving it loses the clear (asked again).
    const operatorClear = await this.o.store.takeClears();
    const vmDied = this.crashedVms(record, snap);
    // For the priority gate: the VMs the probe saw answer (or that no probe agent watches).
    const answered = this.o.timeline?.answeredVms(record.failovers ?? []) ?? [];
    const specs = await this.specs(
      record.machine,
      snap,
      vmDied.map((d) => d.vm),
    );
    const health: HaInput['health'] = {};
    for (const h of snap.hosts.values())
      health[h.name] = {
        health: h.health,
        evidence: h.evidence ?? { connected: false, lastCallAgeMs: null, icmp: null },
      };
    // A confirmed fence reaches the machine once the health model has it (the executor checks it).
    const ready = this.fenceResults.filter((r) => !r.ok || snap.hosts.get(r.host)?.health === 'fenced');
    this.fenceResults = this.fenceResults.filter((r) => !ready.includes(r));

    const step = stepHa(
      record.machine,
      {
        health,
        snapshot: snap,
        placement: this.o.placement,
        specOf: (vm) => specs.get(vm) ?? null,
        pausedUntil: pause?.until ?? null,
        fenceResults: ready,
        restartResults,
        vmDied,
        operatorClear,
        answered,
      },
      now,
      this.o.config,
    );
    for (const r of restartResults) delete record.jobs[r.vm];
    const failovers = this.o.timeline
      ? await this.o.timeline.step(
          record.failovers ?? [],
          { prev: record.machine, next: step.state, events: step.events, restartResults },
          snap,
          now,
        )
      : [];
    record.failovers = failovers.filter((f) => f.status === 'open');
    record.machine = step.state;
    this.publish(step.state);
    // Saved before anything runs: a crash after this point loses a command, which the next
    // leader sees as a fence with no result or a restart with no job, and retries safely.
    await this.o.fenceCheck();
    await this.o.store.saveState(record);
    for (const e of step.events) this.report(e);
    let partial = false;
    for (const c of step.commands) if (!(await this.run(c, record))) partial = true;
    if (step.commands.some((c) => c.kind === 'restart')) await this.o.store.saveState(record);
    await this.o.timeline?.flush([...failovers.filter((f) => f.status !== 'open'), ...record.failovers]);
    this.wakeAtDeclare(step.state, now);
    return { result: partial ? 'partial' : 'success' };
  }

  /** A host seen down is declared when its declare delay ends, not at the next interval after. */
  private wakeAtDeclare(state: HaState, now: number): void {
    if (!this.o.wake || this.declareTimer) return;
    const due = Object.values(state.hosts)
      .filter((h) => h.phase === 'suspect' && h.downSince !== null)
      .map((h) => h.downSince! + this.o.config.declareAfterMs - now);
    if (due.length === 0) return;
    this.declareTimer = setTimeout(
      () => {
        this.declareTimer = null;
        this.o.wake?.();
      },
      Math.max(0, Math.min(...due)),
    );
    this.declareTimer.unref();
  }

  async close(): Promise<void> {
    if (this.declareTimer) clearTimeout(this.declareTimer);
    this.declareTimer = null;
  }

  /** What became of each restart in flight: its job's outcome (a job that is gone counts as failed). */
  private async restartResults(record: HaRecord, snap: ClusterSnapshot) {
    const out: { vm: string; host: string; ok: boolean; error?: string }[] = [];
    // Host recoveries' restarts, then VM-level ones (in place, or a relocation).
    const inFlight: [string, string][] = Object.values(record.machine.hosts).flatMap((h) =>
      Object.entries(h.inFlight),
    );
    for (const [vm, v] of Object.entries(record.machine.vms))
      if (v.phase === 'restarting' && !inFlight.some(([x]) => x === vm))
        inFlight.push([vm, record.jobs[vm]?.to ?? v.host]);
    for (const [vm, to] of inFlight) {
      const job = record.jobs[vm];
      const now = snap.vms.get(vm);
      if (now?.host === to && ACTIVE.has(now.state)) {
        out.push({ vm, host: to, ok: true });
        continue;
      }
      if (!job || job.to !== to) {
        out.push({ vm, host: to, ok: false, error: 'no restart job was submitted' });
        continue;
      }
      const view = await this.o.jobs.get(job.job);
      if (view && !FINISHED(view)) continue;
      if (view?.state === 'succeeded') out.push({ vm, host: to, ok: true });
      else
        out.push({
          vm,
          host: to,
          ok: false,
          error: view ? `job ${view.id} ${view.state}: ${reasonOf(view)}` : `job ${job.job} is gone`,
        });
    }
    return out;
  }

  /**
   * HA VMs libvirt reports shut off as crashed (QEMU died, the guest crashed) on an up host, that
   * the machine is not restarting or holding in error, in an observation newer than their last
   * restart, and that no host recovery owns. The machine restarts them in place, then relocates.
   */
  private crashedVms(record: HaRecord, snap: ClusterSnapshot): { vm: string; host: string }[] {
    const state = record.machine;
    const owned = new Set(
      Object.values(state.hosts).flatMap((h) => [
        ...h.pending,
        ...h.vms,
        ...(h.gated ?? []),
        ...Object.keys(h.inFlight),
      ]),
    );
    const out: { vm: string; host: string }[] = [];
    for (const v of snap.vms.values()) {
      if (!v.crashed || owned.has(v.name)) continue;
      const host = snap.hosts.get(v.host);
      if (host?.health !== 'up') continue;
      const phase = state.vms[v.name]?.phase;
      if (phase === 'restarting' || phase === 'error') continue;
      if ((host.observedAt ?? 0) <= (record.restartedAt?.[v.name] ?? 0)) continue;
      out.push({ vm: v.name, host: v.host });
    }
    return out;
  }

  /** Sizes of the VMs the machine may plan now (lost hosts' last known VMs, pending and crashed ones). */
  private async specs(state: HaState, snap: ClusterSnapshot, crashed: readonly string[]) {
    // A crashed VM past its restart limit is relocated: placed by its size too.
    const wanted = new Set<string>(crashed);
    for (const h of snap.hosts.values())
      if (h.health !== 'up') for (const v of h.lastKnownVms ?? []) wanted.add(v);
    for (const h of Object.values(state.hosts)) for (const v of [...h.pending, ...h.vms]) wanted.add(v);
    const out = new Map<string, { vcpus: number; memoryKiB: number }>();
    for (const vm of wanted) {
      const s = this.seen.get(vm) ?? (await this.o.specOf(vm).catch(() => null));
      if (s) out.set(vm, s);
    }
    return out;
  }

  private async run(c: HaCommand, record: HaRecord): Promise<boolean> {
    if (c.kind === 'fence') {
      this.startFence(c.host, c.attempt);
      return true;
    }
    const hosts = [...new Set(c.decision.actions.map((a) => ('from' in a ? a.from : a.host)))].sort();
    // Ids unique across controller lifetimes (the machine's are a per-state sequence).
    const decision: Decision = {
      ...c.decision,
      id: `dec-${randomUUID()}`,
      ref: `failover:${hosts.join(',')}`,
    };
    try {
      const submitted = await this.o.jobs.submit(decision, {
        reason: `failover:${hosts.join(',')}`,
        fence: this.o.fenceCheck,
      });
      for (const j of submitted.jobs) if (j.kind !== 'evacuate') record.jobs[j.vm] = { job: j.id, to: j.to };
      if (this.o.timeline && record.failovers)
        record.failovers = this.o.timeline.submitted(
          record.failovers,
          decision,
          submitted.jobs.flatMap((j) => (j.kind === 'evacuate' ? [] : [j])),
          (this.o.now ?? Date.now)(),
        );
      this.o.log.info(
        { decision: decision.id, restarts: submitted.jobs.length },
        'failover restarts submitted',
      );
      return true;
    } catch (e) {
      if (!(e instanceof JobConflict || e instanceof SubmitRefused)) throw e;
      // No job: the next pass reports these restarts failed and the machine plans them again.
      this.o.log.warn({ decision: decision.id, err: e.message }, 'failover restarts not submitted');
      return false;
    }
  }

  private startFence(host: string, attempt: number): void {
    if (this.fencing.has(host)) return;
    this.fencing.add(host);
    void (async () => {
      let r: FenceOutcome;
      try {
        r = await this.o.fence(host);
      } catch (e) {
        r = {
          host,
          method: 'unknown',
          ok: false,
          confirmedOff: false,
          startedAt: Date.now(),
          endedAt: Date.now(),
          error: (e as Error).message,
          evidence: 'the fence threw',
        };
      }
      const off = r.ok && r.confirmedOff;
      if (off)
        await this.o
          .recordFence({
            host,
            method: r.method,
            at: r.endedAt,
            evidence: r.evidence,
            ref: `failover:${host}`,
          })
          .catch((e: Error) => {
            r = { ...r, ok: false, error: `recording the fence failed: ${e.message}` };
          });
      this.o.metrics?.fences.inc({ host, outcome: r.ok && r.confirmedOff ? 'confirmed-off' : 'failed' });
      this.o.audit
        .record({
          actor: 'controller',
          actorName: 'controller',
          role: null,
          action: 'host.fence',
          target: host,
          params: { attempt, method: r.method, evidence: r.evidence, ms: r.endedAt - r.startedAt },
          outcome: r.ok && r.confirmedOff ? 'succeeded' : 'failed',
          ...(r.error ? { message: r.error } : {}),
        })
        .catch(() => undefined);
      this.fenceResults.push({
        host,
        attempt,
        ok: r.ok,
        powerOff: r.ok && r.confirmedOff,
        ...(r.error ? { error: r.error } : {}),
      });
      this.o.wake?.();
    })().finally(() => this.fencing.delete(host));
  }

  private report(e: HaEvent): void {
    this.o.metrics?.haEvents.inc({ kind: e.kind });
    // The inventory logs and audits every health change already (host.health).
    if (e.kind === 'health') return;
    if (e.kind === 'refused') {
      if (this.refusedSeen.has(e.text)) return;
      this.refusedSeen.add(e.text);
    }
    const warn = e.kind === 'alert' || e.kind === 'fence-failed' || e.kind === 'refused';
    this.o.log[warn ? 'warn' : 'info']({ host: e.host, vm: e.vm, kind: e.kind }, e.text);
    this.o.audit
      .record({
        actor: 'controller',
        actorName: 'controller',
        role: null,
        action: `ha.${e.kind}`,
        target: e.host ?? e.vm ?? 'cluster',
        params: {
          text: e.text,
          ...(e.vm ? { vm: e.vm } : {}),
          ...(e.evidence ? { evidence: e.evidence } : {}),
        },
        outcome: warn ? 'failed' : 'succeeded',
        message: e.text,
      })
      .catch(() => undefined);
  }

  private publish(state: HaState): void {
    const g = this.o.metrics?.haHostPhase;
    if (!g) return;
    g.reset();
    for (const [host, h] of Object.entries(state.hosts)) g.set({ host, phase: h.phase }, 1);
  }
}

function reasonOf(v: JobView): string {
  const r = v.result as { reason?: string | null } | null;
  return r?.reason ?? 'no reason given';
}
