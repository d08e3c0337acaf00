// bench:admission — HA admission control (checkAdmission) on synthetic clusters of 100 hosts x
// 2,000 VMs and 500 hosts x 10,000 VMs (seeded; every VM HA, a tenth in anti-affinity groups,
// about 40 % of the memory committed), tolerating 1 and 2 host failures: each case times a start
// that is admitted, so every failure combination must be judged (median of RUNS). The
// `together` case adds keep-together pairs on every host: the quick test does not judge
// affinity, so every combination runs its restart plan (the exhaustive path, as before the
// quick test). Last stdout line: one JSON object.
import { rng } from '../src/core/drs/index.ts';
import { checkAdmission } from '../src/core/ha/admission.ts';
import type { FailoverPlacement } from '../src/core/ha/restart-plan.ts';
import type { ClusterSnapshot, HostSnapshot, VmSnapshot } from '../src/core/model.ts';

const GiB = 1024 * 1024;
const CASES = (process.env.BENCH_CASES ?? '100x2000x1,100x2000x2,500x10000x1,500x10000x2')
  .split(',')
  .map((c) => c.split('x').map(Number) as [number, number, number]);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);

function cluster(hosts: number, vms: number, seed: number, together = false) {
  const r = rng(seed);
  const hs = new Map<string, HostSnapshot>();
  for (let i = 0; i < hosts; i++)
    hs.set(`h${i}`, {
      name: `h${i}`,
      site: 'a',
      health: 'up',
      cpus: 64,
      memoryKiB: 256 * GiB,
      cpuUtilisation: null,
      memoryUsedKiB: null,
      maintenance: false,
      observedAt: 0,
      vms: [],
    });
  const vs = new Map<string, VmSnapshot>();
  for (let i = 0; i < vms; i++) {
    const host = `h${Math.floor(r() * hosts)}`;
    vs.set(`v${i}`, {
      name: `v${i}`,
      uuid: `v${i}`,
      host,
      state: 'running',
      vcpus: 2,
      // ~20 VMs of 2..8 GiB per host: about half the memory committed.
      memoryKiB: (2 + Math.floor(r() * 7)) * GiB,
      cpuUsage: null,
      memoryUsedKiB: null,
    });
    hs.get(host)!.vms.push(`v${i}`);
  }
  const snap: ClusterSnapshot = { takenAt: 0, sites: ['a'], hosts: hs, vms: vs };
  const placement: FailoverPlacement = {
    rulesOf: (vm) => {
      const n = Number(vm.slice(1));
      return {
        affinityGroup: together && n % 20 < 2 ? `k${Math.floor(n / 20)}` : null,
        antiAffinityGroup: n % 10 === 0 ? `g${n % 50}` : null,
      };
    },
    cpuOvercommit: 4,
    memoryFraction: 1,
    haPriorityOf: () => 0,
    tierRankOf: () => 0,
  };
  return { snap, placement };
}

function time(name: string, c: ReturnType<typeof cluster>, tolerated: number, runs: number) {
  const change = { vm: 'new', host: 'h1', vcpus: 2, memoryKiB: 1 * GiB };
  const ms: number[] = [];
  let refusal: ReturnType<typeof checkAdmission> = null;
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    refusal = checkAdmission(c.snap, change, c.placement, { toleratedHostFailures: tolerated });
    ms.push(performance.now() - t0);
  }
  const median = ms.sort((a, b) => a - b)[Math.floor(ms.length / 2)]!;
  console.log(`${name}: ${median.toFixed(0)} ms (median of ${runs}), ${refusal ? refusal.code : 'admitted'}`);
  return { decision_ms: Number(median.toFixed(1)), admitted: refusal === null };
}

const results: Record<string, unknown> = {};
for (const [hosts, vms, tolerated] of CASES)
  results[`hosts${hosts}_vms${vms}_tolerated${tolerated}`] = time(
    `hosts ${hosts} vms ${vms} tolerated ${tolerated}`,
    cluster(hosts, vms, hosts * 7 + vms),
    tolerated,
    RUNS,
  );
results.together_hosts100_vms2000_tolerated1 = time(
  'together: hosts 100 vms 2000 tolerated 1',
  cluster(100, 2000, 1, true),
  1,
  1,
);
console.log(JSON.stringify(results));
