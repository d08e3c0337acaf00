import type { ClusterSnapshot, HostSnapshot, VmSnapshot } from '../model.ts';
import type { CpuSample } from './demand.ts';
import { imbalance } from './demand.ts';
import type { Aggressiveness } from './options.ts';
import { type MoveRecord, migrationCost, planDrs } from './planner.ts';

/**
 * `drs simulate`: a utilisation trace replayed in virtual time through the same planner
 * (keizoku), a greedy baseline and no DRS, on a cluster given by options. Pure: the trace is
 * passed in already read, and the seed decides VM sizes and the initial placement.
 */

export interface Trace {
  /** Time between two samples, ms. */
  intervalMs: number;
  /** Per VM its CPU use as a fraction 0..1 of its vCPUs at each sample, and its memory if known. */
  vms: { name: string; cpu: number[]; memoryMiB?: number }[];
}

export interface SimCluster {
  hosts: number;
  hostCpus: number;
  hostMemoryMiB: number;
  /** vCPUs per VM (the trace's percentages are of this). */
  vmVcpus: number;
  /** Memory per VM when the trace has none: one of these, by the seed. */
  vmMemoryMiB: readonly number[];
  seed: number;
  aggressiveness: Aggressiveness;
  bandwidthMiBps: number;
  /** Memory a guest dirties per vCPU it keeps busy, MiB/s. */
  dirtyMiBpsPerVcpu: number;
}

export type Strategy = 'keizoku' | 'greedy' | 'none';

export interface SimResult {
  strategy: Strategy;
  vm_contention_minutes: number;
  overload_host_time_fraction: number;
  migrations: number;
  max_moves_per_vm: number;
  gib_moved: number;
  migration_seconds: number;
  imbalance_mean: number;
  moves: (MoveRecord & { reason: string })[];
  /** Per host, its VM-minutes of contention. */
  hostContentionMinutes: Map<string, number>;
}

/**
 * The least `vm_contention_minutes` any planner can reach with at most `migrations` moves,
 * from the no-DRS run of the same trace and cluster: a host no VM leaves keeps at least its
 * VMs and their demand, so it is at least as contended as with no DRS; `migrations` moves
 * leave at most that many hosts, at best the most contended ones.
 */
export function contentionFloor(none: SimResult, migrations: number): number {
  const per = [...none.hostContentionMinutes.values()].sort((a, b) => b - a);
  return Math.round(per.slice(Math.max(0, Math.floor(migrations))).reduce((a, b) => a + b, 0));
}

/** A small seeded generator (mulberry32): the same seed gives the same cluster. */
export function rng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Hosts for a trace so that mean demand is `load` of the cluster's CPUs. */
export function hostsFor(trace: Trace, vmVcpus: number, hostCpus: number, load: number): number {
  let sum = 0;
  let n = 0;
  for (const v of trace.vms)
    for (const c of v.cpu) {
      sum += c * vmVcpus;
      n++;
    }
  const samples = trace.vms.length > 0 ? n / trace.vms.length : 1;
  return Math.max(1, Math.round(sum / samples / (hostCpus * load)));
}

export function simulate(trace: Trace, cluster: SimCluster, strategy: Strategy): SimResult {
  const r = rng(cluster.seed);
  const hostNames = Array.from({ length: cluster.hosts }, (_, i) => `host${String(i).padStart(4, '0')}`);
  const memory = new Map<string, number>();
  const where = new Map<string, string>();
  // Initial placement: the VMs in seeded order, round robin over the hosts.
  const order = trace.vms.map((v) => ({ v, k: r() })).sort((a, b) => a.k - b.k);
  order.forEach(({ v }, i) => {
    memory.set(v.name, v.memoryMiB ?? cluster.vmMemoryMiB[Math.floor(r() * cluster.vmMemoryMiB.length)]!);
    where.set(v.name, hostNames[i % hostNames.length]!);
  });
  const steps = Math.max(0, ...trace.vms.map((v) => v.cpu.length));
  const minutes = trace.intervalMs / 60_000;
  const cpuAt = (v: Trace['vms'][number], k: number) =>
    (v.cpu[Math.min(k, v.cpu.length - 1)] ?? 0) * cluster.vmVcpus;
  const history = new Map<string, CpuSample[]>(trace.vms.map((v) => [v.name, []]));
  const moves: SimResult['moves'] = [];
  const perVm = new Map<string, number>();
  let contentionMinutes = 0;
  const hostContention = new Map<string, number>(hostNames.map((h) => [h, 0]));
  let overloaded = 0;
  let imbalanceSum = 0;
  let gib = 0;
  let seconds = 0;
  const move = (vm: string, from: string, to: string, at: number, reason: string) => {
    where.set(vm, to);
    moves.push({ vm, from, to, at, reason });
    perVm.set(vm, (perVm.get(vm) ?? 0) + 1);
    gib += memory.get(vm)! / 1024;
  };
  const memLimit = cluster.hostMemoryMiB;

  for (let k = 0; k < steps; k++) {
    const now = k * trace.intervalMs;
    const demand = new Map<string, number>(hostNames.map((h) => [h, 0]));
    const vmsOn = new Map<string, string[]>(hostNames.map((h) => [h, []]));
    for (const v of trace.vms) {
      const h = where.get(v.name)!;
      demand.set(h, demand.get(h)! + cpuAt(v, k));
      vmsOn.get(h)!.push(v.name);
      history.get(v.name)!.push({ at: now, cpu: cpuAt(v, k) });
    }
    // The interval as the VMs lived it, with the placement of the previous decision.
    for (const h of hostNames) {
      const d = demand.get(h)!;
      if (d > cluster.hostCpus) {
        contentionMinutes += vmsOn.get(h)!.length * minutes;
        hostContention.set(h, hostContention.get(h)! + vmsOn.get(h)!.length * minutes);
      }
      if (d >= cluster.hostCpus) overloaded++;
    }
    imbalanceSum += imbalance(hostNames.map((h) => ({ utilisation: demand.get(h)! / cluster.hostCpus })));
    if (strategy === 'none') continue;
    const cpuOf = new Map(trace.vms.map((v) => [v.name, cpuAt(v, k)]));
    if (strategy === 'greedy') {
      const byLoad = [...hostNames].sort((a, b) => demand.get(b)! - demand.get(a)! || a.localeCompare(b));
      const hot = byLoad[0]!;
      if (demand.get(hot)! <= cluster.hostCpus) continue;
      const vm = [...vmsOn.get(hot)!].sort((a, b) => cpuOf.get(b)! - cpuOf.get(a)! || a.localeCompare(b))[0];
      if (!vm) continue;
      const used = (h: string) => vmsOn.get(h)!.reduce((s, n) => s + memory.get(n)!, 0);
      const to = [...byLoad].reverse().find((h) => h !== hot && used(h) + memory.get(vm)! <= memLimit);
      if (!to) continue;
      const cost = migrationCost(
        memory.get(vm)!,
        cpuOf.get(vm)! * cluster.dirtyMiBpsPerVcpu,
        cluster.bandwidthMiBps,
      );
      seconds += cost?.copySeconds ?? 0;
      move(vm, hot, to, now, 'busiest VM off the hottest host to the coolest');
      continue;
    }
    const hosts = new Map<string, HostSnapshot>(
      hostNames.map((h) => [
        h,
        {
          name: h,
          site: 'sim',
          health: 'up',
          cpus: cluster.hostCpus,
          memoryKiB: memLimit * 1024,
          cpuUtilisation: demand.get(h)! / cluster.hostCpus,
          memoryUsedKiB: null,
          maintenance: false,
          observedAt: now,
          vms: vmsOn.get(h)!,
        },
      ]),
    );
    const vms = new Map<string, VmSnapshot>(
      trace.vms.map((v) => [
        v.name,
        {
          name: v.name,
          uuid: v.name,
          host: where.get(v.name)!,
          state: 'running',
          vcpus: cluster.vmVcpus,
          memoryKiB: memory.get(v.name)! * 1024,
          cpuUsage: cpuOf.get(v.name)!,
          memoryUsedKiB: null,
        },
      ]),
    );
    const snap: ClusterSnapshot = { takenAt: now, sites: ['sim'], hosts, vms };
    const plan = planDrs({
      snap,
      now,
      seed: cluster.seed,
      history,
      recentMoves: moves,
      placement: {
        rulesOf: () => ({ affinityGroup: null, antiAffinityGroup: null }),
        cpuOvercommit: 64,
        memoryFraction: 1,
      },
      drsAllowed: () => true,
      dirtyRateOf: (vm) => cpuOf.get(vm)! * cluster.dirtyMiBpsPerVcpu,
      options: {
        aggressiveness: cluster.aggressiveness,
        bandwidthMiBps: cluster.bandwidthMiBps,
        // The short window is the newest sample, the long one the last half hour.
        windows: { shortMs: trace.intervalMs / 2, longMs: Math.max(trace.intervalMs, 1_800_000) },
      },
      decision: { id: `sim-${k}`, ref: 'simulate', requestedBy: { id: 'controller', name: 'controller' } },
    });
    for (const m of plan.moves) {
      seconds += m.copySeconds;
      move(m.vm, m.from, m.to, now, plan.explanations[m.vm]?.reasons[0] ?? plan.decision.reason);
    }
  }
  const hostTime = steps * cluster.hosts;
  return {
    strategy,
    vm_contention_minutes: Math.round(contentionMinutes),
    overload_host_time_fraction: hostTime > 0 ? Number((overloaded / hostTime).toFixed(4)) : 0,
    migrations: moves.length,
    max_moves_per_vm: Math.max(0, ...perVm.values()),
    gib_moved: Number(gib.toFixed(1)),
    migration_seconds: Number(seconds.toFixed(1)),
    imbalance_mean: steps > 0 ? Number((imbalanceSum / steps).toFixed(4)) : 0,
    moves,
    hostContentionMinutes: hostContention,
  };
}
