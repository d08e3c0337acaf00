import type { Job } from 'bullmq';
import {
  baseResult,
  type MigrationProgress,
  type MigrationRequest,
  type MigrationResult,
} from './migrate.ts';
import { MIGRATE_QUEUE } from './migration-job.ts';
import { type ActionResult, type PowerAction, type PowerRequest, powerHost } from './power.ts';

/** Jobs as the API shows them: one shape per kind, with the fields every kind shares. */

export const EVACUATE_QUEUE = 'evacuate';

export type JobState =
  | 'waiting'
  | 'active'
  | 'succeeded'
  | 'failed'
  | 'aborted'
  | 'cancelled'
  | 'refused'
  | 'unknown';

interface JobViewBase {
  id: string;
  reason: string;
  requestedBy: { id: string; name: string };
  state: JobState;
  createdAt: number;
  /** The decision the job carries out (GET /v1/decisions/{id}). */
  decisionId: string | null;
}

export interface MigrationJobView extends JobViewBase {
  kind: 'migrate';
  vm: string;
  from: string;
  to: string;
  progress: MigrationProgress | null;
  result: MigrationResult | null;
}

export interface PowerJobView extends JobViewBase {
  kind: PowerAction['kind'];
  vm: string;
  host: string;
  /** Both the VM's host, so that lists read alike for every kind. */
  from: string;
  to: string;
  progress: null;
  result: ActionResult | null;
}

export interface EvacuationData {
  host: string;
  action: 'enter' | 'exit';
  /** The moves it owns: job ids. */
  jobs: string[];
  reason: string;
  requestedBy: { id: string; name: string };
  decisionId: string;
}

export interface EvacuationResult {
  outcome: 'succeeded' | 'failed';
  reason: string | null;
  moved: string[];
  notMoved: { vm: string; reason: string }[];
  finishedAt: number;
}

/** The parent job of a maintenance enter or exit: its moves are children. */
export interface EvacuationJobView extends JobViewBase {
  kind: 'evacuate';
  vm: null;
  host: string;
  action: 'enter' | 'exit';
  jobs: string[];
  progress: null;
  result: EvacuationResult | null;
}

export type JobView = MigrationJobView | PowerJobView | EvacuationJobView;

function stateOf(st: string, outcome: string | undefined): JobState {
  if (st === 'completed') return (outcome as JobState | undefined) ?? 'unknown';
  if (st === 'failed') return 'failed';
  if (st === 'active') return 'active';
  if (st === 'waiting' || st === 'delayed' || st === 'prioritized' || st === 'waiting-children')
    return 'waiting';
  return 'unknown';
}

export function toView(job: Job, st: string): JobView {
  const common = { id: job.id!, createdAt: job.timestamp };
  if (job.queueName === MIGRATE_QUEUE) {
    const req = job.data as MigrationRequest;
    const result = (job.returnvalue as MigrationResult | null) ?? null;
    return {
      ...common,
      kind: 'migrate',
      vm: req.vm,
      from: req.from,
      to: req.to,
      reason: req.reason,
      requestedBy: req.requestedBy,
      decisionId: req.decisionId ?? null,
      state: stateOf(st, result?.outcome),
      progress: typeof job.progress === 'object' ? (job.progress as unknown as MigrationProgress) : null,
      result:
        result ??
        (st === 'failed'
          ? { ...baseResult(req), reason: job.failedReason ?? 'failed', finishedAt: job.finishedOn ?? 0 }
          : null),
    };
  }
  if (job.queueName === EVACUATE_QUEUE) {
    const d = job.data as EvacuationData;
    const result = (job.returnvalue as EvacuationResult | null) ?? null;
    return {
      ...common,
      kind: 'evacuate',
      vm: null,
      host: d.host,
      action: d.action,
      jobs: d.jobs,
      reason: d.reason,
      requestedBy: d.requestedBy,
      decisionId: d.decisionId,
      state: stateOf(st, result?.outcome),
      progress: null,
      result,
    };
  }
  const req = job.data as PowerRequest;
  const result = (job.returnvalue as ActionResult | null) ?? null;
  const a = req.action;
  return {
    ...common,
    kind: a.kind,
    vm: a.vm,
    host: powerHost(a),
    from: a.kind === 'restart-elsewhere' || a.kind === 'restart-from-replica' ? a.from : a.host,
    to: powerHost(a),
    reason: req.reason,
    requestedBy: req.requestedBy,
    decisionId: req.decisionId,
    state: stateOf(st, result?.outcome),
    progress: null,
    result:
      result ??
      (st === 'failed'
        ? {
            outcome: 'failed',
            reason: job.failedReason ?? 'failed',
            vm: a.vm,
            host: powerHost(a),
            finishedAt: job.finishedOn ?? 0,
          }
        : null),
  };
}
