import type { ScorerName } from './scorers.ts';

// Profiles: how much each scorer counts, per kind of decision (as kube-scheduler profiles). The
// filters are the same for all; only the ranking of feasible hosts differs. Weights sum to 1.

export type ProfileName = 'migrate' | 'evacuate' | 'drs' | 'failover';

export type Weights = readonly (readonly [ScorerName, number])[];

export const PROFILES: Readonly<Record<ProfileName, Weights>> = {
  /**
   * One VM moved by an operator or the API. Memory counts most: it is the resource that cannot
   * be overcommitted, and a host short of it fails the next move. Committed vCPUs next, as the
   * allowance the VM will be held to; measured idle CPU last, since it is one sample of a
   * load that changes.
   */
  migrate: [
    ['memoryFree', 0.5],
    ['cpuFree', 0.3],
    ['cpuIdleMeasured', 0.2],
  ],
  /**
   * Emptying a host for maintenance: many VMs from one host, planned one after another. As
   * migrate, but part of the measured-CPU weight goes to spreading: the measurement predates
   * every move of the plan, while the VM count follows each planned move.
   */
  evacuate: [
    ['memoryFree', 0.5],
    ['cpuFree', 0.3],
    ['cpuIdleMeasured', 0.1],
    ['vmSpread', 0.1],
  ],
  /**
   * Rebalancing a host that is measured busy: the destination must be measurably idle, or the
   * next pass moves the VM again. Memory still counts, so that a move does not trade CPU
   * contention for memory pressure.
   */
  drs: [
    ['cpuIdleMeasured', 0.5],
    ['memoryFree', 0.3],
    ['cpuFree', 0.2],
  ],
  /**
   * Restarting the VMs of a lost host: a start fails for want of memory, not CPU, and spreading
   * them keeps the next failure from taking them all again. Measured load is from before the
   * failure and restarts are bursty, so it does not count.
   */
  failover: [
    ['memoryFree', 0.6],
    ['vmSpread', 0.3],
    ['cpuFree', 0.1],
  ],
};
