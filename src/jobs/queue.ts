import { randomUUID } from 'node:crypto';
import { type Job, Queue, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Metrics } from '../metrics/registry.ts';
import type { AuditLog } from '../store/audit.ts';
import { bullConnection } from './connection.ts';
import {
  baseResult,
  type MigrationPorts,
  type MigrationProgress,
  type MigrationRequest,
  type MigrationResult,
  runMigration,
  whereRunning,
} from './migrate.ts';
import { Slots } from './slots.ts';

/**
 * Migration jobs on BullMQ. Any replica may enqueue and run them; Redis holds:
 *   {prefix}bull:migrate:*          BullMQ's own keys (job data, progress, result)
 *   {prefix}vm:{vm}:job             the one job a VM may have at a time (its id)
 *   {prefix}job:{id}:cancel         set to cancel
 *   {prefix}job:{id}:attempt        written when libvirt was asked to move the VM: a re-run
 *                                   after a crash reconciles from libvirt instead of moving again
 *   {prefix}slots:host:{h}, slots:cluster   concurrency (slots.ts)
 */

export interface JobView {
  id: string;
  kind: 'migrate';
  vm: string;
  from: string;
  to: string;
  reason: string;
  requestedBy: { id: string; name: string };
  state: 'waiting' | 'active' | 'succeeded' | 'failed' | 'aborted' | 'cancelled' | 'refused' | 'unknown';
  createdAt: number;
  progress: MigrationProgress | null;
  result: MigrationResult | null;
}

export class JobConflict extends Error {
  override name = 'JobConflict';
}

const QUEUE = 'migrate';

export class JobSystem {
  private readonly queue: Queue;
  private worker: Worker | null = null;
  private readonly slots: Slots;

  constructor(
    private readonly redisUrl: string,
    private readonly prefix: string,
    private readonly ports: MigrationPorts,
    private readonly audit: AuditLog,
    private readonly redis: Redis,
    private readonly metrics?: Metrics,
  ) {
    this.queue = new Queue(QUEUE, { connection: this.connection(), prefix: `${prefix}bull` });
    this.slots = new Slots(redis, prefix);
  }

  private connection() {
    return bullConnection(this.redisUrl);
  }

  /** Runs jobs in this process. */
  startWorker(): void {
    this.worker = new Worker(QUEUE, (job, token) => this.process(job, token), {
      connection: this.connection(),
      prefix: `${this.prefix}bull`,
      concurrency: this.ports.policy.clusterConcurrency,
      // A crashed worker's job is picked up again within ~15 s and reconciled.
      lockDuration: 10_000,
      stalledInterval: 5_000,
      maxStalledCount: 1,
    });
    this.worker.on('error', (e) => this.ports.log.warn({ err: e.message }, 'job worker'));
  }

  async close(): Promise<void> {
    await this.worker?.close();
    await this.queue.close();
  }

  /** Queues a migration; a VM with an unfinished job gets JobConflict. */
  async enqueueMigration(req: MigrationRequest): Promise<JobView> {
    const id = `mig-${randomUUID()}`;
    const lockKey = `${this.prefix}vm:${req.vm}:job`;
    if ((await this.redis.set(lockKey, id, 'NX')) !== 'OK') {
      const holder = await this.redis.get(lockKey);
      const state = holder ? await this.queue.getJobState(holder) : 'unknown';
      if (
        holder &&
        (state === 'active' || state === 'waiting' || state === 'delayed' || state === 'prioritized')
      )
        throw new JobConflict(`${req.vm} already has job ${holder} (${state})`);
      await this.redis.set(lockKey, id); // the holder is finished or gone
    }
    const job = await this.queue.add('migrate', req, {
      jobId: id,
      attempts: 1,
      removeOnComplete: { count: 5_000 },
      removeOnFail: { count: 5_000 },
    });
    return this.view(job);
  }

  async get(id: string): Promise<JobView | null> {
    const job = await this.queue.getJob(id);
    return job ? this.view(job) : null;
  }

  async list(limit = 200): Promise<JobView[]> {
    // Asked per state, so that no job needs a state lookup of its own.
    const states = ['active', 'waiting', 'delayed', 'completed', 'failed'] as const;
    const perState = await Promise.all(states.map((t) => this.queue.getJobs([t], 0, limit - 1)));
    const views = await Promise.all(
      perState.flatMap((jobs, i) => jobs.filter(Boolean).map((j) => this.view(j as Job, states[i]))),
    );
    return views.sort((a, b) => b.createdAt - a.createdAt).slice(0, limit);
  }

  /** Asks a job to stop: before it starts it ends as cancelled; while migrating, libvirt's job is aborted. */
  async cancel(id: string): Promise<JobView | null> {
    const job = await this.queue.getJob(id);
    if (!job) return null;
    await this.redis.set(`${this.prefix}job:${id}:cancel`, '1', 'EX', 86_400);
    return this.view(job);
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

  private async view(job: Job, known?: string): Promise<JobView> {
    const req = job.data as MigrationRequest;
    const result = (job.returnvalue as MigrationResult | null) ?? null;
    const st = known ?? (await job.getState());
    const state: JobView['state'] =
      st === 'completed'
        ? (result?.outcome ?? 'unknown')
        : st === 'failed'
          ? 'failed'
          : st === 'active'
            ? 'active'
            : st === 'waiting' || st === 'delayed' || st === 'prioritized'
              ? 'waiting'
              : 'unknown';
    return {
      id: job.id!,
      kind: 'migrate',
      vm: req.vm,
      from: req.from,
      to: req.to,
      reason: req.reason,
      requestedBy: req.requestedBy,
      state,
      createdAt: job.timestamp,
      progress: typeof job.progress === 'object' ? (job.progress as unknown as MigrationProgress) : null,
      result:
        result ??
        (st === 'failed'
          ? { ...baseResult(req), reason: job.failedReason ?? 'failed', finishedAt: job.finishedOn ?? 0 }
          : null),
    };
  }

  private async process(job: Job, _token?: string): Promise<MigrationResult> {
    const req = job.data as MigrationRequest;
    const id = job.id!;
    const cancelKey = `${this.prefix}job:${id}:cancel`;
    const attemptKey = `${this.prefix}job:${id}:attempt`;
    const slotNames = [`host:${req.from}`, `host:${req.to}`, 'cluster'];
    const handle = {
      id,
      progress: (p: MigrationProgress) => job.updateProgress(p as unknown as object),
      cancelled: async () => (await this.redis.exists(cancelKey)) === 1,
      heartbeat: () => this.slots.refresh(id, slotNames),
    };
    const actor = { actor: 'controller', actorName: 'controller', role: null };
    let result: MigrationResult;
    this.metrics?.migrationsActive.inc();
    try {
      if (await this.redis.exists(attemptKey)) {
        result = await this.reconcile(req, attemptKey);
      } else {
        result = await this.withSlots(req, id, slotNames, handle, () =>
          runMigration(req, handle, this.ports, async (startedAt) => {
            await this.redis.set(attemptKey, JSON.stringify({ startedAt }), 'EX', 7 * 86_400);
            await this.audit.record({
              ...actor,
              action: 'migration.start',
              target: req.vm,
              params: {
                job: id,
                from: req.from,
                to: req.to,
                reason: req.reason,
                requestedBy: req.requestedBy.name,
              },
              outcome: 'succeeded',
            });
          }),
        );
      }
    } finally {
      this.metrics?.migrationsActive.dec();
      await this.slots.release(id, slotNames).catch(() => undefined);
      // The VM's lock is released only by its own job.
      await this.redis
        .eval(
          "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0",
          1,
          `${this.prefix}vm:${req.vm}:job`,
          id,
        )
        .catch(() => undefined);
    }
    await this.redis.del(attemptKey, cancelKey);
    const m = this.metrics;
    if (m) {
      m.migrations.inc({ outcome: result.outcome, reason: req.reason.split(':')[0]! });
      if (result.outcome === 'succeeded' && result.totalMs !== null)
        m.migrationDuration.observe(result.totalMs / 1000);
      if (result.libvirtDowntimeMs !== null) m.migrationDowntime.observe(result.libvirtDowntimeMs / 1000);
      for (const w of result.probe) m.migrationOutage.observe(w.outageMs / 1000);
    }
    await this.audit.record({
      ...actor,
      action: 'migration.finish',
      target: req.vm,
      params: {
        job: id,
        from: req.from,
        to: req.to,
        host: result.host,
        totalMs: result.totalMs,
        libvirtDowntimeMs: result.libvirtDowntimeMs,
        outageMs: result.probe[0]?.outageMs ?? null,
      },
      outcome:
        result.outcome === 'succeeded' ? 'succeeded' : result.outcome === 'refused' ? 'rejected' : 'failed',
      message: result.reason,
    });
    this.ports.log.info(
      {
        job: id,
        vm: req.vm,
        from: req.from,
        to: req.to,
        outcome: result.outcome,
        reason: result.reason,
        totalMs: result.totalMs,
      },
      'migration finished',
    );
    return result;
  }

  private async withSlots(
    req: MigrationRequest,
    id: string,
    names: string[],
    handle: { progress(p: MigrationProgress): Promise<void>; cancelled(): Promise<boolean> },
    run: () => Promise<MigrationResult>,
  ): Promise<MigrationResult> {
    const p = this.ports.policy;
    const wanted = names.map((name) => ({
      name,
      limit: name === 'cluster' ? p.clusterConcurrency : p.perHostConcurrency,
    }));
    let announced = false;
    while (!(await this.slots.acquire(id, wanted))) {
      if (await handle.cancelled())
        return {
          ...baseResult(req),
          outcome: 'cancelled',
          reason: 'cancelled while waiting for a slot',
          host: req.from,
          finishedAt: Date.now(),
        };
      if (!announced) {
        announced = true;
        await handle.progress({
          phase: 'waiting-for-slot',
          percent: 0,
          dataTotalBytes: 0,
          dataProcessedBytes: 0,
          dataRemainingBytes: 0,
          iteration: 0,
          dirtyRateBytesPerSec: 0,
          elapsedMs: 0,
        });
      }
      await new Promise((r) => setTimeout(r, 250 + Math.random() * 250));
    }
    return run();
  }

  /**
   * A job that was moving its VM when its worker died: wait until libvirt has no migration of
   * the VM running, then report where it is and clean up a definition left behind.
   */
  private async reconcile(req: MigrationRequest, attemptKey: string): Promise<MigrationResult> {
    const attempt = JSON.parse((await this.redis.get(attemptKey)) ?? '{}') as { startedAt?: number };
    const src = this.ports.clientFor(req.from);
    const deadline = Date.now() + this.ports.policy.timeoutMs + 60_000;
    while (src && Date.now() < deadline) {
      const dom = await src.lookupByName(req.vm).catch(() => null);
      const js = dom ? await src.jobStats(dom).catch(() => null) : null;
      if (
        !js ||
        js.type === 'none' ||
        js.type === 'completed' ||
        js.type === 'failed' ||
        js.type === 'cancelled'
      )
        break;
      await new Promise((r) => setTimeout(r, 500));
    }
    const running = await whereRunning(this.ports, req.vm, [req.from, req.to]);
    const base = {
      ...baseResult(req),
      reconciled: true,
      startedAt: attempt.startedAt ?? null,
      finishedAt: Date.now(),
      host: running.length === 1 ? running[0]! : running.join(',') || null,
    };
    if (running.length === 1 && running[0] === req.to) {
      await this.undefineInactive(req.from, req.vm);
      return {
        ...base,
        outcome: 'succeeded',
        reason: 'keizokud restarted during the move; libvirt completed it',
      };
    }
    if (running.length === 1 && running[0] === req.from) {
      await this.undefineInactive(req.to, req.vm);
      return {
        ...base,
        outcome: 'failed',
        reason: `keizokud restarted during the move; the migration did not complete and ${req.vm} runs on ${req.from}`,
      };
    }
    return {
      ...base,
      outcome: 'failed',
      reason: `keizokud restarted during the move; ${req.vm} runs on ${running.length === 0 ? 'no host' : running.join(' and ')}`,
    };
  }

  /** Removes a shut-off copy of the definition a move left on `host` (the VM runs elsewhere). */
  private async undefineInactive(host: string, vm: string): Promise<void> {
    const c = this.ports.clientFor(host);
    if (!c) return;
    const dom = await c.lookupByName(vm).catch(() => null);
    if (!dom) return;
    const st = await c.getState(dom).catch(() => null);
    if (st?.state === 'shutoff') await c.undefine(dom).catch(() => undefined);
  }
}
