// bench:site — live moves of one lab VM with a local disk across the lab's WAN (h1 in dc1 <->
// h3 in dc2, tbf at 100 Mbit/s), its memory-dirtying loop running: BENCH_ROUNDS (default 5) by
// keizoku (API -> job, the cross-site rule of the VM's tier: cap, downtime; the disk copied)
// interleaved with as many raw `virsh migrate --live --p2p --copy-storage-all` with the same
// WAN settings (cap, compression, auto-converge).
// Measured as bench:migrate measures (bench/moves.ts): ping every 10 ms from outside the hosts,
// a TCP session carried through each move. Prints one JSON object on the last line.
//
// BENCH_CAP_MIBS (default 8) is the cap of both tools; BENCH_DIRTY_MB (default 8) what the
// guest's loop rewrites (0: no loop); BENCH_CROSS_SITE_RULE, JSON merged into keizoku's rule
// (default xbzrle, downtime 300 ms; e.g. '{"compression":[]}'), whose compression and
// auto-converge virsh gets too. Site failover and class-A replication are not built:
// their keys say so.
import { createVm, downLab, guestLoad, parseGuestStatus, readState } from '../lab/index.ts';
import { startKeizokud } from '../test/support/keizokud.ts';
import { startRedis } from '../test/support/redis.ts';
import { upFreeLab } from './free-lab.ts';
import { interleave, jsonEnv, keizokuMove, series, summary, virshMove } from './moves.ts';
import { median } from './stats.ts';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const CAP_MIBS = Number(process.env.BENCH_CAP_MIBS ?? 8);
const DIRTY_MB = Number(process.env.BENCH_DIRTY_MB ?? 8);
const RULE = jsonEnv('BENCH_CROSS_SITE_RULE');
const VM = 'bs1';
const NOT_BUILT = 'not built';

class GuestLost extends Error {}

async function main() {
  const id = await upFreeLab({ hosts: 3, sites: 2 });
  const redis = await startRedis();
  let kz: Awaited<ReturnType<typeof startKeizokud>> | undefined;
  try {
    await createVm(id, { name: VM, host: 'h1', disk: 'local', memoryMiB: 128 });
    const lab = readState(id)!;
    const rule = {
      sites: ['dc1', 'dc2'],
      bandwidthMiBs: CAP_MIBS,
      compression: ['xbzrle'],
      maxDowntimeMs: 300,
      ...RULE,
    } as { compression: string[]; autoConverge?: boolean } & Record<string, unknown>;
    const daemon = await startKeizokud(lab, redis.url, {
      migration: { sessionCheckPort: 7, crossSite: [rule] },
      loops: { inventoryIntervalMs: 10_000 },
    });
    kz = daemon;
    const token = await daemon.token('admin');
    const address = lab.vms.find((v) => v.name === VM)!.address;
    if (DIRTY_MB > 0) await guestLoad(address, { dirty: 'start', mb: DIRTY_MB });
    const k = series();
    const v = series();
    let at = 'h1';
    // The guest after each move: a reset shows as a shorter uptime (and a stopped loop, started
    // again so that every move carries the load).
    let loopStopped = 0;
    let guestResets = 0;
    let uptime = 0;
    const other = (h: string) => (h === 'h1' ? 'h3' : 'h1');
    // A guest that does not answer after a move (it crashed: see docs/operations.md) ends the
    // rounds; what was measured until then is printed, with the count.
    let guestsUnanswering = 0;
    const checkGuest = async () => {
      const line = await guestLoad(address).catch(() => null);
      if (line === null) {
        guestsUnanswering++;
        throw new GuestLost();
      }
      const st = parseGuestStatus(line);
      if (Number(st.uptime) < uptime) guestResets++;
      uptime = Number(st.uptime);
      if (DIRTY_MB > 0 && st.dirty !== 'running') {
        loopStopped++;
        await guestLoad(address, { dirty: 'start', mb: DIRTY_MB });
      }
    };
    await checkGuest();
    const viaKeizoku = async () => {
      const m = { vm: VM, address, from: at, to: other(at), body: { copyStorage: true } };
      await keizokuMove(daemon, token, m, k);
      at = other(at);
      await checkGuest();
    };
    const viaVirsh = async () => {
      // The WAN settings keizoku's rule gives libvirt (keizoku's own auto-converge default on).
      const flags = [
        '--persistent',
        '--undefinesource',
        '--copy-storage-all',
        '--bandwidth',
        String(CAP_MIBS),
      ];
      if (rule.compression.length > 0)
        flags.push('--compressed', '--comp-methods', rule.compression.join(','));
      if (rule.autoConverge !== false) flags.push('--auto-converge');
      await virshMove(lab, { vm: VM, address, from: at, to: other(at), flags }, v);
      at = other(at);
      await checkGuest();
    };
    // Interleaved, and each tool goes first (and dc1 -> dc2) in half of the rounds.
    await interleave(ROUNDS, { keizoku: viaKeizoku, virsh: viaVirsh }, k, v).catch((e) => {
      if (!(e instanceof GuestLost)) throw e;
      process.stderr.write(`the guest did not answer after move ${k.totalMs.length + v.totalMs.length}\n`);
    });
    console.log(
      JSON.stringify({
        rounds: ROUNDS,
        scope: `across the WAN (h1 dc1 <-> h3 dc2, tbf ${lab.wanRateMbit} Mbit/s), TCG guest of 128 MiB with a 64 MiB local qcow2 copied, dirtying ${DIRTY_MB} MiB in a loop, cap ${CAP_MIBS} MiB/s for both tools, ping every 10 ms`,
        keizoku_cross_site_rule: rule,
        ...summary('wan', k),
        ...summary('virsh_wan', v),
        ratio_wan_outage_vs_virsh: Number((median(k.outageMs) / median(v.outageMs)).toFixed(3)),
        ratio_wan_total_vs_virsh: Number((median(k.totalMs) / median(v.totalMs)).toFixed(3)),
        dirty_loop_stopped_after_moves: loopStopped,
        guest_resets_seen: guestResets,
        guest_unanswering_after_moves: guestsUnanswering,
        keizoku_moves: k.totalMs.length,
        virsh_moves: v.totalMs.length,
        wan_outages_ms: k.outageMs,
        virsh_wan_outages_ms: v.outageMs,
        site_rto_p50_ms: NOT_BUILT,
        site_rto_p95_ms: NOT_BUILT,
        class_a_writes_lost: NOT_BUILT,
      }),
    );
  } finally {
    await kz?.stop();
    await redis.stop();
    await downLab(id);
  }
}

await main();
