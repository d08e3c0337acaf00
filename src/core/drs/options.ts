import type { Windows } from './demand.ts';

// Aggressiveness 1-5 and what follows from it. Level 1 acts only on real contention and takes
// only moves that clearly pay; level 5 also evens out load before anything is short.

export type Aggressiveness = 1 | 2 | 3 | 4 | 5;

export interface DrsOptions {
  aggressiveness: Aggressiveness;
  windows: Windows;
  /** Utilisation (demand / CPUs) above which a host is relieved. */
  targetUtilisation: number;
  /** The least gain (vCPUs of contention removed, less the move's cost) a move must bring. */
  minGainVcpus: number;
  /** How much imbalance counts beside contention (0: not at all). */
  imbalanceWeight: number;
  /** A VM moves at most once in this time. */
  minMoveIntervalMs: number;
  /** A move back to a host the VM left within this time ... */
  reverseWindowMs: number;
  /** ... needs this many times the usual gain. */
  reverseGainFactor: number;
  /** Moves out of, and into, one host per pass. */
  maxMovesPerHost: number;
  /** Moves per pass for the whole cluster. */
  maxMovesPerPass: number;
  /** Migration bandwidth, MiB/s (memory to copy / bandwidth = copy time). */
  bandwidthMiBps: number;
  /** A move's cost in vCPUs per second of copying (the source spends CPU and network on it). */
  costVcpusPerCopySecond: number;
  /** Each move of the VM within the last day adds this to a new move's cost, vCPUs. */
  costVcpusPerRecentMove: number;
  /** Candidate VMs per hot host, and destination hosts per candidate, judged per round. */
  vmsPerHost: number;
  destinationsPerVm: number;
}

const LEVELS: Record<
  Aggressiveness,
  Pick<DrsOptions, 'targetUtilisation' | 'minGainVcpus' | 'imbalanceWeight' | 'maxMovesPerHost'>
> = {
  1: { targetUtilisation: 1.0, minGainVcpus: 0.5, imbalanceWeight: 0, maxMovesPerHost: 1 },
  2: { targetUtilisation: 0.95, minGainVcpus: 0.35, imbalanceWeight: 0, maxMovesPerHost: 1 },
  3: { targetUtilisation: 0.85, minGainVcpus: 0.25, imbalanceWeight: 0, maxMovesPerHost: 1 },
  4: { targetUtilisation: 0.85, minGainVcpus: 0.15, imbalanceWeight: 0.5, maxMovesPerHost: 2 },
  5: { targetUtilisation: 0.8, minGainVcpus: 0.1, imbalanceWeight: 1, maxMovesPerHost: 2 },
};

export function drsOptions(o: Partial<DrsOptions> = {}, hosts = 0): DrsOptions {
  const aggressiveness = o.aggressiveness ?? 3;
  if (!Number.isInteger(aggressiveness) || aggressiveness < 1 || aggressiveness > 5)
    throw new RangeError(`aggressiveness must be 1-5, not ${aggressiveness}`);
  return {
    aggressiveness,
    windows: { shortMs: 10_000, longMs: 300_000 },
    ...LEVELS[aggressiveness],
    minMoveIntervalMs: 30 * 60_000,
    reverseWindowMs: 2 * 3600_000,
    reverseGainFactor: 4,
    maxMovesPerPass: Math.max(2, Math.ceil(hosts / 8)),
    bandwidthMiBps: 1024,
    costVcpusPerCopySecond: 0.02,
    costVcpusPerRecentMove: 0.25,
    vmsPerHost: 6,
    destinationsPerVm: 8,
    ...o,
  };
}
