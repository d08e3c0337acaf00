import type { ClusterSnapshot } from '../model.ts';

// Demand, contention, imbalance and bursts: what DRS measures before it plans anything. Pure.

/** One CPU sample of a VM: vCPUs' worth of demand (1.0 = one vCPU busy) at a time. */
export interface CpuSample {
  at: number;
  cpu: number;
}

export interface Windows {
  /** The short window (a spike shows here first), ms. */
  shortMs: number;
  /** The long window (a steady climb), ms. */
  longMs: number;
}

export interface VmDemand {
  vm: string;
  host: string;
  vcpus: number;
  /** Mean demand over each window, vCPUs (never above the VM's vCPUs). */
  short: number;
  long: number;
  /** What the planner counts: the larger of the two, so a burst is seen within the short window. */
  planned: number;
  /** Short well above long: a spike rather than a steady climb. */
  burst: boolean;
}

export interface HostDemand {
  host: string;
  cpus: number;
  /** Sum of its VMs' short-window and long-window demand, vCPUs. */
  short: number;
  long: number;
  /**
   * The larger of the two sums, vCPUs: a spike shows in the short one, a steady climb in the
   * long one. Not the sum of each VM's larger window: of many VMs that each peak at another
   * moment, that adds up peaks that never come together.
   */
  demand: number;
  /** demand / cpus. */
  utilisation: number;
  /** Demand above the host's CPUs: what its VMs asked for and did not get, vCPUs. */
  contention: number;
  /** One of its VMs bursts, or the host's short-window demand is well above its long one. */
  burst: boolean;
}

/** A burst: short-window demand at least this many times the long one ... */
const BURST_RATIO = 1.5;
/** ... and at least this many vCPUs above it (an idle VM going from 1 % to 3 % is no burst). */
const BURST_MIN_VCPUS = 0.25;

const isBurst = (short: number, long: number) =>
  short >= long * BURST_RATIO && short - long >= BURST_MIN_VCPUS;

function windowMean(samples: readonly CpuSample[], now: number, ms: number): number | null {
  let sum = 0;
  let n = 0;
  // Samples are in time order; walk back from the newest.
  for (let i = samples.length - 1; i >= 0; i--) {
    const s = samples[i]!;
    if (s.at > now) continue;
    if (s.at <= now - ms && n > 0) break;
    sum += s.cpu;
    n++;
    if (s.at <= now - ms) break;
  }
  return n > 0 ? sum / n : null;
}

/**
 * Per-VM demand from its samples (falling back to the snapshot's last cpuUsage when a VM has
 * none), for the active VMs of the snapshot.
 */
export function vmDemands(
  snap: ClusterSnapshot,
  history: ReadonlyMap<string, readonly CpuSample[]>,
  now: number,
  w: Windows,
): Map<string, VmDemand> {
  const out = new Map<string, VmDemand>();
  for (const vm of snap.vms.values()) {
    if (vm.state !== 'running' && vm.state !== 'paused' && vm.state !== 'blocked') continue;
    const samples = history.get(vm.name) ?? [];
    const last = vm.cpuUsage ?? 0;
    const cap = (x: number) => Math.min(vm.vcpus, Math.max(0, x));
    const short = cap(windowMean(samples, now, w.shortMs) ?? last);
    const long = cap(windowMean(samples, now, w.longMs) ?? last);
    out.set(vm.name, {
      vm: vm.name,
      host: vm.host,
      vcpus: vm.vcpus,
      short,
      long,
      planned: Math.max(short, long),
      burst: isBurst(short, long),
    });
  }
  return out;
}

/** Per-host demand and contention from the VMs' demand (hosts without VMs included). */
export function hostDemands(
  snap: ClusterSnapshot,
  vms: ReadonlyMap<string, VmDemand>,
): Map<string, HostDemand> {
  const out = new Map<string, HostDemand>();
  for (const h of snap.hosts.values())
    out.set(h.name, {
      host: h.name,
      cpus: h.cpus,
      short: 0,
      long: 0,
      demand: 0,
      utilisation: 0,
      contention: 0,
      burst: false,
    });
  for (const d of vms.values()) {
    const h = out.get(d.host);
    if (!h) continue;
    h.short += d.short;
    h.long += d.long;
    h.burst ||= d.burst;
  }
  for (const h of out.values()) {
    h.demand = Math.max(h.short, h.long);
    h.utilisation = h.cpus > 0 ? h.demand / h.cpus : 0;
    h.contention = Math.max(0, h.demand - h.cpus);
    h.burst ||= isBurst(h.short, h.long);
  }
  return out;
}

/**
 * What a VM asked for and did not get on a host whose demand exceeds its CPUs: the host's CPUs
 * are shared in proportion to demand (as the kernel's fair scheduler does for equal weights).
 */
export function vmContention(d: VmDemand, h: HostDemand): number {
  if (h.demand <= h.cpus || h.demand <= 0) return 0;
  return d.planned - (d.planned * h.cpus) / h.demand;
}

/**
 * Cluster imbalance: the standard deviation of host utilisation (demand / CPUs) over the hosts
 * that can run VMs, as vSphere DRS measures it. 0 is perfectly even.
 */
export function imbalance(hosts: Iterable<{ utilisation: number }>): number {
  let n = 0;
  let sum = 0;
  let sq = 0;
  for (const h of hosts) {
    n++;
    sum += h.utilisation;
    sq += h.utilisation * h.utilisation;
  }
  if (n === 0) return 0;
  const mean = sum / n;
  return Math.sqrt(Math.max(0, sq / n - mean * mean));
}
