// The demo: a lab of 3 libvirt hosts over 2 sites, two guests, a live migration within a
// site and one across the WAN, each measured by libvirt and by ping from outside.
import { createVm, downLab, labStatus, readState, upLab, virshMigrate } from '../lab/index.ts';

const id = Number(process.env.KEIZOKU_LAB_ID ?? 0);

async function main() {
  console.log(`== lab ${id}: 3 libvirt hosts over 2 sites (WAN shaped to 100 Mbit/s)`);
  let state = await upLab({ id, hosts: 3, sites: 2, owner: 'demo' });
  let torn = false;
  const teardown = async () => {
    if (torn) return;
    torn = true;
    await downLab(id);
    console.log(`== lab ${id} torn down`);
  };
  process.on('SIGINT', () => void teardown().then(() => process.exit(130)));
  process.on('SIGTERM', () => void teardown().then(() => process.exit(143)));
  try {
    await Promise.all([
      createVm(id, { name: 'web1', host: 'h1' }),
      createVm(id, { name: 'core1', host: 'h3', disk: 'local' }),
    ]);
    state = readState(id)!;
    for (const h of state.layout.hosts) console.log(`   ${h.name} (${h.site}) ${h.uri}`);
    for (const v of state.vms) console.log(`   guest ${v.name} at ${v.address} on ${v.createdOn}`);

    console.log('== live migrations, pinged every 10 ms from outside the hosts');
    const rows = [
      await virshMigrate(state, 'web1', 'h1', 'h2'),
      await virshMigrate(state, 'core1', 'h3', 'h1', ['--copy-storage-all']),
    ];
    console.log(
      'move                                     total ms  libvirt downtime ms  pings sent  lost  longest gap ms',
    );
    for (const r of rows) {
      const move = `${r.vm} ${r.from} -> ${r.to} ${r.flags.join(' ')}`;
      console.log(
        `${move.padEnd(41)}${String(r.elapsedMs).padStart(8)}  ${String(r.downtimeMs).padStart(19)}  ${String(r.ping.sent).padStart(10)}  ${String(r.ping.sent - r.ping.received).padStart(4)}  ${String(r.ping.maxGapMs).padStart(14)}`,
      );
    }
    const s = await labStatus(readState(id)!);
    for (const v of s.vms) console.log(`   ${v.name} now ${v.state} on ${v.host}`);
    if (process.stdin.isTTY) {
      console.log(
        `== lab ${id} stays up: 'npm run lab -- status', 'npm run lab -- vm load web1 --burn start'. Ctrl-C tears it down.`,
      );
      await new Promise(() => undefined);
    }
  } finally {
    await teardown();
  }
}

main().catch(async (e: unknown) => {
  console.error(`demo: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
});
