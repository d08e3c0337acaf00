import { randomUUID } from 'node:crypto';
import { type Job, Queue, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Mechanism } from '../config/index.ts';
import type { FailoverRecord } from '../core/ha/timeline.ts';
import type { ClusterSnapshot } from '../core/model.ts';
import { type PlacementContext, rankHosts } from '../core/placement/index.ts';
import type { Tiers } from '../core/tiers.ts';
import type { MigrationRequest, ProbeWindow } from '../jobs/migrate.ts';
import type { JobSystem, MigrationJobView } from '../jobs/queue.ts';
import type { LibvirtClient } from '../libvirt/client.ts';
import type { AuditLog } from '../store/audit.ts';
import type { FailoverStore } from '../store/failovers.ts';
import type { FenceBook } from '../store/fences.ts';
import type { HaPause } from '../store/ha.ts';
import { type RedisKeys, redisKeys } from '../store/keys.ts';
import type { DrillFencer } from './host-failure.ts';
import { type Clock, figures, type HostFailureDeps, runHostFailure, type VmHold } from './host-failure.ts';
import {
  buildReport,
  type DrillFailover,
  type DrillMoveInput,
  type DrillReport,
  type RttPoint,
  writeReportFiles,
} from './report/index.ts';

/**
 * BCP drills: a scenario run against a VM, every move measured by the probe agents and judged
 * against the VM's tier. Drills are BullMQ jobs, one at a time in the whole cluster (the queue's
 * global concurrency is 1, whatever the number of replicas), so a request survives a restart; a
 * drill interrupted by one ends as failed rather than being replayed. host-failure.ts runs the
 * host-failure scenario. Their queue and records are in Redis (`bullPrefix`, `drills*` in
 * store/keys.ts). Reports are also written to drills.dir as ID.json, ID.md and ID.html.
 */

export const RUNNABLE_SCENARIOS = ['live-migration', 'site-migration', 'host-failure'] as const;
export type RunnableScenario = (typeof RUNNABLE_SCENARIOS)[number];

export interface DrillRequest {
  id: string;
  scenario: RunnableScenario;
  vm: string;
  /** Moves to make (back and forth). */
  count: number;
  /**
   * The other host (default: the best host of the VM's site, or of another site for
   * site-migration). Not for host-failure: the failover chooses where the VM restarts.
   */
  to?: string;
  pauseMs: number;
  policy?: MigrationRequest['policy'];
  requestedBy: { id: string; name: string };
}

export interface DrillRecord {
  id: string;
  scenario: string;
  vm: string;
  count: number;
  status: 'queued' | 'running' | 'passed' | 'failed' | 'error';
  createdAt: number;
  requestedBy: string;
  movesDone: number;
  error: string | null;
  report: DrillReport | null;
}

export interface ProbeSeries {
  windows(vm: string, fromMs: number, toMs: number): Promise<ProbeWindow[]>;
  /** Every probe of the VM in the period, lost ones with rttMs null, and the outage windows. */
  series(
    vm: string,
    fromMs: number,
    toMs: number,
  ): Promise<{ rtt: RttPoint[]; outages: { startMs: number; endMs: number; open: boolean }[] }>;
}

export interface DrillDeps {
  redisUrlOptions: object;
  redis: Redis;
  prefix: string;
  jobs: JobSystem;
  snapshot(): ClusterSnapshot;
  placement: PlacementContext;
  tierOf(vm: string): string | null;
  tiers: Tiers;
  probes: ProbeSeries;
  fencer: DrillFencer;
  /** Where the host-failure drill records its confirmed fence (the failover then restarts the VM). */
  fences: Pick<FenceBook, 'record'>;
  /** The HA pause (store/ha.ts): while paused, nothing is restarted, so no host-failure drill runs. */
  haPaused(): Promise<HaPause | null>;
  /** The failover records (store/failovers.ts): a host-failure drill reports every VM restarted. */
  failovers?: Pick<FailoverStore, 'list'>;
  clientFor(host: string): LibvirtClient | null;
  audit: AuditLog;
  dir: string;
  timeZone: string;
  migrationTimeoutMs: number;
  /** How long a host-failure drill waits for the healed host to reconnect (default 90 s). */
  reconnectWaitMs?: number;
  /** Tests pass a fake clock to the host-failure drill. */
  clock?: Clock;
  log: { info(o: object, msg: string): void; warn(o: object, msg: string): void };
}

export class DrillError extends Error {
  override name = 'DrillError';
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Drills kept in Redis for the API; older ones stay as files in drills.dir. */
const KEPT_IN_REDIS = 1_000;

/**
 * Drill records in Redis: each with its report, a summary of each for the list, and an index by
 * creation time that keeps the newest KEPT_IN_REDIS (`drills`, `drillsSummary`, `drillsIndex`).
 */
export class DrillSystem {
  private readonly queue: Queue;
  private worker: Worker | null = null;
  private readonly keys: RedisKeys;

  constructor(private readonly d: DrillDeps) {
    this.keys = redisKeys(d.prefix);
    this.queue = new Queue('drill', { connection: d.redisUrlOptions, prefix: this.keys.bullPrefix });
  }

  /** Runs drills in this process; with every replica's worker, still one drill at a time. */
  async startWorker(): Promise<void> {
    await this.queue.setGlobalConcurrency(1);
    this.worker = new Worker('drill', (job) => this.process(job), {
      connection: this.d.redisUrlOptions,
      prefix: this.keys.bullPrefix,
      concurrency: 1,
      lockDuration: 10_000,
      stalledInterval: 5_000,
      maxStalledCount: 1,
    });
    this.worker.on('error', (e) => this.d.log.warn({ err: e.message }, 'drill worker'));
  }

  async close(): Promise<void> {
    await this.worker?.close();
    await this.queue.close();
  }

  /** The hosts a drill moves between; throws DrillError with the reason when it cannot run. */
  plan(req: Omit<DrillRequest, 'id'>): { a: string; b: string; tier: string; mechanism: Mechanism } {
    const snap = this.d.snapshot();
    const vm = snap.vms.get(req.vm);
    if (!vm) throw new DrillError(`no VM named "${req.vm}"`);
    if (vm.state !== 'running') throw new DrillError(`${req.vm} is ${vm.state}; a drill moves a running VM`);
    const tier = this.d.tierOf(req.vm);
    if (!tier)
      throw new DrillError(`${req.vm} has no tier assigned: a drill is judged against the VM's tier`);
    const site = snap.hosts.get(vm.host)?.site;
    if (req.scenario === 'host-failure') {
      if (req.count !== 1) throw new DrillError('a host-failure drill fences the host once: count must be 1');
      const why = this.d.fencer.canCycle(vm.host) ?? this.tierRefusal(req.vm, tier);
      if (why) throw new DrillError(why);
      if (req.to !== undefined)
        throw new DrillError(
          'a host-failure drill lets the failover choose where the VM restarts: do not give `to`',
        );
    }
    let b = req.to;
    if (b === undefined) {
      // A host-failure drill: where the failover would restart the VM now (its profile, its
      // site); the failover decides when it runs, the report says where it did.
      const profile = req.scenario === 'host-failure' ? 'failover' : 'migrate';
      const sites = snap.sites.filter((s) => (req.scenario === 'site-migration' ? s !== site : s === site));
      const best = rankHosts(snap, vm, this.d.placement, { sites, profile }).find((v) => v.feasible);
      if (!best)
        throw new DrillError(
          req.scenario === 'site-migration'
            ? `no host in a site other than ${site} can take ${req.vm}`
            : `no other host in site ${site} can take ${req.vm}`,
        );
      b = best.host;
    }
    const bSite = snap.hosts.get(b)?.site;
    if (!bSite) throw new DrillError(`no host named "${b}"`);
    if (b === vm.host) throw new DrillError(`${req.vm} already runs on ${b}: give another host`);
    if (req.scenario === 'site-migration' && bSite === site)
      throw new DrillError(
        `${b} is in ${site}, the site ${req.vm} is in: a site-migration drill needs another site`,
      );
    const mechanism: Mechanism =
      req.scenario === 'host-failure'
        ? bSite === site
          ? 'failover'
          : 'cross-site-failover'
        : bSite === site
          ? 'live-migration'
          : 'cross-site-live-migration';
    return { a: vm.host, b, tier, mechanism };
  }

  async enqueue(req: Omit<DrillRequest, 'id'>): Promise<DrillRecord> {
    this.plan(req);
    if (req.scenario === 'host-failure') {
      const paused = await this.pauseRefusal();
      if (paused) throw new DrillError(paused);
    }
    const id = `drill-${randomUUID()}`;
    const record: DrillRecord = {
      id,
      scenario: req.scenario,
      vm: req.vm,
      count: req.count,
      status: 'queued',
      createdAt: Date.now(),
      requestedBy: req.requestedBy.name,
      movesDone: 0,
      error: null,
      report: null,
    };
    await this.save(record);
    await this.queue.add(
      'drill',
      { ...req, id },
      { jobId: id, attempts: 1, removeOnComplete: 1000, removeOnFail: 1000 },
    );
    return record;
  }

  async get(id: string): Promise<DrillRecord | null> {
    const raw = await this.d.redis.hget(this.keys.drills, id);
    return raw ? (JSON.parse(raw) as DrillRecord) : null;
  }

  /** Newest first, without the reports' bulk (rtt series): reads only the summaries. */
  async list(limit = 100): Promise<Omit<DrillRecord, 'report'>[]> {
    const ids = await this.d.redis.zrevrange(this.keys.drillsIndex, 0, limit - 1);
    if (!ids.length) return [];
    const rows = await this.d.redis.hmget(this.keys.drillsSummary, ...ids);
    return rows
      .filter((r): r is string => r !== null)
      .map((r) => JSON.parse(r) as Omit<DrillRecord, 'report'>);
  }

  async wait(id: string, timeoutMs: number): Promise<DrillRecord | null> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const r = await this.get(id);
      if (!r || (r.status !== 'queued' && r.status !== 'running') || Date.now() > deadline) return r;
      await sleep(500);
    }
  }

  private async save(r: DrillRecord): Promise<void> {
    const { report, ...rest } = r;
    const summary = { ...rest, summary: report?.summary.overall ?? null };
    await this.d.redis
      .multi()
      .hset(this.keys.drills, r.id, JSON.stringify(r))
      .hset(this.keys.drillsSummary, r.id, JSON.stringify(summary))
      .zadd(this.keys.drillsIndex, r.createdAt, r.id)
      .exec();
    const excess = (await this.d.redis.zcard(this.keys.drillsIndex)) - KEPT_IN_REDIS;
    if (excess > 0) {
      const old = await this.d.redis.zrange(this.keys.drillsIndex, '0', String(excess - 1));
      await this.d.redis
        .multi()
        .hdel(this.keys.drills, ...old)
        .hdel(this.keys.drillsSummary, ...old)
        .zrem(this.keys.drillsIndex, ...old)
        .exec();
    }
  }

  private async process(job: Job): Promise<void> {
    const req = job.data as DrillRequest;
    const record = (await this.get(req.id)) ?? {
      id: req.id,
      scenario: req.scenario,
      vm: req.vm,
      count: req.count,
      status: 'queued' as const,
      createdAt: job.timestamp,
      requestedBy: req.requestedBy.name,
      movesDone: 0,
      error: null,
      report: null,
    };
    if (record.status === 'running') {
      // The previous worker died mid-drill: a half drill is not replayed.
      record.status = 'error';
      record.error = 'interrupted by a keizokud restart; run the drill again';
      await this.save(record);
      return;
    }
    record.status = 'running';
    await this.save(record);
    try {
      record.report = await this.run(req, record);
      record.status = record.report.summary.overall.status === 'pass' ? 'passed' : 'failed';
      this.write(record.report);
    } catch (e) {
      record.status = 'error';
      record.error = (e as Error).message;
    }
    await this.save(record);
    await this.d.audit.record({
      actor: 'controller',
      actorName: 'controller',
      action: 'drill.finish',
      target: req.vm,
      params: { drill: req.id, scenario: req.scenario, count: req.count, requestedBy: req.requestedBy.name },
      outcome: record.status === 'passed' ? 'succeeded' : 'failed',
      message: record.error ?? record.report?.summary.overall.reason ?? null,
    });
  }

  private async run(req: DrillRequest, record: DrillRecord): Promise<DrillReport> {
    const { a, b, tier, mechanism } = this.plan(req);
    const startedAt = Date.now();
    const moves: DrillMoveInput[] = [];
    let at = a;
    let stopped: string | null = null;
    let failover: DrillFailover | null = null;
    if (req.scenario === 'host-failure') {
      const r = await runHostFailure(this.hostFailureDeps(), req, a);
      if (r.move) moves.push(r.move);
      stopped = r.stopped;
      failover = r.failover ?? null;
      record.movesDone = moves.length;
    }
    for (let i = 1; i <= req.count && req.scenario !== 'host-failure'; i++) {
      const to = at === a ? b : a;
      let job: MigrationJobView | null;
      try {
        job = await this.d.jobs.enqueueMigration({
          vm: req.vm,
          from: at,
          to,
          copyStorage: 'auto',
          requestedBy: req.requestedBy,
          reason: `drill:${req.id}`,
          ...(req.policy ? { policy: req.policy } : {}),
        });
        job = (await this.d.jobs.wait(
          job.id,
          this.d.migrationTimeoutMs + 120_000,
        )) as MigrationJobView | null;
      } catch (e) {
        stopped = `move ${i} could not start: ${(e as Error).message}`;
        break;
      }
      const r = job?.result;
      if (!job || !r || job.state !== 'succeeded') {
        stopped = `move ${i} ${at} -> ${to} ended ${job?.state ?? 'unknown'}: ${r?.reason ?? 'no result'}`;
        break;
      }
      moves.push({
        index: i,
        vm: req.vm,
        mechanism,
        from: at,
        to,
        startedMs: r.startedAt ?? r.finishedAt,
        endedMs: (r.startedAt ?? r.finishedAt) + (r.totalMs ?? 0),
        totalMs: r.totalMs ?? 0,
        libvirtDowntimeMs: r.libvirtDowntimeMs,
        probe: figures(r.probe[0]),
        sessionSurvived: r.session ? r.session.survived : null,
        ...(r.sessionUnchecked ? { sessionUnchecked: r.sessionUnchecked } : {}),
      });
      record.movesDone = i;
      await this.save(record);
      at = to;
      if (i < req.count) await sleep(req.pauseMs);
    }
    const endedAt = Date.now();
    const series = await this.d.probes
      .series(req.vm, startedAt - 500, endedAt)
      .catch(() => ({ rtt: [], outages: [] }));
    const report = buildReport(
      {
        id: req.id,
        scenario: req.scenario,
        startedAt,
        endedAt,
        vms: [req.vm],
        tier,
        parameters: {
          hosts:
            req.scenario === 'host-failure'
              ? `${a} -> ${moves[0]?.to ?? '(not restarted)'}`
              : `${a} <-> ${b}`,
          count: req.count,
          pauseMs: req.pauseMs,
          requestedBy: req.requestedBy.name,
          ...(stopped ? { stopped } : {}),
        },
        moves,
        rtt: series.rtt,
        outages: series.outages,
        ...(req.scenario === 'host-failure' ? { failover } : {}),
      },
      this.d.tiers,
    );
    if (stopped) {
      report.summary.overall.status = 'fail';
      report.summary.overall.reason = `The drill stopped early: ${stopped}. ${report.summary.overall.reason}`;
    }
    return report;
  }

  private hostFailureDeps(): HostFailureDeps {
    return {
      clientFor: (h) => this.d.clientFor(h),
      fencer: this.d.fencer,
      recordFence: (r) => this.d.fences.record(r),
      failoverRefusal: async (vm) => {
        const tier = this.d.tierOf(vm);
        return (
          (tier ? this.tierRefusal(vm, tier) : `${vm} has no tier assigned`) ?? (await this.pauseRefusal())
        );
      },
      locate: (vm) => {
        const v = this.d.snapshot().vms.get(vm);
        return v ? { host: v.host, state: v.state } : null;
      },
      siteOf: (h) => this.d.snapshot().hosts.get(h)?.site ?? null,
      audit: this.d.audit,
      probes: this.d.probes,
      holdVm: (vm, drill) => this.holdVm(vm, drill),
      reconnectWaitMs: this.d.reconnectWaitMs ?? 90_000,
      ...(this.d.failovers ? { failoverOf: (h, since) => failoverSince(this.d.failovers!, h, since) } : {}),
      ...(this.d.clock ? { clock: this.d.clock } : {}),
      log: this.d.log,
    };
  }

  /** Why the failover would not restart a VM of this tier (null: it would). */
  private tierRefusal(vm: string, tier: string): string | null {
    const t = this.d.tiers.tiers.find((x) => x.id === tier);
    return t?.mechanisms.includes('failover')
      ? null
      : `tier ${tier} of ${vm} has no failover mechanism: the failover would not restart it, so a host-failure drill would only take it down`;
  }

  private async pauseRefusal(): Promise<string | null> {
    const p = await this.d.haPaused();
    if (!p) return null;
    return `HA is paused until ${new Date(p.until).toISOString()} (by ${p.by}${p.reason ? `: ${p.reason}` : ''}): the failover would not restart the VM`;
  }

  /** The VM's job lock, the one every job of the VM takes (vm:{vm}:job), held by this drill's job. */
  private async holdVm(vm: string, drill: string): Promise<VmHold> {
    const locks = this.d.jobs.locks;
    const taken = await locks.take([{ vm, job: drill, queue: 'drill' }]);
    if (!taken.ok) {
      const c = taken.conflicts[0]!;
      return { held: false, holder: `${c.job} (${c.queue})` };
    }
    // Taken, not claimed by a run: generation 0 (a crashed drill's lock is free once BullMQ fails its job).
    return { held: true, release: async () => void (await locks.release(vm, drill, 0)) };
  }

  private write(report: DrillReport): void {
    try {
      writeReportFiles(this.d.dir, report, { timeZone: this.d.timeZone });
    } catch (e) {
      this.d.log.warn({ err: (e as Error).message, dir: this.d.dir }, 'writing drill report files failed');
    }
  }
}

/** The newest failover record of `host` opened at or after `since`. */
async function failoverSince(
  store: Pick<FailoverStore, 'list'>,
  host: string,
  since: number,
): Promise<FailoverRecord | null> {
  return (await store.list({ host, limit: 5 })).find((r) => r.detectedAt >= since) ?? null;
}
