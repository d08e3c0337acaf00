import type { ClusterSnapshot } from '../model.ts';

/**
 * The rule a restart elsewhere keeps: a VM is started on another host only once its old host
 * is known not to run it. Pure. The old host must be `fenced` (powered off by a confirmed
 * fence after its last answer), or `up` and seen not to run it (VM-level HA relocating a VM
 * whose QEMU died there: an up host lists what it runs); every other host that might hold the VM must be up and seen
 * not to run it; the target must be up and not in maintenance. The failover planner
 * (core/ha/restart-plan.ts) decides restarts; `submit` and the executor check them again with
 * this on a fresh snapshot.
 */

const ACTIVE = new Set(['running', 'paused', 'blocked', 'pmsuspended']);

export interface RestartAction {
  vm: string;
  from: string;
  to: string;
}

/** Why `vm` must not be restarted from `from` on `to` now (empty: it may). */
export function restartRefusals(snap: ClusterSnapshot, a: RestartAction): string[] {
  const out: string[] = [];
  const from = snap.hosts.get(a.from);
  const to = snap.hosts.get(a.to);
  if (!from) out.push(`no host named "${a.from}"`);
  else if (from.health !== 'fenced' && from.health !== 'up')
    out.push(`host ${a.from} is ${from.health}, not fenced: it might still run ${a.vm}`);
  if (!to) out.push(`no host named "${a.to}"`);
  else {
    if (to.health !== 'up') out.push(`target host ${a.to} is ${to.health}`);
    if (to.maintenance) out.push(`target host ${a.to} is in maintenance`);
  }
  if (a.from === a.to) out.push(`${a.vm} cannot restart on the host it was lost with`);
  const vm = snap.vms.get(a.vm);
  if (vm && ACTIVE.has(vm.state)) out.push(`VM "${a.vm}" is already ${vm.state} on ${vm.host}`);
  const conflict = snap.conflicts?.find((c) => c.vm === a.vm);
  if (conflict) out.push(`VM "${a.vm}" is active on ${conflict.copies.map((c) => c.host).join(' and ')}`);
  for (const h of [...snap.hosts.values()].sort((x, y) => x.name.localeCompare(y.name))) {
    if (h.name === a.from || h.health === 'up' || h.health === 'fenced') continue;
    if (h.health === 'unknown')
      out.push(`host ${h.name} is unknown (not observed yet): it might run ${a.vm}`);
    else if (h.lastKnownVms?.includes(a.vm))
      out.push(`host ${h.name} is ${h.health} and last listed ${a.vm}: it might still run it there`);
  }
  return out;
}
