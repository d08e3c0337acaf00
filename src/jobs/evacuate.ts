import { randomUUID } from 'node:crypto';
import type { Job } from 'bullmq';
import type { ClusterSnapshot } from '../core/model.ts';
import type { PlacementContext } from '../core/placement/index.ts';
import { planEnterMaintenance, planExitMaintenance, refusalText } from '../core/planners/evacuate.ts';
import type { AuditLog } from '../store/audit.ts';
import type { MaintenanceBook } from '../store/maintenance.ts';
import { JobConflict, type JobSystem, type MigrationJobView, SubmitRefused } from './queue.ts';
import { EVACUATE_QUEUE, type EvacuationData, type EvacuationResult } from './views.ts';
import type { LockEffect } from './vm-lock.ts';

/**
 * Maintenance of a host, shared by the API and the maintenance windows. Enter plans the
 * evacuation (core/planners/evacuate.ts) and submits it all or nothing: in one Redis step
 * every VM's lock is taken and the host is marked in maintenance, or nothing happens and the
 * reasons say why (a host that is not up, a VM that fits nowhere, a VM that already has a
 * job). The moves are the children of one parent job (`evac-<uuid>`, a BullMQ flow), which
 * runs when they are all done and reports what moved; the flow lives in Redis, so it resumes
 * after a crash (a move that was under way reconciles). Exit with moveBack likewise.
 */

export interface EvacuationDeps {
  jobs: JobSystem;
  maintenance: MaintenanceBook;
  placement: PlacementContext & { haPriorityOf(vm: string): number };
  snapshot(): ClusterSnapshot;
  audit: AuditLog;
  log: { info(o: object, msg: string): void; warn(o: object, msg: string): void };
}

export interface MaintenanceAnswer {
  host: string;
  maintenance: boolean;
  /** The moves, as jobs. */
  jobs: MigrationJobView[];
  /** The parent job that owns the moves (null when nothing moves). */
  job: string | null;
  decision: string;
  plan?: { host: string; ok: boolean; moves: { vm: string; to: string; score: number }[] };
}

type Requester = { id: string; name: string };

/** Prefixes a submit failure with what it was about; anything else passes through. */
function explain(e: unknown, prefix: string): never {
  if (e instanceof JobConflict) throw new JobConflict(`${prefix}: ${e.message}`, e.conflicts);
  if (e instanceof SubmitRefused) throw new SubmitRefused(`${prefix}: ${e.message}`, e.refused);
  throw e;
}

export class Evacuations {
  constructor(private readonly d: EvacuationDeps) {}

  async enter(
    host: string,
    o: { anySite?: boolean },
    requestedBy: Requester,
    ref: string,
  ): Promise<MaintenanceAnswer> {
    const decision = planEnterMaintenance(this.d.snapshot(), host, this.d.placement, o, {
      id: `dec-${randomUUID()}`,
      at: Date.now(),
      ref,
      requestedBy,
    });
    const prefix = `cannot evacuate ${host}, nothing was moved`;
    if (!decision.ok) throw new SubmitRefused(`${prefix}: ${refusalText(decision)}`, decision.refused);
    const m = this.d.maintenance;
    await m.evacuated(host); // an older version's record becomes the hash the plan writes
    const effects: LockEffect[] = [{ op: 'SADD', key: m.setKey, member: host }];
    // Merged into what an earlier enter moved off, so that moveBack forgets none of them.
    for (const a of decision.actions)
      if (a.kind === 'migrate')
        effects.push({ op: 'HSET', key: m.evacuatedKey(host), field: a.vm, value: a.to });
    const parent = this.parent(host, 'enter', decision.id, requestedBy, `maintenance:${host}`);
    const submitted = await this.d.jobs
      .submit(decision, { reason: `maintenance:${host}`, effects, parent })
      .catch((e) => explain(e, prefix));
    await m.refresh();
    this.d.log.info(
      { host, decision: decision.id, job: parent.id, moves: decision.actions.length },
      'maintenance entered',
    );
    const scores = new Map(
      decision.vms.map((vm) => [vm, decision.candidates[vm]?.find((c) => c.feasible)?.score ?? 0]),
    );
    return {
      host,
      maintenance: true,
      jobs: submitted.jobs as MigrationJobView[],
      job: parent.id,
      decision: decision.id,
      plan: {
        host,
        ok: true,
        moves: decision.actions.flatMap((a) =>
          a.kind === 'migrate' ? [{ vm: a.vm, to: a.to, score: scores.get(a.vm) ?? 0 }] : [],
        ),
      },
    };
  }

  async exit(
    host: string,
    o: { moveBack?: boolean },
    requestedBy: Requester,
    ref: string,
  ): Promise<MaintenanceAnswer> {
    const m = this.d.maintenance;
    const evacuated = await m.evacuated(host);
    const decision = planExitMaintenance(
      this.d.snapshot(),
      host,
      evacuated,
      { moveBack: o.moveBack ?? false },
      {
        id: `dec-${randomUUID()}`,
        at: Date.now(),
        ref,
        requestedBy,
      },
    );
    const prefix = `cannot take ${host} out of maintenance, nothing was changed`;
    if (!decision.ok) throw new SubmitRefused(`${prefix}: ${refusalText(decision)}`, decision.refused);
    const effects: LockEffect[] = [
      { op: 'SREM', key: m.setKey, member: host },
      { op: 'DEL', key: m.evacuatedKey(host) },
    ];
    const parent =
      decision.actions.length > 0
        ? this.parent(host, 'exit', decision.id, requestedBy, `return:${host}`)
        : undefined;
    const submitted = await this.d.jobs
      .submit(decision, { reason: `return:${host}`, effects, ...(parent ? { parent } : {}) })
      .catch((e) => explain(e, prefix));
    await m.refresh();
    return {
      host,
      maintenance: false,
      jobs: submitted.jobs as MigrationJobView[],
      job: parent?.id ?? null,
      decision: decision.id,
    };
  }

  private parent(
    host: string,
    action: 'enter' | 'exit',
    decisionId: string,
    requestedBy: Requester,
    reason: string,
  ) {
    const data: Omit<EvacuationData, 'jobs'> = { host, action, reason, requestedBy, decisionId };
    return { queue: EVACUATE_QUEUE, id: `evac-${randomUUID()}`, data };
  }

  /** The parent job, run once every move it owns has finished: what moved, and what did not. */
  async runParent(job: Job): Promise<EvacuationResult> {
    const d = job.data as EvacuationData;
    const moved: string[] = [];
    const notMoved: { vm: string; reason: string }[] = [];
    for (const id of d.jobs) {
      const v = await this.d.jobs.get(id);
      if (v?.kind !== 'migrate') continue;
      if (v.state === 'succeeded') moved.push(v.vm);
      else notMoved.push({ vm: v.vm, reason: `${v.state}: ${v.result?.reason ?? 'no result'}` });
    }
    const result: EvacuationResult = {
      outcome: notMoved.length === 0 ? 'succeeded' : 'failed',
      reason:
        notMoved.length === 0
          ? null
          : `${notMoved.map((n) => n.vm).join(', ')} did not move${d.action === 'enter' ? ` off ${d.host}` : ` back to ${d.host}`}`,
      moved,
      notMoved,
      finishedAt: Date.now(),
    };
    await this.d.audit.record({
      actor: 'controller',
      actorName: 'controller',
      role: null,
      action: d.action === 'enter' ? 'maintenance.evacuated' : 'maintenance.returned',
      target: d.host,
      params: { job: job.id, decision: d.decisionId, moved, notMoved: notMoved.map((n) => n.vm) },
      outcome: result.outcome,
      message: result.reason,
    });
    this.d.log.info({ host: d.host, job: job.id, moved, notMoved }, `maintenance ${d.action} finished`);
    return result;
  }
}
