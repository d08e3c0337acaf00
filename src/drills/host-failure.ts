import type { Mechanism } from '../config/index.ts';
import type { Fencer } from '../fence/fencer.ts';

/** A drill powers the host off and on; it does not need the fence result. */
export type DrillFencer = Pick<Fencer, 'canCycle' | 'powerOff' | 'powerOn'>;

import type { ProbeWindow } from '../jobs/migrate.ts';
import type { LibvirtClient } from '../libvirt/client.ts';
import { DomainXmlFlags } from '../libvirt/constants.ts';
import { LibvirtError } from '../libvirt/errors.ts';
import type { AuditLog } from '../store/audit.ts';
import type { DrillMoveInput, ProbeFigures } from './report/index.ts';
import type { ProbeSeries } from './runner.ts';

/**
 * The host-failure drill: power the VM's host off (the lab's switch), restart the VM from its
 * definition on another host, measure the time until the probe sees it answer again (the RTO),
 * then power the host on and remove the stale definition there. The VM is never started twice:
 * - the drill holds the VM's job lock from before its checks to the end, so no migration (or
 *   other drill) moves it meanwhile;
 * - right before the fence it reads again, from libvirt, that the VM runs on the host to fence
 *   and not on the restart host, and takes the definition then (never one read before a wait);
 * - the `host.fence` entry is written before the power-off, inside the same try as the restart:
 *   a failed write fences nothing, and once the host is off the drill always powers it on again;
 * - the stale definition on the healed host is removed only when that domain is shut off; a
 *   copy that autostarted is destroyed first, and a host that does not reconnect is reported.
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
  audit: Pick<AuditLog, 'record'>;
  probes: ProbeSeries;
  /** Takes the VM's job lock (vm:{vm}:job) for the drill. */
  holdVm(vm: string, drill: string): Promise<VmHold>;
  /** How long the clean-up waits for the healed host's connection (the inventory's backoff reaches 30 s). */
  reconnectWaitMs: number;
  clock?: Clock;
  log: { warn(o: object, msg: string): void };
}

export interface HostFailureRequest {
  id: string;
  vm: string;
}

const actor = { actor: 'controller', actorName: 'controller', role: null };

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

export async function runHostFailure(
  d: HostFailureDeps,
  req: HostFailureRequest,
  from: string,
  to: string,
  mechanism: Mechanism,
): Promise<{ move: DrillMoveInput | null; stopped: string | null }> {
  const hold = await d.holdVm(req.vm, req.id);
  if (!hold.held) return { move: null, stopped: `${req.vm} has job ${hold.holder}: nothing was fenced` };
  try {
    return await underLock(d, req, from, to, mechanism);
  } finally {
    await hold
      .release()
      .catch((e: Error) => d.log.warn({ vm: req.vm, err: e.message }, 'drill lock release'));
  }
}

async function underLock(
  d: HostFailureDeps,
  req: HostFailureRequest,
  from: string,
  to: string,
  mechanism: Mechanism,
): Promise<{ move: DrillMoveInput | null; stopped: string | null }> {
  const clock = d.clock ?? realClock;
  // The RTO is measured from a VM that answers: a loss already running would be counted in.
  if (!(await answering(d, clock, req.vm, 30_000)))
    return {
      move: null,
      stopped: `${req.vm} did not answer the probe steadily for 30 s before the fence: nothing was fenced`,
    };
  // Where it runs and its definition, read now: the wait above may have lasted 30 s.
  const src = d.clientFor(from);
  const dst = d.clientFor(to);
  if (!src || !dst)
    return { move: null, stopped: `host ${!src ? from : to} is not connected: nothing was fenced` };
  const [onFrom, onTo] = [await stateOn(src, req.vm), await stateOn(dst, req.vm)];
  if (onFrom !== 'running' || onTo === 'running' || onTo === 'paused')
    return {
      move: null,
      stopped: `${req.vm} no longer runs on ${from} (there: ${onFrom ?? 'not defined'}; on ${to}: ${onTo ?? 'not defined'}): nothing was fenced`,
    };
  const xml = await src.getXml(await src.lookupByName(req.vm), DomainXmlFlags.INACTIVE);

  const t0 = clock.now();
  let fenced = false;
  let stopped: string | null = null;
  let answeredAt: number | null = null;
  try {
    // Written before acting: a failed write fences nothing.
    await d.audit.record({
      ...actor,
      action: 'host.fence',
      target: from,
      params: { drill: req.id, vm: req.vm, restartOn: to },
      outcome: 'succeeded',
    });
    fenced = true;
    await d.fencer.powerOff(from);
    const dom = await dst.defineXml(xml);
    // The host is off by now: no reply can come between here and the restart.
    const restartAt = clock.now();
    await dst.start(dom);
    await d.audit
      .record({
        ...actor,
        action: 'vm.restart',
        target: req.vm,
        params: { drill: req.id, from, to },
        outcome: 'succeeded',
      })
      .catch((e: Error) => d.log.warn({ vm: req.vm, err: e.message }, 'audit of the drill restart failed'));
    const deadline = clock.now() + 180_000;
    while (answeredAt === null && clock.now() < deadline) {
      await clock.sleep(500);
      const s = await d.probes.series(req.vm, t0, clock.now()).catch(() => ({ outages: [] }));
      // The first that ended after the restart (it may start after it at a slow probe pace).
      const o = s.outages
        .filter((x) => !x.open && x.endMs > restartAt)
        .sort((x, y) => x.startMs - y.startMs)[0];
      if (o) answeredAt = o.endMs;
    }
    if (answeredAt === null)
      stopped = `${req.vm} did not answer the probe within 180 s of the restart on ${to}`;
  } catch (e) {
    stopped = fenced
      ? `restart of ${req.vm} on ${to} failed: ${(e as Error).message}`
      : `the fence of ${from} could not be audited (${(e as Error).message}): nothing was fenced`;
  } finally {
    if (fenced) {
      await d.fencer.powerOn(from).catch((e: Error) => {
        stopped ??= `powering ${from} on again failed: ${e.message}`;
      });
      const left = await removeStale(d, clock, from, req.vm);
      if (left) stopped ??= left;
    }
  }
  if (answeredAt === null) return { move: null, stopped };
  await clock.sleep(1_500);
  // From the fence on: the VM answered up to it, so any outage in the window is the fence's.
  const w = (await d.probes.windows(req.vm, t0, answeredAt + 1_500).catch(() => []))[0];
  // The probe's own end of the outage is the recovery time when it has one.
  const end = typeof w?.outageEndMs === 'number' && w.outageEndMs > t0 ? w.outageEndMs : answeredAt;
  answeredAt = Math.max(answeredAt, end);
  return {
    move: {
      index: 1,
      vm: req.vm,
      mechanism,
      from,
      to,
      startedMs: t0,
      endedMs: answeredAt,
      totalMs: answeredAt - t0,
      libvirtDowntimeMs: null,
      probe: figures(w),
      sessionSurvived: null,
    },
    stopped,
  };
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
