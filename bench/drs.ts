// bench:drs — the DRS planner on a synthetic cluster of 1,000 hosts x 20,000 VMs (one pass,
// some hosts hot), and each PlanetLab day in ../shared/traces/planetlab replayed on a cluster
// sized to ~60 % mean CPU: keizoku beside greedy and no DRS. Last stdout line: one JSON object.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import {
  type CpuSample,
  contentionFloor,
  hostsFor,
  planDrs,
  rng,
  type SimCluster,
  simulate,
} from '../src/core/drs/index.ts';
import type { ClusterSnapshot, HostSnapshot, VmSnapshot } from '../src/core/model.ts';
import { readPlanetLab } from '../src/drs/traces.ts';

const HOSTS = Number(process.env.BENCH_HOSTS ?? 1000);
const VMS = Number(process.env.BENCH_VMS ?? 20_000);
const TRACES = process.env.BENCH_TRACES ?? join(import.meta.dirname, '../../shared/traces/planetlab');

function decisionBench() {
  const r = rng(1);
  const now = 1_000_000;
  const hosts = new Map<string, HostSnapshot>();
  const vms = new Map<string, VmSnapshot>();
  const history = new Map<string, CpuSample[]>();
  for (let i = 0; i < HOSTS; i++)
    hosts.set(`h${i}`, {
      name: `h${i}`,
      site: `dc${i % 4}`,
      health: 'up',
      cpus: 32,
      memoryKiB: 256 * 1024 * 1024,
      cpuUtilisation: null,
      memoryUsedKiB: null,
      maintenance: i % 100 === 0,
      observedAt: now,
      vms: [],
    });
  for (let i = 0; i < VMS; i++) {
    const host = `h${Math.floor(r() * HOSTS)}`;
    // One host in ten runs hot: its VMs burst.
    const hot = Number(host.slice(1)) % 10 === 3;
    const base = r() * (hot ? 3.5 : 1.5);
    vms.set(`v${i}`, {
      name: `v${i}`,
      uuid: `v${i}`,
      host,
      state: 'running',
      vcpus: 4,
      memoryKiB: (1 + Math.floor(r() * 8)) * 1024 * 1024,
      cpuUsage: base,
      memoryUsedKiB: null,
    });
    history.set(`v${i}`, [
      { at: now - 240_000, cpu: base * 0.8 },
      { at: now - 120_000, cpu: base },
      { at: now - 5_000, cpu: base },
    ]);
  }
  const snap: ClusterSnapshot = { takenAt: now, sites: ['dc0', 'dc1', 'dc2', 'dc3'], hosts, vms };
  const input = {
    snap,
    now,
    seed: 1,
    history,
    recentMoves: [],
    placement: {
      rulesOf: (n: string) => ({
        affinityGroup: null,
        antiAffinityGroup: n.endsWith('7') ? `g${n.length}` : null,
      }),
      cpuOvercommit: 4,
      memoryFraction: 0.9,
    },
    drsAllowed: () => true,
    decision: { id: 'dec-bench', ref: 'bench', requestedBy: { id: 'controller', name: 'controller' } },
  };
  planDrs(input);
  const times: number[] = [];
  let moves = 0;
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    moves = planDrs(input).moves.length;
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return {
    decision_ms: Number(times[times.length - 1]!.toFixed(1)),
    decision_median_ms: Number(times[2]!.toFixed(1)),
    decision_moves: moves,
    rss_mib: Math.round(process.memoryUsage().rss / 1024 / 1024),
  };
}

function planetLab() {
  if (!existsSync(TRACES)) return { planetlab: { skipped: `no traces at ${TRACES} (../shared absent)` } };
  const days: Record<string, unknown> = {};
  const goals: Record<string, boolean> = {};
  for (const day of readdirSync(TRACES).sort()) {
    const dir = join(TRACES, day);
    if (!statSync(dir).isDirectory()) continue;
    const trace = readPlanetLab(dir);
    const base: Omit<SimCluster, 'hosts'> = {
      hostCpus: 8,
      hostMemoryMiB: 256 * 1024,
      vmVcpus: 1,
      vmMemoryMiB: [512, 1024, 2048, 4096],
      seed: 1,
      aggressiveness: 3,
      bandwidthMiBps: 1024,
      dirtyMiBpsPerVcpu: 50,
    };
    const cluster = { ...base, hosts: hostsFor(trace, 1, base.hostCpus, 0.6) };
    const runs = (['keizoku', 'greedy', 'none'] as const).map((s) => simulate(trace, cluster, s));
    const [k, g, n] = runs.map(({ moves: _m, hostContentionMinutes: _h, ...r }) => r);
    const perVmDay = k!.migrations / trace.vms.length;
    // Whether any planner could meet the contention goals within half greedy's migrations.
    const floor = contentionFloor(runs[2]!, g!.migrations / 2);
    days[day] = {
      vms: trace.vms.length,
      hosts: cluster.hosts,
      keizoku: k,
      greedy: g,
      none: n,
      keizoku_migrations_per_vm_day: Number(perVmDay.toFixed(3)),
      contention_floor_at_half_greedy_migrations: floor,
      goals_reachable: floor <= Math.min(g!.vm_contention_minutes, 0.2 * n!.vm_contention_minutes),
    };
    goals[day] =
      k!.vm_contention_minutes <= g!.vm_contention_minutes &&
      k!.vm_contention_minutes <= 0.2 * n!.vm_contention_minutes &&
      k!.migrations <= g!.migrations / 2 &&
      perVmDay <= 0.5;
  }
  return { planetlab: days, planetlab_goals_met: goals };
}

const d = decisionBench();
const p = planetLab();
console.log(JSON.stringify({ hosts: HOSTS, vms: VMS, ...d, ...p }));
