import { randomUUID } from 'node:crypto';
import type { ClusterSnapshot } from '../core/model.ts';
import type { PlannerName } from '../core/plan.ts';
import { type PowerKind, planPower } from '../core/planners/power.ts';
import { JobConflict, type JobSystem, SubmitRefused } from './queue.ts';
import type { JobView } from './views.ts';

/**
 * One start, shutdown or destroy, from decision to libvirt's answer: refused while the VM's
 * lock is held (naming the job), decided by the power planner, submitted, and waited for a
 * little (so that the caller hears libvirt's answer). Shared by the API and the schedules.
 */

export interface PowerSubmitDeps {
  jobs: JobSystem;
  snapshot(): ClusterSnapshot;
  /** Where the VM was last recorded running (store.getPlacement). */
  lastPlacement(vm: string): Promise<string | null>;
  /**
   * Admission control of a start on the snapshot it was planned on (core/ha/admission.ts):
   * the reason it is refused, or null.
   */
  admitStart?(snap: ClusterSnapshot, vm: string, host: string): string | null;
}

export type PowerOutcome =
  | { ok: true; vm: string; host: string; action: PowerKind; job: JobView; decision: string }
  | {
      ok: false;
      /**
       * busy: the VM has a job; refused: the planner or the executor said no; admission: the
       * start would break the host failures HA tolerates; failed: libvirt failed.
       */
      why: 'busy' | 'refused' | 'admission' | 'failed';
      reason: string;
      job: string | null;
    };

export async function submitPower(
  d: PowerSubmitDeps,
  kind: PowerKind,
  vm: string,
  who: { planner: PlannerName; ref: string; requestedBy: { id: string; name: string } },
  waitMs: number,
  /** A leader-only caller's fencing check, right before the job is submitted (SubmitOptions.fence). */
  fence?: () => Promise<void>,
): Promise<PowerOutcome> {
  const holder = await d.jobs.holderOf(vm);
  if (holder)
    return {
      ok: false,
      why: 'busy',
      reason: `VM "${vm}" has job ${holder.id} (${holder.kind}, ${holder.state}); ${kind} it when that job has finished`,
      job: holder.id,
    };
  const snap = d.snapshot();
  const decision = planPower(snap, kind, vm, {
    id: `dec-${randomUUID()}`,
    at: Date.now(),
    ...who,
    lastPlacement: kind === 'start' ? await d.lastPlacement(vm).catch(() => null) : null,
  });
  if (!decision.ok)
    return {
      ok: false,
      why: 'refused',
      reason: decision.refused.flatMap((r) => r.reasons).join('; '),
      job: null,
    };
  if (kind === 'start' && d.admitStart) {
    const refusal = d.admitStart(snap, vm, (decision.actions[0] as { host: string }).host);
    if (refusal) return { ok: false, why: 'admission', reason: refusal, job: null };
  }
  let id: string;
  try {
    id = (await d.jobs.submit(decision, fence ? { fence } : {})).jobs[0]!.id;
  } catch (e) {
    if (e instanceof JobConflict)
      return { ok: false, why: 'busy', reason: e.message, job: e.conflicts[0]?.job ?? null };
    if (e instanceof SubmitRefused) return { ok: false, why: 'refused', reason: e.message, job: null };
    throw e;
  }
  const job = await d.jobs.wait(id, waitMs);
  const result = job?.result as { outcome?: string; reason?: string | null } | null | undefined;
  if (result?.outcome === 'refused' || result?.outcome === 'cancelled')
    return { ok: false, why: 'refused', reason: result.reason ?? `${kind} was refused`, job: id };
  if (result?.outcome === 'failed' || job?.state === 'failed')
    return { ok: false, why: 'failed', reason: result?.reason ?? `${kind} failed`, job: id };
  const { host } = decision.actions[0] as { host: string };
  return { ok: true, vm, host, action: kind, job: job!, decision: decision.id };
}
