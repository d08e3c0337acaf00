import type { Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { CpuRaise } from '../core/limits.ts';
import type { Action } from '../core/plan.ts';
import type { LibvirtClient } from '../libvirt/client.ts';
import {
  type ReplicaExports,
  releaseReplicas,
  replicaDomainXml,
  startMirror,
} from '../replication/mirror.ts';
import type { AuditLog } from '../store/audit.ts';
import { redisKeys } from '../store/keys.ts';
import type { VmLocks } from './vm-lock.ts';

/**
 * The quick libvirt actions on one VM (start, shutdown, destroy, define, undefine), run by a
 * job under the VM's lock. The executor checks the action again against fresh state right
 * before acting (the decision may be seconds old), then acts; libvirt's own refusal is a
 * refusal in its words.
 */

export type PowerAction = Extract<
  Action,
  {
    kind:
      | 'start'
      | 'shutdown'
      | 'destroy'
      | 'define'
      | 'undefine'
      | 'restart-elsewhere'
      | 'raise-cpu-cap'
      | 'start-mirror'
      | 'restart-from-replica';
  }
>;
export const POWER_KINDS: readonly PowerAction['kind'][] = [
  'start',
  'shutdown',
  'destroy',
  'define',
  'undefine',
  'restart-elsewhere',
  'raise-cpu-cap',
  'start-mirror',
  'restart-from-replica',
];

/** The host a power action acts on (a restart elsewhere acts on its target). */
export const powerHost = (a: PowerAction): string =>
  a.kind === 'restart-elsewhere' || a.kind === 'restart-from-replica' ? a.to : a.host;

/** How long a restart waits for libvirt to report the VM running after its start. */
const RESTART_VERIFY_MS = 15_000;

export interface PowerRequest {
  action: PowerAction;
  requestedBy: { id: string; name: string };
  /** api, schedule:NAME, … */
  reason: string;
  decisionId: string | null;
}

export interface ActionResult {
  outcome: 'succeeded' | 'failed' | 'refused' | 'cancelled';
  reason: string | null;
  vm: string;
  host: string;
  /** When the run began (after the VM's lock was taken; absent in older results). */
  startedAt?: number;
  finishedAt: number;
}

export interface PowerPorts {
  clientFor(host: string): LibvirtClient | null;
  /** Why the action must not run now (empty: it may): the planner again, on a fresh snapshot. */
  refusalsNow(action: PowerAction): Promise<string[]>;
  /** The last known definition of the VM (for define). */
  domainXmlOf(vm: string): Promise<string | null>;
  /** Records a raised CPU cap until it lapses, for the limits loop to keep (raise-cpu-cap). */
  recordRaise?(vm: string, raise: CpuRaise): Promise<void>;
  /** The NBD exports of replicas on recovery hosts (start-mirror, restart-from-replica). */
  replicaExports?: ReplicaExports;
  /** How long a start-mirror waits for its copy to be ready (default 10 min). */
  mirrorReadyTimeoutMs?: number;
}

export async function runPowerAction(
  req: PowerRequest,
  ports: PowerPorts,
  cancelled: () => Promise<boolean>,
): Promise<ActionResult> {
  const a = req.action;
  const startedAt = Date.now();
  const done = (outcome: ActionResult['outcome'], reason: string | null): ActionResult => ({
    outcome,
    reason,
    vm: a.vm,
    host: powerHost(a),
    startedAt,
    finishedAt: Date.now(),
  });
  if (await cancelled()) return done('cancelled', 'cancelled before it started');
  const refusals = await ports.refusalsNow(a);
  if (refusals.length > 0) return done('refused', refusals.join('; '));
  const c = ports.clientFor(powerHost(a));
  if (!c) return done('refused', `host ${powerHost(a)} is not connected`);
  try {
    if (a.kind === 'restart-elsewhere') return done(...(await restartOn(c, a, ports)));
    if (a.kind === 'start-mirror' || a.kind === 'restart-from-replica') {
      const exports = ports.replicaExports;
      if (!exports) return done('refused', 'no replication exports are configured');
      if (a.kind === 'start-mirror')
        return done(
          ...(await startMirror(c, a.vm, a.target, exports, ports.mirrorReadyTimeoutMs ?? 600_000)),
        );
      return done(...(await restartFromReplica(c, a, ports, exports)));
    }
    if (a.kind === 'define') {
      const xml = await ports.domainXmlOf(a.vm);
      if (!xml) return done('refused', `no stored definition of ${a.vm}`);
      await c.defineXml(xml);
      return done('succeeded', null);
    }
    const dom = await c.lookupByName(a.vm);
    if (a.kind === 'raise-cpu-cap') {
      if (!ports.recordRaise) return done('refused', 'no store for raised CPU caps');
      // Recorded first: the limits loop must never see the raised cap without the raise.
      await ports.recordRaise(a.vm, { quotaPercent: a.quotaPercent, until: Date.now() + a.holdMs });
      await c.setSchedulerParameters(dom, {
        vcpu_period: a.periodUs,
        vcpu_quota: Math.round((a.periodUs * a.quotaPercent) / 100),
      });
      return done('succeeded', null);
    }
    if (a.kind === 'start') await c.start(dom);
    else if (a.kind === 'shutdown') await c.shutdown(dom);
    else if (a.kind === 'destroy') await c.destroy(dom);
    else {
      const st = await c.getState(dom);
      if (st.state !== 'shutoff') return done('refused', `${a.vm} is ${st.state} on ${a.host}, not shut off`);
      await c.undefine(dom);
    }
    return done('succeeded', null);
  } catch (e) {
    const err = e as Error & { isOperationInvalid?: () => boolean };
    const what = `${a.kind} ${a.vm} on ${powerHost(a)}: ${err.message}`;
    if (typeof err.isOperationInvalid === 'function' && err.isOperationInvalid())
      return done('refused', what);
    return done('failed', what);
  }
}

/**
 * A restart elsewhere: define the VM on the target from its stored definition (unless the
 * target has it already), start it, and wait until libvirt reports it running. The disk lock
 * manager (virtlockd) refuses the start when another live host still holds the VM's disks.
 * When the old host is connected (VM-level HA relocating a VM that died on an up host), its
 * shut-off definition is removed afterwards, so the VM is defined in one place; a fenced old
 * host keeps its copy until it is back (the drill and operators remove it).
 */
async function restartOn(
  c: LibvirtClient,
  a: Extract<PowerAction, { kind: 'restart-elsewhere' }>,
  ports: PowerPorts,
): Promise<[ActionResult['outcome'], string | null]> {
  let dom = await c.lookupByName(a.vm).catch(() => null);
  if (dom) {
    const st = await c.getState(dom);
    if (st.state !== 'shutoff') return ['refused', `${a.vm} is already ${st.state} on ${a.to}`];
  } else {
    const xml = await ports.domainXmlOf(a.vm);
    if (!xml) return ['refused', `no stored definition of ${a.vm}`];
    dom = await c.defineXml(xml);
  }
  await c.start(dom);
  const deadline = Date.now() + RESTART_VERIFY_MS;
  for (;;) {
    const st = await c.getState(dom);
    if (st.state === 'running') return ['succeeded', await forgetOn(ports.clientFor(a.from), a.vm)];
    if (Date.now() > deadline)
      return ['failed', `${a.vm} started on ${a.to} but is ${st.state} after ${RESTART_VERIFY_MS} ms`];
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * A restart at the recovery site from the VM's replicas: their exports stopped (qemu-nbd lets
 * go of the files), the VM defined on the target with each replicated disk on its replica,
 * then started as a restart elsewhere is.
 */
async function restartFromReplica(
  c: LibvirtClient,
  a: Extract<PowerAction, { kind: 'restart-from-replica' }>,
  ports: PowerPorts,
  exports: ReplicaExports,
): Promise<[ActionResult['outcome'], string | null]> {
  const xml = await ports.domainXmlOf(a.vm);
  if (!xml) return ['refused', `no stored definition of ${a.vm}`];
  const onReplica = replicaDomainXml(xml, a.replicas);
  await releaseReplicas(exports, a.replicas);
  await c.defineXml(onReplica);
  return restartOn(c, { kind: 'restart-elsewhere', vm: a.vm, from: a.from, to: a.to }, ports);
}

/** Removes the VM's shut-off definition from a connected old host; why not, else null. */
async function forgetOn(c: LibvirtClient | null, vm: string): Promise<string | null> {
  if (!c) return null;
  try {
    const dom = await c.lookupByName(vm).catch(() => null);
    if (!dom) return null;
    const st = await c.getState(dom);
    if (st.state !== 'shutoff') return `the old host's copy is ${st.state}: its definition is kept`;
    await c.undefine(dom);
    return null;
  } catch (e) {
    return `the old host's definition was not removed: ${(e as Error).message}`;
  }
}

export const POWER_QUEUE = 'power';

export interface PowerJobDeps {
  redis: Redis;
  prefix: string;
  ports: PowerPorts;
  audit: AuditLog;
  locks: VmLocks;
  log: { info(o: object, msg: string): void };
}

/** A power job's run under the VM's lock (claimed with a new generation, released by its owner only). */
export async function runPowerJob(d: PowerJobDeps, job: Job): Promise<ActionResult> {
  const req = job.data as PowerRequest;
  const a = req.action;
  const id = job.id!;
  const cancelKey = redisKeys(d.prefix).jobCancel(id);
  const gen = await d.locks.claim(a.vm, id, POWER_QUEUE);
  if (gen === null) {
    const holder = await d.locks.holder(a.vm);
    return {
      outcome: 'refused',
      reason: `${a.vm} is held by job ${holder?.job ?? 'another job'}`,
      vm: a.vm,
      host: powerHost(a),
      finishedAt: Date.now(),
    };
  }
  let result: ActionResult;
  let owner = false;
  try {
    result = await runPowerAction(req, d.ports, async () => (await d.redis.exists(cancelKey)) === 1);
  } finally {
    owner = await d.locks.release(a.vm, id, gen, [cancelKey]).catch(() => false);
  }
  if (owner) {
    await d.audit.record({
      actor: 'controller',
      actorName: 'controller',
      role: null,
      action: `action.${a.kind}`,
      target: a.vm,
      params: {
        job: id,
        host: powerHost(a),
        ...(a.kind === 'restart-elsewhere' ? { from: a.from } : {}),
        ...(a.kind === 'raise-cpu-cap' ? { quotaPercent: a.quotaPercent, holdMs: a.holdMs } : {}),
        reason: req.reason,
        requestedBy: req.requestedBy.name,
        decision: req.decisionId,
      },
      outcome:
        result.outcome === 'succeeded' ? 'succeeded' : result.outcome === 'failed' ? 'failed' : 'rejected',
      message: result.reason,
    });
    d.log.info(
      { job: id, vm: a.vm, host: powerHost(a), kind: a.kind, outcome: result.outcome, reason: result.reason },
      'action finished',
    );
  }
  return result;
}
