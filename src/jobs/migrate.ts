import type { MigrationConfig } from '../config/index.ts';
import {
  type AppliedMigrationSettings,
  appliedSettings,
  type ChosenPolicy,
  chooseMigrationPolicy,
  type MigrationPolicy,
  maxDowntimeAt,
} from '../core/migration-policy.ts';
import type { ClusterSnapshot } from '../core/model.ts';
import { migrationRefusals, type PlacementContext } from '../core/placement/index.ts';
import type { DomainEvent, DomainRef, LibvirtClient } from '../libvirt/client.ts';
import { MigrationEventDetail } from '../libvirt/constants.ts';
import { TcpSessionCheck, type TcpSessionResult } from '../probe/tcp-session.ts';
import { domainRequirements, hostCpuModel } from './domain-requirements.ts';
import { storageChecks, storageCopy } from './storage.ts';

/**
 * One live migration, from pre-checks to the probe's verdict. Peer-to-peer: the source
 * libvirtd drives the move; keizokud watches the job, switches to post-copy or aborts by
 * policy, and never leaves the VM anywhere but on exactly one host.
 */

export interface MigrationRequest {
  vm: string;
  from: string;
  to: string;
  /** Copy local disks: always, never, or 'auto' (only when a disk is missing on the destination: maintenance, drills). */
  copyStorage: boolean | 'auto';
  /** Who asked: a token, or the controller for maintenance and drills. */
  requestedBy: { id: string; name: string };
  /** api, maintenance:HOST, drill:ID, … */
  reason: string;
  /** Per-request overrides of the configured policy (drills and tests use them). */
  policy?: Partial<MigrationConfig>;
  /** The decision this move carries out (store/decisions.ts). */
  decisionId?: string | null;
}

export interface MigrationProgress {
  phase: 'queued' | 'checking' | 'waiting-for-slot' | 'migrating' | 'post-copy' | 'measuring' | 'done';
  percent: number;
  dataTotalBytes: number;
  dataProcessedBytes: number;
  dataRemainingBytes: number;
  iteration: number;
  dirtyRateBytesPerSec: number;
  elapsedMs: number;
}

export interface ProbeWindow {
  probe: string;
  site: string;
  sent: number;
  lost: number;
  lossRate: number;
  rttMinMs: number | null;
  rttMaxMs: number | null;
  rttAvgMs: number | null;
  outageMs: number;
  [k: string]: unknown;
}

export type MigrationOutcome = 'succeeded' | 'failed' | 'aborted' | 'cancelled' | 'refused';

export interface MigrationResult {
  outcome: MigrationOutcome;
  reason: string | null;
  vm: string;
  from: string;
  to: string;
  /** Where the VM runs now, as libvirt reports it. */
  host: string | null;
  /** Storage checks also name their disk and whether it is copied (storage.ts). */
  checks: { check: string; ok: boolean; detail: string; disk?: string; copy?: boolean }[];
  startedAt: number | null;
  finishedAt: number;
  /** Pre-checks (placement, CPU, storage, networks), before libvirt is asked to move. */
  checkMs: number | null;
  /** libvirt's migration call, start to end, as keizokud timed it. */
  totalMs: number | null;
  libvirtDowntimeMs: number | null;
  dataTransferredBytes: number | null;
  iterations: number | null;
  postCopy: boolean;
  /** What the move ran with: defaults, the cross-site (WAN) rule that applied, the request's overrides. */
  settings: AppliedMigrationSettings | null;
  probe: ProbeWindow[];
  session: TcpSessionResult | null;
  /** Why no TCP session was checked although the policy asks for one (it could not connect). */
  sessionUnchecked: string | null;
  /** Each raise of the switch-over limit (migration.maxDowntimeSteps): at which iteration, to what, when. */
  downtimeRaises: { iteration: number; maxDowntimeMs: number; afterMs: number }[];
  /**
   * Resets of the guest on the destination (libvirt's reboot event) from the start of the move
   * until its probe window closed: a guest that resets right after the switch-over has lost its
   * state; its session is then counted broken even if its socket had not noticed yet.
   */
  guestResets: number;
  /** Finished by reconciling with libvirt after keizokud restarted mid-move. */
  reconciled: boolean;
}

export interface MigrationPorts {
  snapshot(): ClusterSnapshot;
  clientFor(host: string): LibvirtClient | null;
  migrationUriOf(host: string): string;
  placement: PlacementContext;
  policy: MigrationPolicy;
  /** The VM's tier, for the cross-site rules that name one (absent: no tier). */
  tierOf?(vm: string): string | null;
  addressesOf(vm: string): readonly string[];
  probeWindow(vm: string, fromMs: number, toMs: number): Promise<ProbeWindow[]>;
  log: { info(o: object, msg: string): void; warn(o: object, msg: string): void };
}

export interface JobHandle {
  id: string;
  progress(p: MigrationProgress): Promise<void>;
  cancelled(): Promise<boolean>;
  /** Called while waiting and migrating, so slots and locks stay held. */
  heartbeat(): Promise<void>;
}

/**
 * The job's Redis calls made while libvirt moves the VM. None is awaited by the watch loop:
 * while Redis is away (paused, restarting, unreachable) the move is still watched, timed out,
 * cancelled and switched to post-copy by this process. A call still pending is not repeated;
 * a failure is logged once until the call answers again.
 */
class RedisSide {
  private readonly pending = new Set<string>();
  private readonly failing = new Set<string>();
  /** Set once a cancel check has answered yes. */
  cancelSeen = false;

  constructor(
    private readonly job: JobHandle,
    private readonly log: MigrationPorts['log'],
    private readonly vm: string,
  ) {}

  private fire(name: string, call: () => Promise<unknown>): void {
    if (this.pending.has(name)) return;
    this.pending.add(name);
    call().then(
      () => {
        this.pending.delete(name);
        if (this.failing.delete(name)) this.log.info({ vm: this.vm, call: name }, 'job state answers again');
      },
      (e: Error) => {
        this.pending.delete(name);
        if (!this.failing.has(name))
          this.log.warn(
            { vm: this.vm, call: name, err: e.message },
            'job state not reachable; the move is still watched',
          );
        this.failing.add(name);
      },
    );
  }

  heartbeat(): void {
    this.fire('heartbeat', () => this.job.heartbeat());
  }
  progress(p: MigrationProgress): void {
    this.fire('progress', () => this.job.progress(p));
  }
  checkCancel(): void {
    this.fire('cancel', async () => {
      if (await this.job.cancelled()) this.cancelSeen = true;
    });
  }
}

export class Refusal extends Error {
  override name = 'Refusal';
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const n = (v: unknown) =>
  (typeof v === 'number' ? v : typeof v === 'bigint' ? Number(v) : Number(v ?? 0)) || 0;

function clientOrRefuse(ports: MigrationPorts, host: string): LibvirtClient {
  const c = ports.clientFor(host);
  if (!c) throw new Refusal(`host ${host} is not connected`);
  return c;
}

/** Pre-checks that need libvirt: CPU model, disks and networks on the destination. */
export async function libvirtChecks(
  req: MigrationRequest,
  src: LibvirtClient,
  dst: LibvirtClient,
  dom: DomainRef,
): Promise<MigrationResult['checks']> {
  const checks: MigrationResult['checks'] = [];
  const need = domainRequirements(await src.getXml(dom));
  if (need.cpuXml) {
    const r = await dst.compareHypervisorCpu(need.cpuXml, need);
    checks.push({
      check: 'cpu',
      ok: r !== 0,
      detail:
        r === 0 ? `the VM's CPU model is not supported by ${req.to}` : `CPU model supported by ${req.to}`,
    });
  } else if (need.cpuMode === 'host-passthrough') {
    const [a, b] = await Promise.all([src.capabilities(), dst.capabilities()]);
    const same = hostCpuModel(a) === hostCpuModel(b);
    checks.push({
      check: 'cpu',
      ok: same,
      detail: same
        ? 'host-passthrough between hosts of the same CPU model'
        : `host-passthrough: ${req.from} has ${hostCpuModel(a)}, ${req.to} has ${hostCpuModel(b)}`,
    });
  } else {
    checks.push({ check: 'cpu', ok: true, detail: `CPU mode ${need.cpuMode}: no host-specific model` });
  }
  checks.push(...(await storageChecks(req, src, dst, need.disks)));
  for (const net of need.networks) {
    const ok = await dst.networkActive(net);
    checks.push({
      check: 'network',
      ok,
      detail: `network ${net} ${ok ? 'active' : 'missing or inactive'} on ${req.to}`,
    });
  }
  for (const br of need.bridges)
    checks.push({
      check: 'network',
      ok: true,
      detail: `bridge ${br}: not visible through libvirt; expected on ${req.to} like on every host of the site`,
    });
  return checks;
}

function progressOf(
  stats: Record<string, unknown>,
  startedAt: number,
  phase: MigrationProgress['phase'],
): MigrationProgress {
  const total = n(stats.data_total);
  const remaining = n(stats.data_remaining);
  const processed = n(stats.data_processed);
  const pageSize = n(stats.memory_page_size) || 4096;
  return {
    phase,
    percent: total > 0 ? Math.min(100, Math.round((1000 * (total - remaining)) / total) / 10) : 0,
    dataTotalBytes: total,
    dataProcessedBytes: processed,
    dataRemainingBytes: remaining,
    iteration: n(stats.memory_iteration),
    dirtyRateBytesPerSec: n(stats.memory_dirty_rate) * pageSize,
    elapsedMs: Date.now() - startedAt,
  };
}

/** Where the VM is running now: the host names that report it running or paused. */
export async function whereRunning(ports: MigrationPorts, vm: string, hosts: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const h of hosts) {
    const c = ports.clientFor(h);
    if (!c) continue;
    try {
      const st = await c.getState(await c.lookupByName(vm));
      if (st.state === 'running' || st.state === 'paused') out.push(h);
    } catch {
      // not defined there
    }
  }
  return out;
}

export function baseResult(req: MigrationRequest): MigrationResult {
  return {
    outcome: 'failed',
    reason: null,
    vm: req.vm,
    from: req.from,
    to: req.to,
    host: null,
    checks: [],
    startedAt: null,
    finishedAt: 0,
    checkMs: null,
    totalMs: null,
    libvirtDowntimeMs: null,
    dataTransferredBytes: null,
    iterations: null,
    postCopy: false,
    settings: null,
    probe: [],
    session: null,
    sessionUnchecked: null,
    downtimeRaises: [],
    guestResets: 0,
    reconciled: false,
  };
}

/**
 * The configured policy, the cross-site rule for a move between sites, and the request's
 * overrides: what the move, and its reconcile, go by.
 */
export function effectivePolicy(ports: MigrationPorts, req: MigrationRequest): ChosenPolicy {
  const hosts = ports.snapshot().hosts;
  return chooseMigrationPolicy(
    ports.policy,
    {
      fromSite: hosts.get(req.from)?.site ?? null,
      toSite: hosts.get(req.to)?.site ?? null,
      tier: ports.tierOf?.(req.vm) ?? null,
    },
    req.policy,
  );
}

/** Runs the migration; never throws for a refusal or a failed move: the result says what happened. */
export async function runMigration(
  req: MigrationRequest,
  job: JobHandle,
  ports: MigrationPorts,
  /** Called just before libvirt is asked to move the VM: true to move, or why this run must not (refused). */
  onStart: (startedAt: number) => Promise<true | string>,
): Promise<MigrationResult> {
  const sessions: TcpSessionCheck[] = [];
  try {
    return await migrate(req, job, ports, onStart, (s) => sessions.push(s));
  } finally {
    // On every path, a throwing onStart or heartbeat included, the session check's timer and
    // socket end here (stop() again after the result took its figures is harmless).
    for (const s of sessions) s.stop();
  }
}

async function migrate(
  req: MigrationRequest,
  job: JobHandle,
  ports: MigrationPorts,
  onStart: (startedAt: number) => Promise<true | string>,
  track: (s: TcpSessionCheck) => void,
): Promise<MigrationResult> {
  const chosen = effectivePolicy(ports, req);
  const policy = chosen.policy;
  const result = baseResult(req);
  result.settings = appliedSettings(chosen);
  const finish = (outcome: MigrationOutcome, reason: string | null) => {
    result.outcome = outcome;
    result.reason = reason;
    result.finishedAt = Date.now();
    return result;
  };
  const idle = (phase: MigrationProgress['phase'], startedAt = Date.now()): MigrationProgress => ({
    phase,
    percent: 0,
    dataTotalBytes: 0,
    dataProcessedBytes: 0,
    dataRemainingBytes: 0,
    iteration: 0,
    dirtyRateBytesPerSec: 0,
    elapsedMs: Date.now() - startedAt,
  });
  await job.progress(idle('checking'));
  const checkStart = Date.now();
  let src: LibvirtClient;
  let dst: LibvirtClient;
  let dom: DomainRef;
  try {
    const refusals = migrationRefusals(ports.snapshot(), req.vm, req.to, ports.placement);
    const now = ports.snapshot().vms.get(req.vm);
    if (now && now.host !== req.from) refusals.unshift(`${req.vm} runs on ${now.host}, not ${req.from}`);
    if (refusals.length > 0) throw new Refusal(refusals.join('; '));
    src = clientOrRefuse(ports, req.from);
    dst = clientOrRefuse(ports, req.to);
    dom = await src.lookupByName(req.vm);
    result.checks = await libvirtChecks(req, src, dst, dom);
    const failed = result.checks.filter((c) => !c.ok);
    if (failed.length > 0) throw new Refusal(failed.map((c) => c.detail).join('; '));
  } catch (e) {
    result.host = req.from;
    if (e instanceof Refusal) return finish('refused', e.message);
    return finish('refused', `pre-check failed: ${(e as Error).message}`);
  }
  if (await job.cancelled()) return finish('cancelled', 'cancelled before it started');

  const addresses = ports.addressesOf(req.vm);
  let session: TcpSessionCheck | null = null;
  if (policy.sessionCheckPort && addresses.length > 0) {
    session = new TcpSessionCheck({
      host: addresses[0]!,
      port: policy.sessionCheckPort,
      heartbeatMs: 100,
      breakAfterMs: 10_000,
    });
    track(session);
    await session.start().catch((e: Error) => {
      ports.log.warn({ vm: req.vm, err: e.message }, 'session check could not connect');
      result.sessionUnchecked = e.message;
      session = null;
    });
  }

  const startedAt = Date.now();
  result.startedAt = startedAt;
  result.checkMs = startedAt - checkStart;
  const go = await onStart(startedAt);
  if (go !== true) {
    result.host = req.from;
    return finish('refused', go);
  }
  let downtimeLimit = policy.maxDowntimeMs;
  await src.migrateSetMaxDowntime(dom, downtimeLimit).catch(() => undefined);
  const postCopyWanted = policy.postCopyAfterIterations > 0 || policy.postCopyAfterMs > 0;
  let settled: { ok: true } | { ok: false; err: Error } | null = null;
  const moving = src
    .migrate(dom, {
      destinationUri: ports.migrationUriOf(req.to),
      persistent: true,
      undefineSource: true,
      autoConverge: policy.autoConverge,
      postCopy: postCopyWanted,
      ...(policy.bandwidthMiBs > 0 ? { bandwidthMiBs: policy.bandwidthMiBs } : {}),
      ...(policy.parallelConnections > 0 ? { parallelConnections: policy.parallelConnections } : {}),
      ...(policy.compression.length > 0 ? { compression: [...policy.compression] } : {}),
      // Only the host-local disks the checks chose (storage.ts), never a shared one.
      ...storageCopy(req, result.checks),
      timeoutMs: policy.timeoutMs + 60_000,
    })
    .then(
      () => {
        settled = { ok: true };
      },
      (err: Error) => {
        settled = { ok: false, err };
      },
    );
  let abortReason: { outcome: MigrationOutcome; reason: string } | null = null;
  let lastIteration = 0;
  const side = new RedisSide(job, ports.log, req.vm);
  // From the source's pause for the switch-over until the call returns, libvirt is not asked for
  // progress: a job-stats read then waits for the handover and holds it up (the guest paused).
  let switchover = false;
  const onEvent = (ev: DomainEvent) => {
    if (
      ev.kind === 'lifecycle' &&
      ev.domain === req.vm &&
      ev.event === 'suspended' &&
      ev.detail === MigrationEventDetail.SUSPENDED_MIGRATED
    )
      switchover = true;
  };
  src.on('domain-event', onEvent);
  const onDestEvent = (ev: DomainEvent) => {
    if (ev.kind === 'reboot' && ev.domain === req.vm) result.guestResets++;
  };
  dst.on('domain-event', onDestEvent);
  try {
    while (settled === null) {
      await Promise.race([moving, sleep(policy.progressIntervalMs)]);
      if (settled !== null) break;
      side.heartbeat();
      side.checkCancel();
      const js = switchover ? null : await src.jobStats(dom).catch(() => null);
      const elapsed = Date.now() - startedAt;
      if (js && js.type !== 'none') {
        const p = progressOf(js.stats, startedAt, result.postCopy ? 'post-copy' : 'migrating');
        lastIteration = p.iteration;
        side.progress(p);
        const limit = maxDowntimeAt(policy, p.iteration);
        if (limit > downtimeLimit && !result.postCopy) {
          downtimeLimit = limit;
          await src.migrateSetMaxDowntime(dom, limit).then(
            () =>
              result.downtimeRaises.push({ iteration: p.iteration, maxDowntimeMs: limit, afterMs: elapsed }),
            (e: Error) => ports.log.warn({ vm: req.vm, err: e.message }, 'max downtime raise refused'),
          );
        }
        const postCopyDue =
          postCopyWanted &&
          !result.postCopy &&
          n(js.stats.memory_processed) > 0 &&
          ((policy.postCopyAfterIterations > 0 && p.iteration >= policy.postCopyAfterIterations) ||
            (policy.postCopyAfterMs > 0 && elapsed >= policy.postCopyAfterMs));
        if (postCopyDue) {
          await src.migrateStartPostCopy(dom).then(
            () => {
              result.postCopy = true;
              ports.log.info(
                { vm: req.vm, iteration: p.iteration, elapsedMs: elapsed },
                'switched to post-copy',
              );
            },
            (e: Error) => ports.log.warn({ vm: req.vm, err: e.message }, 'post-copy switch refused'),
          );
        }
      }
      if (abortReason === null && !result.postCopy) {
        if (elapsed > policy.timeoutMs)
          abortReason = { outcome: 'aborted', reason: `timed out after ${policy.timeoutMs} ms` };
        else if (side.cancelSeen) abortReason = { outcome: 'cancelled', reason: 'cancelled while migrating' };
        if (abortReason)
          await src.abortJob(dom).catch((e: Error) => ports.log.warn({ err: e.message }, 'abort failed'));
      }
    }
  } finally {
    src.off('domain-event', onEvent);
  }
  const endedAt = Date.now();
  result.totalMs = endedAt - startedAt;
  const s = settled as { ok: true } | { ok: false; err: Error };
  const running = await whereRunning(ports, req.vm, [req.from, req.to]);
  result.host = running.length === 1 ? running[0]! : running.length === 0 ? null : running.join(',');
  if (s.ok) {
    const onDest = await dst.lookupByName(req.vm).catch(() => null);
    const done = onDest ? await dst.jobStats(onDest, true).catch(() => null) : null;
    result.libvirtDowntimeMs = done ? n(done.stats.downtime) || null : null;
    result.dataTransferredBytes = done ? n(done.stats.data_processed) || null : null;
    result.iterations = done ? n(done.stats.memory_iteration) || lastIteration : lastIteration;
  }
  result.session = session ? (session as TcpSessionCheck).stop() : null;
  // Let the probe see the first replies after the move, then ask it for the window.
  side.progress(idle('measuring', startedAt));
  await sleep(1_500);
  dst.off('domain-event', onDestEvent);
  result.probe = await ports.probeWindow(req.vm, startedAt - 1_000, endedAt + 1_500).catch(() => []);
  if (result.guestResets > 0) {
    ports.log.warn(
      { vm: req.vm, host: req.to, resets: result.guestResets },
      'the guest reset after the move',
    );
    if (result.session)
      result.session = { ...result.session, survived: false, reason: 'the guest reset on the destination' };
  }
  if (s.ok) return finish('succeeded', null);
  if (abortReason)
    return finish(abortReason.outcome, `${abortReason.reason}; ${req.vm} runs on ${result.host}`);
  return finish('failed', `${s.err.message}; ${req.vm} runs on ${result.host ?? 'no host'}`);
}
