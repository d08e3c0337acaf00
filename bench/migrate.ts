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
import { createVm, downLab, readState, startPing, virshMigrate } from '../lab/index.ts';
import { TcpSessionCheck } from '../src/probe/tcp-session.ts';
import { startKeizokud } from '../test/support/keizokud.ts';
import { startRedis } from '../test/support/redis.ts';
import { upFreeLab } from './free-lab.ts';
import { median, p95, r1 } from './stats.ts';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 10);
const VM = 'bm1';

function jsonEnv(name: string): Record<string, unknown> {
  const raw = process.env[name];
  if (!raw) return {};
  try {
    const v = JSON.parse(raw);
    if (v && typeof v === 'object' && !Array.isArray(v)) return v;
  } catch {
    // reported below
  }
  throw new Error(`${name} must be a JSON object, got: ${raw}`);
}
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
    const k = {
      totalMs: [] as number[],
      checkMs: [] as number[],
      requestMs: [] as number[],
      downtimeMs: [] as number[],
      outageMs: [] as number[],
      lost: [] as number[],
      sessions: 0,
      sessionConnectFailures: 0,
    };
    const v = {
      totalMs: [] as number[],
      downtimeMs: [] as number[],
      outageMs: [] as number[],
      lost: [] as number[],
      sessions: 0,
      sessionConnectFailures: 0,
    };
    let at = 'h1';
    const other = (h: string) => (h === 'h1' ? 'h2' : 'h1');
    const viaKeizoku = async () => {
      for (let i = 0; i < 100; i++) {
        const r = await daemon.request('GET', `/v1/vms/${VM}`, token);
        if (r.body.host === at && r.body.state === 'running') break;
        await new Promise((res) => setTimeout(res, 100));
      }
      const cap = startPing(address, 10);
      await new Promise((res) => setTimeout(res, 300));
      const t0 = Date.now();
      const post = await daemon.request('POST', `/v1/vms/${VM}/migrate`, token, {
        to: other(at),
        ...(Object.keys(POLICY).length > 0 ? { policy: POLICY } : {}),
      });
      if (post.status !== 202) throw new Error(`migrate refused: ${JSON.stringify(post.body)}`);
      let job = post.body;
      // Polled gently: the load generator shares the 2 cores with the TCG guest and both
      // hosts, and a busy poll lengthened keizoku's downtime (the totals come from the job).
      while (job.state === 'waiting' || job.state === 'active') {
        await new Promise((res) => setTimeout(res, 250));
        job = (await daemon.request('GET', `/v1/jobs/${job.id}`, token)).body;
      }
      const requestMs = Date.now() - t0;
      const ping = await cap.stop();
      if (job.state !== 'succeeded') throw new Error(`keizoku move failed: ${JSON.stringify(job.result)}`);
      k.totalMs.push(job.result.checkMs + job.result.totalMs);
      k.checkMs.push(job.result.checkMs);
      k.requestMs.push(requestMs);
      k.downtimeMs.push(job.result.libvirtDowntimeMs);
      k.outageMs.push(ping.maxGapMs);
      k.lost.push(ping.sent - ping.received);
      if (job.result.session?.survived) k.sessions++;
      if (!job.result.session) k.sessionConnectFailures++;
      at = other(at);
    };
    const viaVirsh = async () => {
      // The same TCP session keizoku's job holds (heartbeat every 100 ms to the echo port): the
      // guest carries the same load under both tools (it lengthens libvirt's downtime here).
      const session = new TcpSessionCheck({ host: address, port: 7, heartbeatMs: 100, breakAfterMs: 10_000 });
      // A connect that fails is counted and the move still measured (keizoku's job does the same).
      const connected = await session.start().then(
        () => true,
        (e: Error) => {
          console.log(`virsh move: session check could not connect: ${e.message}`);
          v.sessionConnectFailures++;
          return false;
        },
      );
      const m = await virshMigrate(lab, VM, at, other(at), ['--persistent', '--undefinesource'], 10);
      if (connected && session.stop().survived) v.sessions++;
      v.totalMs.push(m.wallMs);
      v.downtimeMs.push(m.downtimeMs);
      v.outageMs.push(m.ping.maxGapMs);
      v.lost.push(m.ping.sent - m.ping.received);
      at = other(at);
    };
    for (let round = 0; round < ROUNDS; round++) {
      // Interleaved, and each tool goes first (and h1 -> h2) in half of the rounds.
      if (round % 2 === 0) {
        await viaKeizoku();
        await viaVirsh();
      } else {
        await viaVirsh();
        await viaKeizoku();
      }
      process.stderr.write(
        `round ${round + 1}: keizoku ${k.totalMs.at(-1)} ms (downtime ${k.downtimeMs.at(-1)}, outage ${k.outageMs.at(-1)}) | virsh ${v.totalMs.at(-1)} ms (downtime ${v.downtimeMs.at(-1)}, outage ${v.outageMs.at(-1)})\n`,
      );
    }
    console.log(
      JSON.stringify({
        rounds: ROUNDS,
        scope: 'within a site (h1 <-> h2), TCG guest of 96 MiB, ping every 10 ms',
        keizoku_policy: POLICY,
        keizokud_config: DAEMON,
        keizoku_total_ms_median: r1(median(k.totalMs)),
        keizoku_precheck_ms_median: r1(median(k.checkMs)),
        keizoku_request_to_result_ms_median: r1(median(k.requestMs)),
        keizoku_libvirt_downtime_ms_median: r1(median(k.downtimeMs)),
        keizoku_outage_ms_median: r1(median(k.outageMs)),
        keizoku_outage_p95_ms: r1(p95(k.outageMs)),
        keizoku_pings_lost_median: median(k.lost),
        keizoku_sessions_survived: k.sessions,
        keizoku_session_connect_failures: k.sessionConnectFailures,
        virsh_total_ms_median: r1(median(v.totalMs)),
        virsh_libvirt_downtime_ms_median: r1(median(v.downtimeMs)),
        virsh_outage_ms_median: r1(median(v.outageMs)),
        virsh_outage_p95_ms: r1(p95(v.outageMs)),
        virsh_pings_lost_median: median(v.lost),
        virsh_sessions_survived: v.sessions,
        virsh_session_connect_failures: v.sessionConnectFailures,
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
