import type { Mechanism } from '../config/index.ts';
import type { FailoverRecord } from '../core/ha/timeline.ts';
import type { Fencer } from '../fence/fencer.ts';
import type { ProbeWindow } from '../jobs/migrate.ts';
import type { LibvirtClient } from '../libvirt/client.ts';
import { LibvirtError } from '../libvirt/errors.ts';
import type { AuditLog } from '../store/audit.ts';
import type { FenceRecord } from '../store/fences.ts';
import { type DrillFailover, type DrillMoveInput, drillFailover, type ProbeFigures } from './report/index.ts';
import type { ProbeSeries } from './runner.ts';

/** A drill powers the host off (confirmed off, with the method's evidence) and on again. */
export type DrillFencer = Pick<Fencer, 'canCycle' | 'fence' | 'powerOn'>;

/**
 * The host-failure drill: power the VM's host off with its fence method, record the confirmed
 * fence, and let automatic failover (loops/ha.ts) restart the VM elsewhere, as it would after a
 * real host loss; measure the time from the fence until the probe sees the VM answer again (the
 * RTO), then power the host on and remove the stale definition there. The drill never starts
 * the VM itself. It cannot run twice:
 * - the drill holds the VM's job lock from before its checks until the host is confirmed off,
 *   so no migration moves it meanwhile; right before the fence it reads again, from libvirt and
 *   the inventory, that the VM runs on the host to fence;
 * - the lock is released before the fence is recorded: until then the host is not `fenced` and
 *   no restart can be planned, and the VM runs nowhere, so nothing else can take the lock
 *   for it; the failover's restart job needs it once the fence is recorded;
 * - the restart is the failover's `restart-elsewhere` job: submitted and run only while the
 *   old host is `fenced` and no other host might run the VM (core/planners/restart.ts
 *   restartRefusals, checked again by the executor on a fresh snapshot), and the site's disk
 *   locks refuse a start while another live host holds the disk;
 * - the `host.fence` entry is written before the power-off: a failed write fences nothing; once
 *   the power-off was asked for, the drill always powers the host on again;
 * - the stale definition on the healed host is removed only once the VM was seen running
 *   elsewhere, and only when that domain is shut off; a copy that autostarted is destroyed
 *   first, and a host that does not reconnect is reported.
 */

export interface Clock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

export const realClock: Clock = {
  now: () => Date.now(),
  sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
};

/** The VM's job lock held for the drill: release it, or who holds it instead. */
export type VmHold = { held: true; release(): Promise<void> } | { held: false; holder: string };

export interface HostFailureDeps {
  clientFor(host: string): LibvirtClient | null;
  fencer: DrillFencer;
  /** Records a confirmed power off (FenceBook.record): the host is then `fenced`. */
  recordFence(r: FenceRecord): Promise<void>;
  /** Why automatic failover would not restart the VM now (its tier, an HA pause); null: it would. */
  failoverRefusal(vm: string): Promise<string | null>;
  /** Where the inventory sees the VM now, null when it runs nowhere it can see. */
  locate(vm: string): { host: string; state: string } | null;
  siteOf(host: string): string | null;
  audit: Pick<AuditLog, 'record'>;
  probes: ProbeSeries;
  /** Takes the VM's job lock (vm:{vm}:job) for the drill. */
  holdVm(vm: string, drill: string): Promise<VmHold>;
  /** How long the clean-up waits for the healed host's connection (the inventory's backoff reaches 30 s). */
  reconnectWaitMs: number;
  /** How long the drill waits for the failover to restart the VM and the probe to see it (default 180 s). */
  restartWaitMs?: number;
  /** The newest failover record of the host opened at or after `since` (store/failovers.ts). */
  failoverOf?(host: string, since: number): Promise<FailoverRecord | null>;
  /** How long the drill waits, once its VM answers, for that record to close (default 120 s). */
  failoverWaitMs?: number;
  clock?: Clock;
  log: { warn(o: object, msg: string): void };
}

export interface HostFailureRequest {
  id: string;
  vm: string;
}

const actor = { actor: 'controller', actorName: 'controller', role: null };
const ACTIVE = new Set(['running', 'paused', 'blocked', 'pmsuspended']);

export function figures(w: ProbeWindow | undefined): ProbeFigures | null {
  if (!w) return null;
  return {
    sent: w.sent,
    lost: w.lost,
    lossRate: w.lossRate,
    rttMinMs: w.rttMinMs,
    rttMaxMs: w.rttMaxMs,
    rttAvgMs: w.rttAvgMs,
    outageMs: w.outageMs,
    outageStartMs: (w.outageStartMs as number | null | undefined) ?? null,
    outageEndMs: (w.outageEndMs as number | null | undefined) ?? null,
  };
}

const stateOn = async (c: LibvirtClient | null, vm: string): Promise<string | null> => {
  if (!c) return null;
  const dom = await c.lookupByName(vm).catch(() => null);
  return dom ? ((await c.getState(dom).catch(() => null))?.state ?? 'unknown') : null;
};

type Result = { move: DrillMoveInput | null; stopped: string | null; failover?: DrillFailover | null };
/** The host confirmed off: when the fence was asked for and when it was confirmed. */
type Fenced = { t0: number; offAt: number; record: FenceRecord };

export async function runHostFailure(
  d: HostFailureDeps,
  req: HostFailureRequest,
  from: string,
): Promise<Result> {
  const clock = d.clock ?? realClock;
  const hold = await d.holdVm(req.vm, req.id);
  if (!hold.held) return { move: null, stopped: `${req.vm} has job ${hold.holder}: nothing was fenced` };
  let fenced: Fenced | { stopped: string; asked: boolean };
  try {
    fenced = await checkAndPowerOff(d, clock, req, from);
  } finally {
    // Before the fence is recorded: the failover's restart job takes this lock.
    await hold
      .release()
      .catch((e: Error) => d.log.warn({ vm: req.vm, err: e.message }, 'drill lock release'));
  }
  if ('stopped' in fenced) {
    // The host may be off in part even when the fence was not confirmed: on again, nothing removed.
    if (fenced.asked)
      await d.fencer.powerOn(from).catch((e: Error) => {
        d.log.warn({ host: from, err: e.message }, 'powering the host on after a failed fence');
      });
    return { move: null, stopped: fenced.stopped };
  }
  return afterFence(d, clock, req, from, fenced);
}

/** Under the VM's lock: the checks, the audited fence request, and the confirmed power off. */
async function checkAndPowerOff(
  d: HostFailureDeps,
  clock: Clock,
  req: HostFailureRequest,
  from: string,
): Promise<Fenced | { stopped: string; asked: boolean }> {
  const stop = (stopped: string) => ({ stopped, asked: false });
  // The RTO is measured from a VM that answers: a loss already running would be counted in.
  if (!(await answering(d, clock, req.vm, 30_000)))
    return stop(`${req.vm} did not answer the probe steadily for 30 s before the fence: nothing was fenced`);
  // The failover does the restart: a VM it would not restart is not fenced (it would stay down).
  const refused = await d.failoverRefusal(req.vm);
  if (refused) return stop(`${refused}: nothing was fenced`);
  // Where it runs, read now: the wait above may have lasted 30 s.
  const src = d.clientFor(from);
  if (!src) return stop(`host ${from} is not connected: nothing was fenced`);
  const onFrom = await stateOn(src, req.vm);
  const seen = d.locate(req.vm);
  if (onFrom !== 'running' || seen?.host !== from)
    return stop(
      `${req.vm} no longer runs on ${from} (there: ${onFrom ?? 'not defined'}; the inventory sees it ${seen ? `${seen.state} on ${seen.host}` : 'nowhere'}): nothing was fenced`,
    );
  const t0 = clock.now();
  try {
    // Written before acting: a failed write fences nothing.
    await d.audit.record({
      ...actor,
      action: 'host.fence',
      target: from,
      params: { drill: req.id, vm: req.vm },
      outcome: 'succeeded',
    });
  } catch (e) {
    return stop(`the fence of ${from} could not be audited (${(e as Error).message}): nothing was fenced`);
  }
  const r = await d.fencer
    .fence(from)
    .catch((e: Error) => ({ ok: false, confirmedOff: false, error: e.message }));
  if (!r.ok || !r.confirmedOff || !('method' in r))
    return {
      stopped: `the fence of ${from} was not confirmed (${r.error ?? 'power state not read back as off'}): the VM was not restarted`,
      asked: true,
    };
  return {
    t0,
    offAt: clock.now(),
    record: { host: from, method: r.method, at: r.endedAt, evidence: r.evidence, ref: `drill:${req.id}` },
  };
}

/**
 * The host is off: record the fence, wait for the failover to restart the VM on another host
 * and for the probe to see it answer, then power the host on and remove the stale definition.
 */
async function afterFence(
  d: HostFailureDeps,
  clock: Clock,
  req: HostFailureRequest,
  from: string,
  f: Fenced,
): Promise<Result> {
  const waitMs = d.restartWaitMs ?? 180_000;
  let stopped: string | null = null;
  let answeredAt: number | null = null;
  let restartedOn: string | null = null;
  try {
    // Recorded by the drill, so the failover starts at once instead of waiting for the witnesses.
    await d.recordFence(f.record);
    const deadline = clock.now() + waitMs;
    while ((answeredAt === null || restartedOn === null) && clock.now() < deadline) {
      await clock.sleep(500);
      const at = d.locate(req.vm);
      if (at && at.host !== from && ACTIVE.has(at.state)) restartedOn ??= at.host;
      const s = await d.probes.series(req.vm, f.t0, clock.now()).catch(() => ({ outages: [] }));
      // The outage the host's power off caused: the VM answered nothing once the host was off.
      const o = s.outages
        .filter((x) => !x.open && x.endMs > f.offAt)
        .sort((x, y) => x.startMs - y.startMs)[0];
      if (o) answeredAt ??= o.endMs;
    }
    if (restartedOn === null)
      stopped = `the failover did not restart ${req.vm} within ${Math.round(waitMs / 1000)} s of the fence of ${from} (see GET /v1/vms/${req.vm}/decisions and the ha.* audit entries)`;
    else if (answeredAt === null)
      stopped = `${req.vm} did not answer the probe within ${Math.round(waitMs / 1000)} s of the fence (restarted on ${restartedOn})`;
  } catch (e) {
    stopped = `recording the fence of ${from} failed (${(e as Error).message}): the failover was not started, ${from} is powered on again`;
  } finally {
    await d.fencer.powerOn(from).catch((e: Error) => {
      stopped ??= `powering ${from} on again failed: ${e.message}`;
    });
    // Only a VM seen running elsewhere leaves a stale copy; otherwise the one on the host is the VM.
    if (restartedOn !== null) {
      const left = await removeStale(d, clock, from, req.vm);
      if (left) stopped ??= left;
    }
  }
  if (answeredAt === null || restartedOn === null) return { move: null, stopped };
  await clock.sleep(1_500);
  // From the fence on: the VM answered up to it, so any outage in the window is the fence's.
  const w = (await d.probes.windows(req.vm, f.t0, answeredAt + 1_500).catch(() => []))[0];
  // The probe's own end of the outage is the recovery time when it has one.
  const end = typeof w?.outageEndMs === 'number' && w.outageEndMs > f.t0 ? w.outageEndMs : answeredAt;
  answeredAt = Math.max(answeredAt, end);
  const mechanism: Mechanism = d.siteOf(restartedOn) === d.siteOf(from) ? 'failover' : 'cross-site-failover';
  const failover = await closedFailover(d, clock, from, f.t0);
  return {
    failover,
    move: {
      index: 1,
      vm: req.vm,
      mechanism,
      from,
      to: restartedOn,
      startedMs: f.t0,
      endedMs: answeredAt,
      totalMs: answeredAt - f.t0,
      libvirtDowntimeMs: null,
      probe: figures(w),
      sessionSurvived: null,
    },
    stopped,
  };
}

/**
 * The failover record of the fenced host (every VM the failover restarted from it), once it
 * closed: every VM answering, or given up. Null without a record store; an open record after
 * the wait is returned as it stands (its status says `open`).
 */
async function closedFailover(
  d: HostFailureDeps,
  clock: Clock,
  host: string,
  since: number,
): Promise<DrillFailover | null> {
  if (!d.failoverOf) return null;
  const deadline = clock.now() + (d.failoverWaitMs ?? 120_000);
  for (;;) {
    const r = await d.failoverOf(host, since).catch(() => null);
    if ((r && r.status !== 'open') || clock.now() >= deadline) return r ? drillFailover(r) : null;
    await clock.sleep(1_000);
  }
}

/**
 * The healed host still has the VM defined: it runs on the restart host now. Waits for the
 * host's connection (the inventory reconnects with a backoff of up to 30 s), then undefines a
 * shut-off copy; a copy that autostarted is destroyed first. Returns what was left, or null.
 */
async function removeStale(
  d: HostFailureDeps,
  clock: Clock,
  host: string,
  vm: string,
): Promise<string | null> {
  const deadline = clock.now() + d.reconnectWaitMs;
  for (;;) {
    const c = d.clientFor(host);
    // 'gone': the host answers and has no such domain; null: not connected (yet).
    const dom = c
      ? await c
          .lookupByName(vm)
          .catch((e) => (e instanceof LibvirtError && e.codeName === 'VIR_ERR_NO_DOMAIN' ? 'gone' : null))
      : null;
    if (dom === 'gone') return null;
    if (c && dom) {
      try {
        const st = (await c.getState(dom)).state;
        if (st !== 'shutoff') {
          d.log.warn(
            { vm, host, state: st },
            'a copy of the drilled VM runs on the healed host: destroying it',
          );
          await c.destroy(dom);
          if ((await c.getState(dom)).state !== 'shutoff') throw new Error(`still ${st} after destroy`);
        }
        await c.undefine(dom);
        return null;
      } catch (e) {
        return `the copy of ${vm} left on ${host} could not be removed (${(e as Error).message}): remove it by hand`;
      }
    }
    if (clock.now() >= deadline)
      return `${host} did not reconnect within ${Math.round(d.reconnectWaitMs / 1000)} s of powering on: the stale definition of ${vm} may still be there (virsh undefine ${vm})`;
    await clock.sleep(500);
  }
}

/**
 * Whether a probe agent saw the VM answer every probe of the last 3 s (any of its addresses,
 * at least 3 probes), waiting up to `withinMs` for that.
 */
async function answering(d: HostFailureDeps, clock: Clock, vm: string, withinMs: number): Promise<boolean> {
  const deadline = clock.now() + withinMs;
  for (;;) {
    const now = clock.now();
    const ws = await d.probes.windows(vm, now - 3_000, now).catch(() => []);
    if (ws.some((w) => w.sent >= 3 && w.outageMs === 0)) return true;
    if (clock.now() >= deadline) return false;
    await clock.sleep(500);
  }
}
