import type { Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Metrics } from '../metrics/registry.ts';
import type { AuditLog } from '../store/audit.ts';
import { redisKeys } from '../store/keys.ts';
import {
  baseResult,
  effectivePolicy,
  type MigrationPorts,
  type MigrationProgress,
  type MigrationRequest,
  type MigrationResult,
  runMigration,
  whereRunning,
} from './migrate.ts';
import type { Slots, SlotWanted } from './slots.ts';
import type { VmLocks } from './vm-lock.ts';

/**
 * A migration job's run: claims the VM's lock with a new generation, waits for its slots,
 * moves the VM (or, when a previous run had already asked libvirt to move it, reconciles from
 * libvirt), and releases only what this run owns. Its `jobCancel` key (store/keys.ts) asks it to
 * stop; its `jobAttempt` key is written, while this run owns the lock, just before libvirt is
 * asked to move the VM: a re-run after a crash reconciles instead.
 */

export const MIGRATE_QUEUE = 'migrate';

export interface MigrationJobDeps {
  redis: Redis;
  prefix: string;
  ports: MigrationPorts;
  audit: AuditLog;
  locks: VmLocks;
  slots: Slots;
  metrics?: Metrics;
}

const actor = { actor: 'controller', actorName: 'controller', role: null };

export async function runMigrationJob(d: MigrationJobDeps, job: Job): Promise<MigrationResult> {
  const req = job.data as MigrationRequest;
  const id = job.id!;
  const keys = redisKeys(d.prefix);
  const cancelKey = keys.jobCancel(id);
  const attemptKey = keys.jobAttempt(id);
  const gen = await d.locks.claim(req.vm, id, MIGRATE_QUEUE);
  if (gen === null) {
    const holder = await d.locks.holder(req.vm);
    return {
      ...baseResult(req),
      outcome: 'refused',
      reason: `${req.vm} is held by job ${holder?.job ?? 'another job'}`,
      host: req.from,
      finishedAt: Date.now(),
    };
  }
  // Slots are held per run, so a stalled re-run's release cannot free the winner's.
  const holderId = `${id}:${gen}`;
  const slotNames = [`host:${req.from}`, `host:${req.to}`, 'cluster'];
  const p = d.ports.policy;
  const wanted = slotNames.map((name) => ({
    name,
    limit: name === 'cluster' ? p.clusterConcurrency : p.perHostConcurrency,
  }));
  // Once taken, the claims are refreshed on a timer of their own (pre-checks, the session
  // connect and the move itself may each outlast a claim); a lapsed claim is taken again, or
  // the run does not start the move.
  let slotLost = false;
  const refreshSlots = async () => {
    if (!(await d.slots.refresh(holderId, wanted))) slotLost = true;
  };
  let refresher: NodeJS.Timeout | null = null;
  const handle = {
    id,
    progress: (p: MigrationProgress) => job.updateProgress(p as unknown as object),
    cancelled: async () => (await d.redis.exists(cancelKey)) === 1,
    heartbeat: refreshSlots,
  };
  let result: MigrationResult;
  let owner = false;
  d.metrics?.migrationsActive.inc();
  try {
    if (await d.redis.exists(attemptKey)) {
      result = await reconcile(d, req, attemptKey);
    } else {
      result = await withSlots(d, req, holderId, wanted, handle, () => {
        refresher = setInterval(() => void refreshSlots().catch(() => undefined), d.slots.refreshMs);
        return runMigration(req, handle, d.ports, async (startedAt) => {
          await refreshSlots();
          if (slotLost)
            return 'its migration slot lapsed and was taken by another move; this run did not move it';
          const attempt = JSON.stringify({ startedAt });
          if (!(await d.locks.setIfOwner(req.vm, id, gen, attemptKey, attempt, 7 * 86_400)))
            return 'a re-run of this job has taken over the VM; this run did not move it';
          await d.audit.record({
            ...actor,
            action: 'migration.start',
            target: req.vm,
            params: {
              job: id,
              from: req.from,
              to: req.to,
              reason: req.reason,
              requestedBy: req.requestedBy.name,
              decision: req.decisionId ?? null,
            },
            outcome: 'succeeded',
          });
          return true;
        });
      });
    }
  } finally {
    if (refresher) clearInterval(refresher);
    d.metrics?.migrationsActive.dec();
    // Redis may be away right after a move it did not see: wait for it rather than leave the
    // lock, or report nothing (the outcome was taken from libvirt, it is not lost).
    const log = (err: Error) =>
      d.ports.log.warn({ job: id, vm: req.vm, err: err.message }, 'job state not reachable; retrying');
    await untilAnswered(() => d.slots.release(holderId, slotNames), log).catch(() => undefined);
    owner = await untilAnswered(() => d.locks.release(req.vm, id, gen, [attemptKey, cancelKey]), log).catch(
      () => false,
    );
  }
  // A run that no longer owns the lock was superseded: the owner reports the outcome.
  if (owner) await report(d, req, id, result);
  return result;
}

/** Retries a Redis step every second until it answers, for up to `forMs` (then its error). */
export async function untilAnswered<T>(
  step: () => Promise<T>,
  onError: (e: Error) => void = () => undefined,
  forMs = 120_000,
): Promise<T> {
  const until = Date.now() + forMs;
  for (let first = true; ; first = false) {
    try {
      return await step();
    } catch (e) {
      if (first) onError(e as Error);
      if (Date.now() > until) throw e;
      await new Promise((r) => setTimeout(r, 1_000));
    }
  }
}

async function report(d: MigrationJobDeps, req: MigrationRequest, id: string, result: MigrationResult) {
  const m = d.metrics;
  if (m) {
    m.migrations.inc({ outcome: result.outcome, reason: req.reason.split(':')[0]! });
    if (result.outcome === 'succeeded' && result.totalMs !== null)
      m.migrationDuration.observe(result.totalMs / 1000);
    if (result.libvirtDowntimeMs !== null) m.migrationDowntime.observe(result.libvirtDowntimeMs / 1000);
    for (const w of result.probe) m.migrationOutage.observe(w.outageMs / 1000);
  }
  const entry = {
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
      settings: result.settings,
      decision: req.decisionId ?? null,
    },
    outcome:
      result.outcome === 'succeeded' ? 'succeeded' : result.outcome === 'refused' ? 'rejected' : 'failed',
    message: result.reason,
  } as const;
  await untilAnswered(() => d.audit.record(entry));
  d.ports.log.info(
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
}

async function withSlots(
  d: MigrationJobDeps,
  req: MigrationRequest,
  holder: string,
  wanted: SlotWanted[],
  handle: { progress(p: MigrationProgress): Promise<void>; cancelled(): Promise<boolean> },
  run: () => Promise<MigrationResult>,
): Promise<MigrationResult> {
  let announced = false;
  while (!(await d.slots.acquire(holder, wanted))) {
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
 * the VM running (aborting it once past the move's own timeout, as the dead run would have),
 * then report where it is and clean up a definition left behind. A domain paused on the
 * destination is an incoming move not yet finished, not a moved VM.
 */
async function reconcile(
  d: MigrationJobDeps,
  req: MigrationRequest,
  attemptKey: string,
): Promise<MigrationResult> {
  const attempt = JSON.parse((await d.redis.get(attemptKey)) ?? '{}') as { startedAt?: number };
  const timeoutMs = effectivePolicy(d.ports, req).policy.timeoutMs;
  const abortAt = (attempt.startedAt ?? Date.now()) + timeoutMs;
  // As long as the dead run would have waited for libvirt (its call's own timeout), and a
  // moment at least, so an incoming move seen paused can finish.
  const deadline = Math.max(abortAt + 60_000, Date.now() + 2_000);
  let aborted = false;
  for (;;) {
    const src = d.ports.clientFor(req.from);
    const dom = src ? await src.lookupByName(req.vm).catch(() => null) : null;
    const js = src && dom ? await src.jobStats(dom).catch(() => null) : null;
    const moving = js !== null && !['none', 'completed', 'failed', 'cancelled'].includes(js.type);
    const incoming = (await stateOn(d, req.to, req.vm)) === 'paused';
    if (!moving && !(src === null && incoming)) break;
    if (Date.now() >= deadline) break;
    if (moving && !aborted && Date.now() >= abortAt) {
      aborted = true;
      d.ports.log.warn({ vm: req.vm, timeoutMs }, 'orphaned move past its timeout: aborting');
      await src!.abortJob(dom!).catch((e: Error) => d.ports.log.warn({ err: e.message }, 'abort failed'));
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  const onTo = await stateOn(d, req.to, req.vm);
  const running = (await whereRunning(d.ports, req.vm, [req.from, req.to])).filter(
    (h) => h !== req.to || onTo === 'running',
  );
  const base = {
    ...baseResult(req),
    reconciled: true,
    startedAt: attempt.startedAt ?? null,
    finishedAt: Date.now(),
    host: running.length === 1 ? running[0]! : running.join(',') || null,
  };
  const why = aborted ? `aborted after its timeout of ${timeoutMs} ms` : 'the migration did not complete';
  if (running.length === 1 && running[0] === req.to) {
    await undefineInactive(d, req.from, req.vm);
    return {
      ...base,
      outcome: 'succeeded',
      reason: 'keizokud restarted during the move; libvirt completed it',
    };
  }
  if (running.length === 1 && running[0] === req.from) {
    await undefineInactive(d, req.to, req.vm);
    return {
      ...base,
      outcome: aborted ? 'aborted' : 'failed',
      reason: `keizokud restarted during the move; ${why} and ${req.vm} runs on ${req.from}`,
    };
  }
  const pausedThere = onTo === 'paused' ? `; paused on ${req.to}: the incoming move has not finished` : '';
  return {
    ...base,
    outcome: 'failed',
    reason: `keizokud restarted during the move; ${req.vm} runs on ${running.length === 0 ? 'no host' : running.join(' and ')}${pausedThere}`,
  };
}

/** The VM's state on `host`, or null when it is not defined there or the host is not reachable. */
async function stateOn(d: MigrationJobDeps, host: string, vm: string): Promise<string | null> {
  const c = d.ports.clientFor(host);
  if (!c) return null;
  const dom = await c.lookupByName(vm).catch(() => null);
  return dom ? ((await c.getState(dom).catch(() => null))?.state ?? null) : null;
}

/** Removes a shut-off copy of the definition a move left on `host` (the VM runs elsewhere). */
async function undefineInactive(d: MigrationJobDeps, host: string, vm: string): Promise<void> {
  const c = d.ports.clientFor(host);
  if (!c) return;
  const dom = await c.lookupByName(vm).catch(() => null);
  if (!dom) return;
  const st = await c.getState(dom).catch(() => null);
  if (st?.state === 'shutoff') await c.undefine(dom).catch(() => undefined);
}
