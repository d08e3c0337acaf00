// bench:libvirt — per-call latency of "all domains with their stats" on a lab host with 10
// VMs: this client's getAllDomainStats over one persistent connection vs spawning
// `virsh domstats` for the same data. Median of several runs in one process, and the ratio.
// Prints one JSON object on the last line.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { createVm, downLab, readState } from '../lab/index.ts';
import { connectLibvirt } from '../src/libvirt/index.ts';
import { upFreeLab } from './free-lab.ts';
import { median } from './stats.ts';

const execFileP = promisify(execFile);
const RUNS = Number(process.env.BENCH_RUNS ?? 30);
const VMS = Number(process.env.BENCH_VMS ?? 10);

async function main() {
  const id = await upFreeLab({ hosts: 1, sites: 1 });
  try {
    for (let i = 0; i < VMS; i += 5) {
      await Promise.all(
        Array.from({ length: Math.min(5, VMS - i) }, (_, k) =>
          createVm(id, { name: `bv${i + k}`, host: 'h1' }),
        ),
      );
    }
    const uri = readState(id)!.layout.hosts[0]!.uri;
    const client = await connectLibvirt(uri, { insecure: true });
    const clientMs: number[] = [];
    const virshMs: number[] = [];
    const clientListMs: number[] = [];
    const virshListMs: number[] = [];
    let clientDomains = 0;
    let virshDomains = 0;
    // Interleaved, so both see the same machine load.
    for (let r = 0; r < RUNS; r++) {
      let t = performance.now();
      const stats = await client.getAllDomainStats();
      clientMs.push(performance.now() - t);
      clientDomains = stats.length;
      t = performance.now();
      const { stdout } = await execFileP('virsh', [
        '-c',
        uri,
        'domstats',
        '--raw',
        '--state',
        '--cpu-total',
        '--balloon',
        '--vcpu',
        '--interface',
        '--block',
      ]);
      virshMs.push(performance.now() - t);
      virshDomains = stdout.split('\n').filter((l) => l.startsWith('Domain:')).length;
      // A cheap call shows the cost of the transport itself: names and states only.
      t = performance.now();
      await client.listDomainsWithState();
      clientListMs.push(performance.now() - t);
      t = performance.now();
      await execFileP('virsh', ['-c', uri, 'list', '--all']);
      virshListMs.push(performance.now() - t);
    }
    await client.close();
    const c = median(clientMs);
    const v = median(virshMs);
    console.log(
      JSON.stringify({
        bench: 'libvirt',
        vms: VMS,
        runs: RUNS,
        domains_seen_client: clientDomains,
        domains_seen_virsh: virshDomains,
        client_median_ms: Number(c.toFixed(3)),
        virsh_median_ms: Number(v.toFixed(3)),
        ratio_client_vs_virsh: Number((c / v).toFixed(4)),
        list_state_client_median_ms: Number(median(clientListMs).toFixed(3)),
        list_state_virsh_median_ms: Number(median(virshListMs).toFixed(3)),
        ratio_list_state_client_vs_virsh: Number((median(clientListMs) / median(virshListMs)).toFixed(4)),
      }),
    );
  } finally {
    await downLab(id);
  }
}

main().catch((e: unknown) => {
  console.error(`bench:libvirt: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
});
