import { randomUUID } from 'node:crypto';
import { FlowProducer, type Job, Queue, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { type Action, actionVm, type Decision, type DecisionRecord } from '../core/plan.ts';
import { actionRefusals } from '../core/planners/validate.ts';
import type { Metrics } from '../metrics/registry.ts';
import type { AuditLog } from '../store/audit.ts';
import type { DecisionStore } from '../store/decisions.ts';
import { type RedisKeys, redisKeys } from '../store/keys.ts';
import { bullConnection, type RedisTarget } from './connection.ts';
import type { MigrationPorts, MigrationRequest } from './migrate.ts';
import { MIGRATE_QUEUE, runMigrationJob } from './migration-job.ts';
import { POWER_QUEUE, type PowerAction, type PowerPorts, type PowerRequest, runPowerJob } from './power.ts';
import { Slots } from './slots.ts';
import { EVACUATE_QUEUE, type JobView, type MigrationJobView, toView } from './views.ts';
import { type LockEffect, type LockRequest, VmLocks } from './vm-lock.ts';

export type { JobView, MigrationJobView } from './views.ts';

/**
 * The executor: every effect on a VM is a job, run by a worker under the VM's lock
 * (vm-lock.ts), and `submit(decision)` is the only way to create jobs. Any replica may submit
 * and run them. Redis holds the queues (migrate, power, evacuate), the VMs' locks, the
 * migration slots and the jobs' cancel and attempt keys (store/keys.ts).
 */

/** A VM of the plan already has an unfinished job: nothing was submitted. */
export class JobConflict extends Error {
  override name = 'JobConflict';
  constructor(
    message: string,
    readonly conflicts: { vm: string; job: string; state: string }[],
  ) {
    super(message);
  }
}

/** The decision cannot be carried out now (its own refusals, or a fresh check's): nothing was submitted. */
export class SubmitRefused extends Error {
  override name = 'SubmitRefused';
  constructor(
    message: string,
    readonly refused: { vm: string; reasons: string[] }[],
  ) {
    super(message);
  }
}

export interface SubmitOptions {
  /** The jobs' reason (default: the decision's ref), e.g. `maintenance:h1`, `return:h1`. */
  reason?: string;
  /** Changes made in the same step as the locks (e.g. marking a host in maintenance). */
  effects?: readonly LockEffect[];
  /** Awaited right before the locks are taken: a leader-only caller's fencing check (LeaderLease.fence). */
  fence?: () => Promise<void>;
  /** A parent job that owns the jobs (BullMQ flow): created with them, run when they are done; its data gets `jobs` (their ids). */
  parent?: { queue: string; id: string; data: object };
}

export interface Submitted {
  decision: DecisionRecord;
  jobs: JobView[];
}

const KEEP = { removeOnComplete: { count: 5_000 }, removeOnFail: { count: 5_000 } };

export class JobSystem {
  private readonly queues: Map<string, Queue>;
  private readonly flows: FlowProducer;
  private readonly workers: Worker[] = [];
  private readonly slots: Slots;
  readonly locks: VmLocks;
  private readonly bullPrefix: string;
  private readonly keys: RedisKeys;

  constructor(
    private readonly redisAt: RedisTarget,
    private readonly prefix: string,
    private readonly ports: MigrationPorts,
    private readonly power: PowerPorts,
    private readonly audit: AuditLog,
    private readonly redis: Redis,
    private readonly decisions: DecisionStore,
    private readonly metrics?: Metrics,
  ) {
    this.keys = redisKeys(prefix);
    this.bullPrefix = this.keys.bullPrefix;
    const opts = { connection: bullConnection(redisAt), prefix: this.bullPrefix };
    this.queues = new Map([MIGRATE_QUEUE, POWER_QUEUE, EVACUATE_QUEUE].map((q) => [q, new Queue(q, opts)]));
    this.flows = new FlowProducer(opts);
    this.slots = new Slots(redis, prefix);
    this.locks = new VmLocks(redis, prefix, this.bullPrefix);
  }

  /** Runs jobs in this process; `parents` runs the parent jobs of flows (evacuate.ts). */
  startWorker(parents?: (job: Job) => Promise<unknown>): void {
    const opts = {
      connection: bullConnection(this.redisAt),
      prefix: this.bullPrefix,
      // A crashed worker's job is picked up again within ~15 s (a migration reconciles).
      lockDuration: 10_000,
      stalledInterval: 5_000,
      maxStalledCount: 1,
    };
    const migrate = { redis: this.redis, prefix: this.prefix, audit: this.audit, locks: this.locks };
    this.workers.push(
      new Worker(
        MIGRATE_QUEUE,
        (job) =>
          runMigrationJob(
            {
              ...migrate,
              ports: this.ports,
              slots: this.slots,
              ...(this.metrics ? { metrics: this.metrics } : {}),
            },
            job,
          ),
        { ...opts, concurrency: this.ports.policy.clusterConcurrency },
      ),
      new Worker(
        POWER_QUEUE,
        (job) => runPowerJob({ ...migrate, ports: this.power, log: this.ports.log }, job),
        { ...opts, concurrency: 8 },
      ),
    );
    if (parents) this.workers.push(new Worker(EVACUATE_QUEUE, parents, { ...opts, concurrency: 4 }));
    for (const w of this.workers) w.on('error', (e) => this.ports.log.warn({ err: e.message }, 'job worker'));
  }

  async close(): Promise<void> {
    for (const w of this.workers) await w.close();
    for (const q of this.queues.values()) await q.close();
    await this.flows.close();
  }

  /**
   * Carries out a decision, all or nothing: checks every action against a fresh snapshot,
   * takes every VM lock of the plan (and applies `effects`) in one Redis step, stores the
   * decision with its job ids, and queues the jobs. Refused or in conflict: nothing changed.
   */
  async submit(decision: Decision, o: SubmitOptions = {}): Promise<Submitted> {
    const refused = decision.ok ? this.recheck(decision.actions) : decision.refused;
    if (refused.length > 0)
      throw new SubmitRefused(refused.map((r) => `${r.vm}: ${r.reasons.join('; ')}`).join(' | '), refused);
    const planned = decision.actions.map((action) => ({
      action,
      id: `${action.kind === 'migrate' ? 'mig' : action.kind}-${randomUUID()}`,
      queue: action.kind === 'migrate' ? MIGRATE_QUEUE : POWER_QUEUE,
    }));
    const locks: LockRequest[] = planned.map((p) => ({ vm: actionVm(p.action)!, job: p.id, queue: p.queue }));
    await o.fence?.();
    const taken = await this.locks.take(locks, o.effects);
    if (!taken.ok) {
      const conflicts = await Promise.all(
        taken.conflicts.map(async (c) => ({
          ...c,
          state:
            (await this.queues
              .get(c.queue)
              ?.getJobState(c.job)
              .catch(() => 'unknown')) ?? 'unknown',
        })),
      );
      throw new JobConflict(
        conflicts.map((c) => `${c.vm} already has job ${c.job} (${c.state})`).join('; '),
        conflicts,
      );
    }
    const record: DecisionRecord = {
      ...decision,
      jobs: planned.map((p) => ({ id: p.id, vm: actionVm(p.action), kind: p.action.kind })),
    };
    const reason = o.reason ?? decision.ref;
    const jobs = planned.map((p) => ({
      name: p.action.kind,
      queueName: p.queue,
      data: this.jobData(p.action, decision, reason),
      opts: { jobId: p.id, attempts: 1, ...KEEP, ...(o.parent ? { ignoreDependencyOnFailure: true } : {}) },
    }));
    try {
      await this.decisions.put(record);
      if (o.parent)
        await this.flows.add({
          name: o.parent.queue,
          queueName: o.parent.queue,
          data: { ...o.parent.data, jobs: planned.map((p) => p.id) },
          opts: { jobId: o.parent.id, attempts: 1, ...KEEP },
          children: jobs,
        });
      else
        for (const q of new Set(jobs.map((j) => j.queueName)))
          await this.queues.get(q)!.addBulk(jobs.filter((j) => j.queueName === q));
    } catch (e) {
      // Queueing failed: give back the locks nobody will run under (generation 0: not started).
      for (const l of locks) await this.locks.release(l.vm, l.job, 0).catch(() => undefined);
      throw e;
    }
    const views = await Promise.all(planned.map((p) => this.get(p.id)));
    return { decision: record, jobs: views.filter((v): v is JobView => v !== null) };
  }

  private recheck(actions: readonly Action[]): { vm: string; reasons: string[] }[] {
    const snap = this.ports.snapshot();
    return actions
      .map((a) => ({
        vm: actionVm(a) ?? (a.kind === 'fence' ? a.host : '-'),
        reasons: actionRefusals(snap, a),
      }))
      .filter((r) => r.reasons.length > 0);
  }

  private jobData(a: Action, d: Decision, reason: string): MigrationRequest | PowerRequest {
    if (a.kind === 'migrate')
      return {
        vm: a.vm,
        from: a.from,
        to: a.to,
        copyStorage: a.copyStorage,
        requestedBy: d.requestedBy,
        reason,
        decisionId: d.id,
        ...(a.policy ? { policy: a.policy as MigrationRequest['policy'] } : {}),
      };
    return { action: a as PowerAction, requestedBy: d.requestedBy, reason, decisionId: d.id };
  }

  /** Queues one migration as its own decision (drills); a VM with an unfinished job gets JobConflict. */
  async enqueueMigration(req: MigrationRequest): Promise<MigrationJobView> {
    const decision: Decision = {
      id: `dec-${randomUUID()}`,
      planner: req.reason.startsWith('drill:') ? 'drill' : 'operator',
      at: Date.now(),
      reason: `move ${req.vm} from ${req.from} to ${req.to}`,
      ref: req.reason,
      requestedBy: req.requestedBy,
      vms: [req.vm],
      candidates: {},
      actions: [
        {
          kind: 'migrate',
          vm: req.vm,
          from: req.from,
          to: req.to,
          copyStorage: req.copyStorage,
          ...(req.policy ? { policy: req.policy } : {}),
        },
      ],
      ok: true,
      refused: [],
    };
    const { jobs } = await this.submit(decision);
    return jobs[0] as MigrationJobView;
  }

  /** The unfinished job that holds the VM's lock, if any. */
  async holderOf(vm: string): Promise<JobView | null> {
    const h = await this.locks.holder(vm);
    return h ? this.get(h.job) : null;
  }

  async get(id: string): Promise<JobView | null> {
    for (const q of this.queues.values()) {
      // The state before the job: a job read while active whose state is read after it
      // completed would look finished without its result (a waiter would take it as done).
      const st = await q.getJobState(id);
      if (st === 'unknown') continue;
      const job = await q.getJob(id);
      if (job) return toView(job, st);
    }
    return null;
  }

  /**
   * The newest `limit` jobs that `keep` accepts (a caller's scope and filters), newest first.
   * Each queue's state lists are read page by page only until `limit` kept jobs are found
   * (at most `scanCap` jobs each), so a narrow view does not load every job kept in Redis.
   */
  async list(limit = 200, keep: (j: JobView) => boolean = () => true, scanCap = 5_000): Promise<JobView[]> {
    // Asked per state, so that no job needs a state lookup of its own.
    const states = ['active', 'waiting', 'delayed', 'completed', 'failed'] as const;
    const page = Math.min(Math.max(limit, 50), 1_000);
    const sources = [...this.queues.values()].flatMap((q) => states.map((t) => ({ q, t })));
    const found = await Promise.all(
      sources.map(async ({ q, t }) => {
        const out: JobView[] = [];
        for (let start = 0; start < scanCap && out.length < limit; start += page) {
          const jobs = (await q.getJobs([t], start, start + page - 1)).filter(Boolean) as Job[];
          for (const j of jobs) {
            const v = toView(j, t);
            if (keep(v) && out.length < limit) out.push(v);
          }
          if (jobs.length < page) break;
        }
        return out;
      }),
    );
    return found
      .flat()
      .sort((a, b) => b.createdAt - a.createdAt)
      .slice(0, limit);
  }

  /** Asks a job to stop: before it starts it ends as cancelled; while migrating, libvirt's job is aborted. */
  async cancel(id: string): Promise<JobView | null> {
    const job = await this.get(id);
    if (!job) return null;
    // An evacuation's cancel is its moves' cancel (a move that has finished is not undone).
    for (const j of [id, ...(job.kind === 'evacuate' ? job.jobs : [])])
      await this.redis.set(this.keys.jobCancel(j), '1', 'EX', 86_400);
    return job;
  }

  /** Resolves when the job has finished (or after timeoutMs). */
  async wait(id: string, timeoutMs: number): Promise<JobView | null> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = await this.get(id);
      if (!v || (v.state !== 'waiting' && v.state !== 'active') || Date.now() > deadline) return v;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}
