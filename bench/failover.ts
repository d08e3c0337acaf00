// bench:failover — automatic failover of one HA VM on shared storage, BENCH_ROUNDS (10) times:
// the lab cuts the power of the VM's host (h1 or h2, alternately), keizokud declares it down
// with a probe agent as witness, fences it by the lab method and restarts the VM on the other
// host. RTO = the longest gap of an independent 10 ms ping capture (the last reply before the
// power cut to the first after the restart). In the same run, the same VM is cold-booted by
// hand (virsh destroy + start on the same host) as often, so the overhead of failover is RTO
// minus the VM's own boot. A fence keizokud ran that the bench did not cause is a false
// failover. Prints one JSON object on the last line.
import {
  createVm,
  downLab,
  fenceHost,
  healHost,
  readState,
  startPing,
  virsh,
  waitFor,
  waitForPing,
} from '../lab/index.ts';
import { startKeizokud } from '../test/support/keizokud.ts';
import { startProbeAgent } from '../test/support/probe-agent.ts';
import { startRedis } from '../test/support/redis.ts';
import { upFreeLab } from './free-lab.ts';
import { median, p95, r1 } from './stats.ts';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 10);
const VM = 'bf1';
const KEEPALIVE = { intervalSec: 1, count: 2 };
const DECLARE_AFTER_MS = 1_000;

async function main() {
  const id = await upFreeLab({ hosts: 3, sites: 2 });
  const redis = await startRedis();
  let kz: Awaited<ReturnType<typeof startKeizokud>> | undefined;
  let probe: Awaited<ReturnType<typeof startProbeAgent>> | undefined;
  try {
    await createVm(id, { name: VM, host: 'h1', disk: 'shared' });
    const lab = readState(id)!;
    const host = (n: string) => lab.layout.hosts.find((h) => h.name === n)!;
    const address = lab.vms.find((v) => v.name === VM)!.address;
    const daemon = await startKeizokud(lab, redis.url, {}, (config) => {
      const lv = config.libvirt as Record<string, unknown>;
      lv.keepaliveIntervalSec = KEEPALIVE.intervalSec;
      lv.keepaliveCount = KEEPALIVE.count;
      config.ha = { declareAfterMs: DECLARE_AFTER_MS };
      config.vms = [{ match: { name: VM }, tier: 'frontend', haPriority: 10 }];
    });
    kz = daemon;
    const token = await daemon.token('admin');
    const where = async () => {
      const v = (await daemon.request('GET', `/v1/vms/${VM}`, token)).body;
      return v.state === 'running' ? (v.host as string) : null;
    };
    const healthOf = async (h: string) =>
      (await daemon.request('GET', `/v1/hosts/${h}`, token)).body.health as string;
    await waitFor(`${VM} seen on h1`, async () => (await where()) === 'h1', 30_000, 200);
    probe = await startProbeAgent(daemon, [VM], 20, 'ping');

    const rto: number[] = [];
    const boot: number[] = [];
    // Where the time of each failover goes, from keizokud's audit log (ms after the power cut).
    const phases: Record<'lost' | 'down' | 'fenced' | 'placed' | 'restarted', number[]> = {
      lost: [],
      down: [],
      fenced: [],
      placed: [],
      restarted: [],
    };
    const phasesOf = async (host: string, cutAt: number) => {
      const q = `/v1/audit?since=${cutAt}&limit=200`;
      const entries = (await daemon.request('GET', q, token)).body.entries as {
        time: string;
        action: string;
        target: string | null;
        params: { health?: string; vm?: string; text?: string } | null;
      }[];
      const first = (ok: (e: (typeof entries)[number]) => boolean) => {
        const t = entries
          .filter(ok)
          .map((e) => Date.parse(e.time) - cutAt)
          .sort((a, b) => a - b)[0];
        return t ?? Number.NaN;
      };
      const health = (h: string) => (e: (typeof entries)[number]) =>
        e.action === 'host.health' && e.target === host && e.params?.health === h;
      // The first health other than up: partitioned while ICMP still answers, or unreachable.
      phases.lost.push(
        first((e) => e.action === 'host.health' && e.target === host && e.params?.health !== 'up'),
      );
      phases.down.push(first(health('down')));
      phases.fenced.push(first(health('fenced')));
      const restart = (what: string) => (e: (typeof entries)[number]) =>
        e.action === 'ha.restart' && e.params?.vm === VM && (e.params.text ?? '').includes(what);
      phases.placed.push(first(restart('placed on')));
      phases.restarted.push(first(restart('running on')));
    };
    let at = 'h1';
    for (let round = 0; round < ROUNDS; round++) {
      const other = at === 'h1' ? 'h2' : 'h1';
      // Failover: power cut, measured from outside by the capture.
      let cap = startPing(address, 10);
      await new Promise((r) => setTimeout(r, 500));
      const cutAt = Date.now();
      await fenceHost(id, at);
      await waitFor(`${VM} answering on ${other}`, async () => (await where()) === other, 120_000, 200);
      await waitForPing(address, 120_000);
      await new Promise((r) => setTimeout(r, 500));
      rto.push((await cap.stop()).maxGapMs);
      await phasesOf(at, cutAt);
      await healHost(id, at);
      await waitFor(`${at} up again`, async () => (await healthOf(at)) === 'up', 60_000, 200);
      // The same VM's own cold boot on the host it now runs on.
      cap = startPing(address, 10);
      await new Promise((r) => setTimeout(r, 500));
      await virsh(host(other), ['destroy', VM]);
      await virsh(host(other), ['start', VM]);
      await waitForPing(address, 120_000);
      await new Promise((r) => setTimeout(r, 500));
      boot.push((await cap.stop()).maxGapMs);
      process.stderr.write(
        `round ${round + 1}: ${at} -> ${other} RTO ${rto.at(-1)} ms, cold boot ${boot.at(-1)} ms; after the cut: lost ${phases.lost.at(-1)}, down ${phases.down.at(-1)}, fenced ${phases.fenced.at(-1)}, placed ${phases.placed.at(-1)}, running ${phases.restarted.at(-1)} ms\n`,
      );
      at = other;
    }
    const fences = (await daemon.request('GET', '/v1/audit?action=host.fence', token)).body.entries as {
      outcome: string;
    }[];
    const overhead = rto.map((r, i) => r - boot[i]!);
    console.log(
      JSON.stringify({
        rounds: ROUNDS,
        scope: `one TCG guest on shared storage, h1 <-> h2 in one site; keepalive ${KEEPALIVE.intervalSec} s x ${KEEPALIVE.count}, ha.declareAfterMs ${DECLARE_AFTER_MS}, ping every 10 ms`,
        rto_p50_ms: r1(median(rto)),
        rto_p95_ms: r1(p95(rto)),
        cold_boot_p50_ms: r1(median(boot)),
        overhead_p50_ms: r1(median(overhead)),
        overhead_p95_ms: r1(p95(overhead)),
        lost_p50_ms: r1(median(phases.lost)),
        down_p50_ms: r1(median(phases.down)),
        fenced_p50_ms: r1(median(phases.fenced)),
        placed_p50_ms: r1(median(phases.placed)),
        running_p50_ms: r1(median(phases.restarted)),
        fences_succeeded: fences.filter((f) => f.outcome === 'succeeded').length,
        false_failovers: Math.max(0, fences.length - ROUNDS),
      }),
    );
  } finally {
    await probe?.stop();
    await kz?.stop();
    await redis.stop();
    await downLab(id);
  }
}

await main();
