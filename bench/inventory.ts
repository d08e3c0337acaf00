// bench:inventory — full inventory resync time and controller RSS on a lab of 3 hosts with
// 6 VMs, and a ClusterSnapshot build for 1,000 hosts x 20,000 VMs made from the observations
// recorded in that lab. Prints one JSON object on the last line.
import pino from 'pino';
import { createVm, downLab, readState } from '../lab/index.ts';
import type { HostObservation } from '../src/core/model.ts';
import { buildSnapshot } from '../src/core/snapshot.ts';
import { InventoryLoop } from '../src/loops/inventory.ts';
import { createMetrics } from '../src/metrics/registry.ts';
import { upFreeLab } from './free-lab.ts';
import { median } from './stats.ts';

const RUNS = Number(process.env.BENCH_RUNS ?? 20);
const mib = (b: number) => Number((b / 1024 / 1024).toFixed(1));

/** 1,000 hosts x 20 VMs from one recorded host observation, two rounds apart for rates. */
function synthetic(recorded: HostObservation, hosts: number, vmsPerHost: number, shift: number) {
  const template = recorded.domains![0]!;
  const current = new Map<string, HostObservation>();
  const cfg = [];
  for (let h = 0; h < hosts; h++) {
    const name = `h${h}`;
    cfg.push({ name, site: `dc${h % 4}` });
    current.set(name, {
      ...recorded,
      host: name,
      observedAt: recorded.observedAt + shift,
      cpuTimes: Object.fromEntries(Object.entries(recorded.cpuTimes!).map(([k, v]) => [k, v + shift * 1e6])),
      domains: Array.from({ length: vmsPerHost }, (_, i) => ({
        ...template,
        name: `vm-${h}-${i}`,
        uuid: `00000000-0000-4000-8000-${String(h * vmsPerHost + i).padStart(12, '0')}`,
        stats: { ...template.stats, 'cpu.time': Number(template.stats['cpu.time']) + shift * 1e5 },
      })),
    });
  }
  return { cfg, current };
}

async function main() {
  const id = await upFreeLab({ hosts: 3, sites: 2 });
  try {
    const lab = readState(id)!;
    await Promise.all(
      ['i1', 'i2', 'i3', 'i4', 'i5', 'i6'].map((n, i) => createVm(id, { name: n, host: `h${(i % 3) + 1}` })),
    );
    const rssBefore = process.memoryUsage().rss;
    const inventory = new InventoryLoop({
      hosts: lab.layout.hosts.map((h) => ({ name: h.name, site: h.site, uri: h.tlsUri })),
      sites: lab.layout.sites.map((s) => s.name),
      connectOptions: () => ({
        tls: { caFile: lab.pki!.caFile, certFile: lab.pki!.clientCertFile, keyFile: lab.pki!.clientKeyFile },
      }),
      intervalMs: 3_600_000,
      metrics: createMetrics(),
      log: pino({ level: 'warn' }),
    });
    await inventory.start();
    const resyncMs: number[] = [];
    for (let r = 0; r < RUNS; r++) {
      const t = performance.now();
      await inventory.resyncAll();
      resyncMs.push(performance.now() - t);
    }
    const snap = inventory.snapshot();
    const rssLab = process.memoryUsage().rss;
    // Record one host's observation as seen, to clone into the synthetic cluster.
    const h1 = lab.layout.hosts[0]!;
    const client = inventory.clientFor(h1.name)!;
    const domains = await client.getAllDomainStats(1 | 2 | 4 | 8);
    const recorded: HostObservation = {
      host: h1.name,
      observedAt: Date.now(),
      reachable: true,
      cpus: 2,
      memoryKiB: (await client.nodeInfo()).memoryKiB,
      cpuTimes: await client.nodeCpuStats(),
      memory: await client.nodeMemoryStats(),
      domains: domains.map((d) => ({ name: d.name, uuid: d.uuid, state: 'running', stats: d.stats })),
    };
    await inventory.stop();

    const prev = synthetic(recorded, 1000, 20, 0);
    const cur = synthetic(recorded, 1000, 20, 10_000);
    const buildMs: number[] = [];
    const heapBefore = process.memoryUsage().heapUsed;
    let vms = 0;
    for (let r = 0; r < 5; r++) {
      const t = performance.now();
      const s = buildSnapshot({
        now: Date.now(),
        sites: ['dc0', 'dc1', 'dc2', 'dc3'],
        hosts: cur.cfg,
        maintenance: new Set(),
        current: cur.current,
        previous: prev.current,
      });
      buildMs.push(performance.now() - t);
      vms = s.vms.size;
    }
    console.log(
      JSON.stringify({
        bench: 'inventory',
        lab_hosts: 3,
        lab_vms: snap.vms.size,
        resync_runs: RUNS,
        lab_full_resync_median_ms: Number(median(resyncMs).toFixed(2)),
        lab_full_resync_max_ms: Number(Math.max(...resyncMs).toFixed(2)),
        controller_rss_mib: mib(rssLab),
        controller_rss_growth_mib: mib(rssLab - rssBefore),
        synthetic_hosts: 1000,
        synthetic_vms: vms,
        synthetic_snapshot_build_median_ms: Number(median(buildMs).toFixed(2)),
        synthetic_heap_after_mib: mib(process.memoryUsage().heapUsed),
        synthetic_heap_growth_mib: mib(process.memoryUsage().heapUsed - heapBefore),
      }),
    );
  } finally {
    await downLab(id);
  }
}

main().catch((e: unknown) => {
  console.error(`bench:inventory: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
});
