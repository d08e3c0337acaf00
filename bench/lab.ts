// bench:lab — what the lab itself costs and what raw libvirt moves look like on it:
// lab up/down time, guest boot time, and `virsh migrate --live --p2p` within a site, across
// the WAN, and across the WAN with --copy-storage-all, each with ping every 10 ms.
// Prints one JSON object on the last line.
import {
  createVm,
  downLab,
  LabError,
  listLabIds,
  readState,
  upLab,
  type VirshMigration,
  virshMigrate,
} from '../lab/index.ts';
import { median, p95 } from './stats.ts';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);

async function freeLab(): Promise<number> {
  for (let id = 10; id <= 49; id++) {
    if (listLabIds().includes(id)) continue;
    try {
      const t0 = Date.now();
      await upLab({ id, hosts: 3, sites: 2, owner: 'bench' });
      upMs.push(Date.now() - t0);
      return id;
    } catch (e) {
      if (!(e instanceof LabError && e.message.includes('already up'))) throw e;
    }
  }
  throw new Error('no free lab id');
}

const upMs: number[] = [];

function summary(moves: VirshMigration[]) {
  return {
    runs: moves.length,
    total_median_ms: median(moves.map((m) => m.elapsedMs)),
    wall_median_ms: median(moves.map((m) => m.wallMs)),
    downtime_median_ms: median(moves.map((m) => m.downtimeMs)),
    ping_gap_median_ms: median(moves.map((m) => m.ping.maxGapMs)),
    ping_gap_p95_ms: p95(moves.map((m) => m.ping.maxGapMs)),
    ping_lost_median: median(moves.map((m) => m.ping.sent - m.ping.received)),
  };
}

async function main() {
  const id = await freeLab();
  try {
    const t0 = Date.now();
    await createVm(id, { name: 'b1', host: 'h1' });
    const bootOneMs = Date.now() - t0;
    const t1 = Date.now();
    await Promise.all([
      createVm(id, { name: 'b2', host: 'h2' }),
      createVm(id, { name: 'b3', host: 'h3', disk: 'local' }),
      createVm(id, { name: 'b4', host: 'h3' }),
    ]);
    const bootThreeMs = Date.now() - t1;
    const state = readState(id)!;

    const within: VirshMigration[] = [];
    const wan: VirshMigration[] = [];
    const wanStorage: VirshMigration[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      const [a, b] = i % 2 === 0 ? ['h1', 'h2'] : ['h2', 'h1'];
      within.push(await virshMigrate(state, 'b1', a!, b!));
      const [c, d] = i % 2 === 0 ? ['h3', 'h2'] : ['h2', 'h3'];
      wan.push(await virshMigrate(state, 'b4', c!, d!));
    }
    for (let i = 0; i < Math.min(2, ROUNDS); i++) {
      const [c, d] = i % 2 === 0 ? ['h3', 'h1'] : ['h1', 'h3'];
      wanStorage.push(await virshMigrate(state, 'b3', c!, d!, ['--copy-storage-all']));
    }
    const t2 = Date.now();
    await downLab(id);
    const downMs = Date.now() - t2;
    console.log(
      JSON.stringify({
        bench: 'lab',
        hosts: 3,
        sites: 2,
        wan_rate_mbit: state.wanRateMbit,
        guest_memory_mib: 96,
        lab_up_ms: upMs[0],
        lab_down_ms: downMs,
        guest_boot_one_ms: bootOneMs,
        guest_boot_three_parallel_ms: bootThreeMs,
        virsh_within_site: summary(within),
        virsh_across_wan: summary(wan),
        virsh_across_wan_copy_storage: summary(wanStorage),
      }),
    );
  } finally {
    await downLab(id);
  }
}

main().catch((e: unknown) => {
  console.error(`bench:lab: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
});
