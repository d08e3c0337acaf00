import type { ClusterSnapshot, VmSnapshot } from '../core/model.ts';
import type { Decision } from '../core/plan.ts';
import { JobConflict, type JobSystem, SubmitRefused } from '../jobs/queue.ts';
import type { AuditLog } from '../store/audit.ts';
import type { PassResult, Reconciler } from './runner.ts';

/**
 * The restart side of failover (leader only): for each host the health model calls `fenced`
 * (a confirmed power off after its last answer, store/fences.ts), the VMs it last ran that
 * run nowhere now and whose tier has failover are planned onto other hosts (the injected
 * planner, pure) and submitted as `restart-elsewhere` actions; the executor checks each one
 * again on a fresh snapshot (core/planners/restart.ts) and runs it under the VM's lock. A VM
 * already held by a job, or refused by the planner, is tried again on the next pass.
 */

export interface FailoverLoopOptions {
  snapshot: () => ClusterSnapshot;
  jobs: Pick<JobSystem, 'submit' | 'holderOf'>;
  /** Whether the VM's tier has the failover mechanism (only those are restarted). */
  hasFailover: (vm: string) => boolean;
  /** The pure restart plan for `vms` lost with `host` (restart-elsewhere actions, refusals). */
  plan: (snap: ClusterSnapshot, host: string, vms: VmSnapshot[]) => Decision;
  /** A VM's size when this replica never saw it running (after a restart): its stored definition. */
  storedVm?: (vm: string, host: string) => Promise<VmSnapshot | null>;
  /** The leader's fencing check right before submitting (LeaderLease.fence). */
  fenceCheck?: () => Promise<void>;
  audit: Pick<AuditLog, 'record'>;
  log: { info(o: object, msg: string): void; warn(o: object, msg: string): void };
  intervalMs: number;
}

const ACTIVE = new Set(['running', 'paused', 'blocked', 'pmsuspended']);

export class FailoverLoop implements Reconciler {
  readonly name = 'failover';
  readonly leaderOnly = true;
  readonly intervalMs: number;
  /** Decisions already refused with the same reasons (logged once, not every pass). */
  private readonly refusedSeen = new Set<string>();
  /** Each VM as last seen running (its size is what a restart needs). */
  private readonly lastSeen = new Map<string, VmSnapshot>();

  constructor(private readonly o: FailoverLoopOptions) {
    this.intervalMs = o.intervalMs;
  }

  async pass(): Promise<PassResult> {
    const snap = this.o.snapshot();
    for (const v of snap.vms.values()) this.lastSeen.set(v.name, v);
    let partial = false;
    for (const h of [...snap.hosts.values()].sort((a, b) => a.name.localeCompare(b.name))) {
      if (h.health !== 'fenced' || !h.lastKnownVms?.length) continue;
      const lost: VmSnapshot[] = [];
      for (const vm of h.lastKnownVms) {
        const now = snap.vms.get(vm);
        if (now && ACTIVE.has(now.state)) continue;
        if (!this.o.hasFailover(vm)) continue;
        if (await this.o.jobs.holderOf(vm)) continue;
        const seen = this.lastSeen.get(vm) ?? (await this.o.storedVm?.(vm, h.name).catch(() => null)) ?? null;
        if (!seen) {
          this.o.log.warn({ vm, host: h.name }, 'failover: no size known for a lost VM');
          partial = true;
          continue;
        }
        lost.push(seen);
      }
      if (lost.length === 0) continue;
      const decision = this.o.plan(snap, h.name, lost);
      if (decision.actions.length === 0) {
        this.noteRefused(h.name, decision);
        partial = true;
        continue;
      }
      // Submit what fits now; the rest is planned again on the next pass.
      const runnable: Decision = { ...decision, ok: true, refused: [] };
      try {
        await this.o.jobs.submit(runnable, {
          reason: `failover:${h.name}`,
          ...(this.o.fenceCheck ? { fence: this.o.fenceCheck } : {}),
        });
        this.o.log.info(
          { host: h.name, decision: decision.id, restarts: decision.actions.length },
          'failover restarts submitted',
        );
      } catch (e) {
        if (!(e instanceof JobConflict || e instanceof SubmitRefused)) throw e;
        this.o.log.warn({ host: h.name, err: e.message }, 'failover restarts not submitted');
        partial = true;
      }
      if (!decision.ok) this.noteRefused(h.name, decision);
    }
    return { result: partial ? 'partial' : 'success' };
  }

  private noteRefused(host: string, d: Decision): void {
    const key = `${host}:${JSON.stringify(d.refused)}`;
    if (this.refusedSeen.has(key)) return;
    this.refusedSeen.add(key);
    this.o.log.warn({ host, refused: d.refused }, 'failover: VMs with nowhere to restart');
    void this.o.audit
      .record({
        actor: 'controller',
        actorName: 'controller',
        role: null,
        action: 'failover.refused',
        target: host,
        params: { decision: d.id, refused: d.refused },
        outcome: 'rejected',
        message: d.refused.map((r) => `${r.vm}: ${r.reasons.join('; ')}`).join(' | '),
      })
      .catch(() => undefined);
  }
}
