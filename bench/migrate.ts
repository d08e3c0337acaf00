// bench:migrate — 10 live migrations of one lab VM by keizoku (API -> job -> p2p migration)
// interleaved with 10 by raw `virsh migrate --live --p2p`, within a site (h1 <-> h2). Each move
// is pinged every 10 ms from outside the hosts by the same independent capture (outage = the
// longest gap between replies) and carries the same TCP session (keizoku's job holds one; the
// bench holds one for virsh). Prints one JSON object on the last line.
//
// To measure one suspect on its own: BENCH_ROUNDS (default 10); BENCH_KEIZOKU_POLICY, a JSON
// migration policy sent with each keizoku request (e.g. '{"maxDowntimeMs":100}'); and
// BENCH_KEIZOKUD_CONFIG, JSON merged into keizokud's config section by section (e.g.
// '{"migration":{"progressIntervalMs":10000}}'). Both are printed with the figures.
import { createVm, downLab, readState } from '../lab/index.ts';
import { startKeizokud } from '../test/support/keizokud.ts';
import { startRedis } from '../test/support/redis.ts';
import { upFreeLab } from './free-lab.ts';
import { interleave, jsonEnv, keizokuMove, series, summary, virshMove } from './moves.ts';
import { median, r1 } from './stats.ts';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 10);
const VM = 'bm1';
const POLICY = jsonEnv('BENCH_KEIZOKU_POLICY');
const DAEMON = jsonEnv('BENCH_KEIZOKUD_CONFIG') as Record<string, Record<string, unknown>>;

async function main() {
  const id = await upFreeLab({ hosts: 3, sites: 2 });
  const redis = await startRedis();
  let kz: Awaited<ReturnType<typeof startKeizokud>> | undefined;
  try {
    await createVm(id, { name: VM, host: 'h1' });
    const lab = readState(id)!;
    // The inventory at its production interval (the test harness polls every second).
    const daemon = await startKeizokud(lab, redis.url, {
      ...DAEMON,
      migration: { sessionCheckPort: 7, ...DAEMON.migration },
      loops: { inventoryIntervalMs: 10_000, ...DAEMON.loops },
    });
    kz = daemon;
    const token = await daemon.token('admin');
    const address = lab.vms.find((v) => v.name === VM)!.address;
    const k = series();
    const v = series();
    let at = 'h1';
    const other = (h: string) => (h === 'h1' ? 'h2' : 'h1');
    const viaKeizoku = async () => {
      const body = Object.keys(POLICY).length > 0 ? { policy: POLICY } : {};
      await keizokuMove(daemon, token, { vm: VM, address, from: at, to: other(at), body }, k);
      at = other(at);
    };
    const viaVirsh = async () => {
      const flags = ['--persistent', '--undefinesource'];
      await virshMove(lab, { vm: VM, address, from: at, to: other(at), flags }, v);
      at = other(at);
    };
    // Interleaved, and each tool goes first (and h1 -> h2) in half of the rounds.
    await interleave(ROUNDS, { keizoku: viaKeizoku, virsh: viaVirsh }, k, v);
    console.log(
      JSON.stringify({
        rounds: ROUNDS,
        scope: 'within a site (h1 <-> h2), TCG guest of 96 MiB, ping every 10 ms',
        keizoku_policy: POLICY,
        keizokud_config: DAEMON,
        ...summary('keizoku', k),
        keizoku_precheck_ms_median: r1(median(k.checkMs)),
        keizoku_request_to_result_ms_median: r1(median(k.requestMs)),
        ...summary('virsh', v),
        ratio_total_vs_virsh: Number((median(k.totalMs) / median(v.totalMs)).toFixed(3)),
        ratio_outage_vs_virsh: Number((median(k.outageMs) / median(v.outageMs)).toFixed(3)),
        keizoku_outages_ms: k.outageMs,
        virsh_outages_ms: v.outageMs,
      }),
    );
  } finally {
    await kz?.stop();
    await redis.stop();
    await downLab(id);
  }
}

await main();
