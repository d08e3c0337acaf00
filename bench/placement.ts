// bench:placement — placement on a synthetic cluster of 1,000 hosts x 20,000 VMs (seeded):
// rankHosts for one VM over every host (many samples on one snapshot, as within one pass; one
// sample in 25 is an affinity-group member), its first call on a fresh snapshot (which builds the
// index), and planEvacuation of a host with 100 VMs. Placement rules come from `vms:` entries
// through assignmentFor, as keizokud resolves them. Prints one JSON object on the last line.
import { assignmentFor } from '../src/config/match.ts';
import type { VmAssignment } from '../src/config/schema.ts';
import type { ClusterSnapshot, HostHealth, HostSnapshot, VmSnapshot } from '../src/core/model.ts';
import { planEvacuation, rankHosts } from '../src/core/placement/index.ts';

const HOSTS = Number(process.env.BENCH_HOSTS ?? 1000);
const VMS = Number(process.env.BENCH_VMS ?? 20_000);
const SAMPLES = Number(process.env.BENCH_SAMPLES ?? 500);
const EVACUATIONS = Number(process.env.BENCH_EVACUATIONS ?? 10);
const SITES = 4;
const GiB = 1024 * 1024;

/** mulberry32: small, seeded, good enough to spread a synthetic cluster. */
function rng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * 10 anti-affinity groups (`web0-*` .. `web9-*`, 100 VMs each, spread), 5 affinity groups of 4
 * VMs on one host (`batch0-*` ..), the rest matched by a tier-only entry or by none, so that
 * resolving a VM's rules walks every entry as it does in a real config.
 */
function synthetic(seed: number) {
  const r = rng(seed);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(r() * xs.length)]!;
  const hosts: HostSnapshot[] = [];
  for (let i = 0; i < HOSTS; i++) {
    const health: HostHealth = r() < 0.02 ? pick(['suspect', 'unreachable', 'down'] as const) : 'up';
    hosts.push({
      name: `h${i}`,
      site: `dc${i % SITES}`,
      health: i === 0 ? 'up' : health,
      cpus: pick([32, 48, 64]),
      memoryKiB: pick([256, 384, 512]) * GiB,
      cpuUtilisation: r() < 0.1 ? null : r() * 0.9,
      memoryUsedKiB: null,
      maintenance: i !== 0 && r() < 0.01,
      observedAt: 0,
      vms: [],
    });
  }
  const assignments: VmAssignment[] = [];
  for (let g = 0; g < 10; g++)
    assignments.push({
      match: { name: `web${g}-*` },
      tier: 'frontend',
      haPriority: 0,
      antiAffinityGroup: `web${g}`,
    });
  for (let g = 0; g < 5; g++)
    assignments.push({
      match: { name: `batch${g}-*` },
      tier: 'low',
      haPriority: 0,
      affinityGroup: `batch${g}`,
    });
  assignments.push({ match: { name: 'db-*' }, tier: 'high', haPriority: 900 });
  assignments.push({ match: { name: 'app-??-*' }, tier: 'low', haPriority: 100 });

  const vms: VmSnapshot[] = [];
  const add = (name: string, host: string) =>
    vms.push({
      name,
      uuid: name,
      host,
      state: r() < 0.05 ? 'shutoff' : 'running',
      vcpus: pick([1, 2, 2, 4, 8]),
      memoryKiB: pick([1, 2, 4, 8, 16]) * GiB,
      cpuUsage: null,
      memoryUsedKiB: null,
    });
  // The host the bench evacuates: 100 VMs, among them anti-affinity members and one affinity group.
  for (let i = 0; i < 4; i++) add(`batch0-${i}`, 'h0');
  for (let i = 0; i < 10; i++) add(`web${i}-h0`, 'h0');
  for (let i = 0; i < 86; i++) add(`vm-h0-${i}`, 'h0');
  for (let g = 1; g < 5; g++) {
    const h = `h${1 + Math.floor(r() * (HOSTS - 1))}`;
    for (let i = 0; i < 4; i++) add(`batch${g}-${i}`, h);
  }
  for (let g = 0; g < 10; g++) for (let i = 0; i < 100; i++) add(`web${g}-${i}`, pick(hosts.slice(1)).name);
  while (vms.length < VMS) {
    const n = vms.length;
    const prefix = n % 7 === 0 ? 'db' : n % 3 === 0 ? `app-${String(n % 100).padStart(2, '0')}` : 'vm';
    add(`${prefix}-${n}`, pick(hosts.slice(1)).name);
  }
  const snap: ClusterSnapshot = {
    takenAt: 0,
    sites: Array.from({ length: SITES }, (_, i) => `dc${i}`),
    hosts: new Map(hosts.map((h) => [h.name, h])),
    vms: new Map(vms.map((v) => [v.name, v])),
  };
  const ctx = {
    rulesOf: (vm: string) => {
      const a = assignmentFor(assignments, { name: vm });
      return { affinityGroup: a?.affinityGroup ?? null, antiAffinityGroup: a?.antiAffinityGroup ?? null };
    },
    haPriorityOf: (vm: string) => assignmentFor(assignments, { name: vm })?.haPriority ?? 0,
    cpuOvercommit: 4,
    memoryFraction: 0.9,
  };
  const grouped = vms.filter((v) => v.name.startsWith('batch'));
  // One sample in 25 is a VM of an affinity group (the costliest filter), so p99 covers them.
  let n = 0;
  return { snap, ctx, sample: () => (++n % 25 === 0 ? pick(grouped) : pick(vms)) };
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
};
const ms = (x: number | undefined) => (x === undefined ? null : Number(x.toFixed(3)));
const time = <T>(f: () => T): [number, T] => {
  const t = performance.now();
  const out = f();
  return [performance.now() - t, out];
};

function main() {
  const { snap, ctx, sample } = synthetic(42);
  const [coldMs] = time(() => rankHosts(snap, sample(), ctx));
  const rank: number[] = [];
  const rankAffinity: number[] = [];
  for (let i = 0; i < SAMPLES; i++) {
    const vm = sample();
    const [t] = time(() => rankHosts(snap, vm, ctx));
    rank.push(t);
    if (ctx.rulesOf(vm.name).affinityGroup) rankAffinity.push(t);
  }
  const evac: number[] = [];
  let plan: ReturnType<typeof planEvacuation> | undefined;
  for (let i = 0; i < EVACUATIONS; i++) {
    const [t, p] = time(() => planEvacuation(snap, 'h0', ctx));
    evac.push(t);
    plan = p;
  }
  const result = {
    hosts: HOSTS,
    vms: VMS,
    samples: SAMPLES,
    placement_p50_ms: ms(pct(rank, 50)),
    placement_p99_ms: ms(pct(rank, 99)),
    placement_max_ms: ms(rank.length ? Math.max(...rank) : undefined),
    placement_affinity_samples: rankAffinity.length,
    placement_cold_ms: ms(coldMs),
    evacuation_plan_100_ms: ms(pct(evac, 50)),
    evacuation_plan_100_max_ms: ms(evac.length ? Math.max(...evac) : undefined),
    evacuation_ok: plan?.ok ?? false,
    evacuation_moves: plan?.moves.length ?? 0,
  };
  console.log(JSON.stringify(result));
}

main();
