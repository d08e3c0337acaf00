import type { HostSnapshot, VmSnapshot } from '../model.ts';
import type { Pass } from './context.ts';

// Score plugins: how good is this feasible host for this VM? Each returns 0..1, higher better,
// so that a profile's weights (summing to 1) give a total score that is 0..1 as well. Scores
// are taken "after": as if the VM were already on the host.

export interface ScorerPlugin {
  name: ScorerName;
  score(pass: Pass, vm: VmSnapshot, host: HostSnapshot): number;
}

export type ScorerName = 'memoryFree' | 'cpuFree' | 'cpuIdleMeasured' | 'vmSpread';

/** Share of the host's guest memory (memoryFraction of it) still free once the VM is there. */
const memoryFree: ScorerPlugin = {
  name: 'memoryFree',
  score: (p, vm, host) => {
    const cap = host.memoryKiB * p.ctx.memoryFraction;
    const after = (p.c.memoryKiB.get(host.name) ?? 0) + vm.memoryKiB;
    return cap > 0 ? Math.max(0, 1 - after / cap) : 0;
  },
};

/** Share of the host's vCPU allowance (CPUs x cpuOvercommit) still uncommitted once the VM is there. */
const cpuFree: ScorerPlugin = {
  name: 'cpuFree',
  score: (p, vm, host) => {
    const cap = host.cpus * p.ctx.cpuOvercommit;
    const after = (p.c.vcpus.get(host.name) ?? 0) + vm.vcpus;
    return cap > 0 ? Math.max(0, 1 - after / cap) : 0;
  },
};

/**
 * Share of the host's CPUs measured idle over the last observations. A host not measured yet
 * (one observation only) scores 0.5, the middle: it is neither rewarded for being new nor
 * punished, and the committed scorers decide between it and measured hosts.
 */
const cpuIdleMeasured: ScorerPlugin = {
  name: 'cpuIdleMeasured',
  score: (_p, _vm, host) =>
    host.cpuUtilisation === null ? 0.5 : Math.min(1, Math.max(0, 1 - host.cpuUtilisation)),
};

/**
 * Fewer VMs than the cluster's mean is better: 1 on an empty host, 0.5 at the mean, 1/3 at
 * twice the mean. Counts VMs, not size, so that one host failure takes fewer VMs down with it
 * (the memory scorer alone piles small VMs on the biggest host).
 */
const vmSpread: ScorerPlugin = {
  name: 'vmSpread',
  score: (p, _vm, host) => {
    const mean = p.meanVmsPerHost();
    const n = p.c.vms.get(host.name)?.size ?? 0;
    return mean > 0 ? 1 / (1 + n / mean) : 1;
  },
};

export const SCORERS: Readonly<Record<ScorerName, ScorerPlugin>> = {
  memoryFree,
  cpuFree,
  cpuIdleMeasured,
  vmSpread,
};
