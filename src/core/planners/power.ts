import type { ClusterSnapshot, VmSnapshot } from '../model.ts';
import type { Action, Decision, PlannerName } from '../plan.ts';
import { actionRefusals } from './validate.ts';

/**
 * Start, shutdown and destroy as decisions. Pure. The rule that matters is never to start a
 * VM twice: a start is refused unless every host that might hold the VM is `up` and seen
 * not to run it. A host keizokud cannot see may still run it (a shut-off copy defined
 * elsewhere then looks like the VM), so are refusals: any host not yet observed, a host that
 * is not up and last listed the VM, and a VM whose last recorded placement is on a host that
 * is not up.
 */

export type PowerKind = 'start' | 'shutdown' | 'destroy';

/** What a power decision needs besides the snapshot (ids and time come in: planners stay pure). */
export interface PowerContext {
  id: string;
  at: number;
  planner: PlannerName;
  ref: string;
  requestedBy: { id: string; name: string };
  /** The host the VM was last recorded running on (store.getPlacement), if any. */
  lastPlacement: string | null;
}

const ACTIVE = new Set(['running', 'paused', 'blocked', 'pmsuspended']);

/** Why `vm` must not be started now (empty: it may). */
export function startRefusals(snap: ClusterSnapshot, vmName: string, lastPlacement: string | null): string[] {
  const vm = snap.vms.get(vmName);
  if (!vm) return [`no VM named "${vmName}"`];
  if (ACTIVE.has(vm.state)) return [`VM "${vmName}" is already ${vm.state} on ${vm.host}`];
  const out: string[] = [];
  const conflict = snap.conflicts?.find((c) => c.vm === vmName);
  if (conflict)
    out.push(
      `VM "${vmName}" is active on ${conflict.copies.map((c) => `${c.host} (${c.state})`).join(' and ')}`,
    );
  for (const h of [...snap.hosts.values()].sort((a, b) => a.name.localeCompare(b.name))) {
    if (h.health === 'up') continue;
    if (h.name === vm.host) out.push(`host ${h.name}, where ${vmName} is defined, is ${h.health}`);
    else if (h.health === 'unknown')
      out.push(`host ${h.name} is unknown (not observed yet): it might run ${vmName}`);
    else if (h.lastKnownVms?.includes(vmName))
      out.push(`host ${h.name} is ${h.health} and last listed ${vmName}: it might still run it there`);
    else if (lastPlacement === h.name)
      out.push(`${vmName} last ran on ${h.name}, which is ${h.health}: it might still run there`);
  }
  return out;
}

function powerRefusals(snap: ClusterSnapshot, kind: PowerKind, vm: VmSnapshot): string[] {
  const host = snap.hosts.get(vm.host);
  const hostDown =
    host && host.health !== 'up' ? [`host ${vm.host} of VM "${vm.name}" is ${host.health}`] : [];
  if (kind === 'shutdown')
    return vm.state === 'running' ? hostDown : [`VM "${vm.name}" is ${vm.state}, not running`];
  return ACTIVE.has(vm.state) ? hostDown : [`VM "${vm.name}" is ${vm.state}, not running`];
}

/** A start, shutdown or destroy of `vmName` where it is defined: ok, or refused with the reasons. */
export function planPower(
  snap: ClusterSnapshot,
  kind: PowerKind,
  vmName: string,
  ctx: PowerContext,
): Decision {
  const vm = snap.vms.get(vmName);
  const reasons = !vm
    ? [`no VM named "${vmName}"`]
    : kind === 'start'
      ? startRefusals(snap, vmName, ctx.lastPlacement)
      : powerRefusals(snap, kind, vm);
  const ok = reasons.length === 0 && vm !== undefined;
  return {
    id: ctx.id,
    planner: ctx.planner,
    at: ctx.at,
    reason: vm ? `${kind} ${vmName} on ${vm.host}` : `${kind} ${vmName}`,
    ref: ctx.ref,
    requestedBy: ctx.requestedBy,
    vms: [vmName],
    candidates: {},
    actions: ok ? [{ kind, vm: vmName, host: vm.host }] : [],
    ok,
    refused: ok ? [] : [{ vm: vmName, reasons }],
  };
}

/** The executor's check right before acting: the submit checks, and for a start the never-twice rule again. */
export function recheckPower(snap: ClusterSnapshot, a: Action, lastPlacement: string | null): string[] {
  const out = actionRefusals(snap, a);
  if (a.kind === 'start') out.push(...startRefusals(snap, a.vm, lastPlacement));
  return [...new Set(out)];
}
