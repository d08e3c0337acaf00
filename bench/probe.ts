// bench:probe — keizoku-probe probing 100 targets at 100 Hz (interval 10 ms) for 30 s, on
// loopback addresses 127.0.0.2-127.0.0.101 only, once with each prober in turn: fping (the
// default, one process per 50 addresses) and iputils ping (one per address). Reports the agent's
// CPU and memory (with its probe processes, from /proc), and the measurement resolution: the
// real spacing of probes per address, and how many probes each target got. The top-level
// figures are the default prober's; `ping` holds the other's and `ratio_*` compares them.
// Prints one JSON object on the last line.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../lab/index.ts';

const TARGETS = Number(process.env.BENCH_TARGETS ?? 100);
const INTERVAL_MS = Number(process.env.BENCH_INTERVAL_MS ?? 10);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 30);
const TICK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** utime+stime (ticks) and RSS (kB) of a process and all its descendants (and of the root alone). */
function usage(root: number): {
  ticks: number;
  rssKb: number;
  pids: number;
  rootTicks: number;
  rootRssKb: number;
} {
  const children = (pid: number): number[] => {
    try {
      return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
        .trim()
        .split(/\s+/)
        .filter(Boolean)
        .map(Number);
    } catch {
      return [];
    }
  };
  let ticks = 0;
  let rssKb = 0;
  let pids = 0;
  let rootTicks = 0;
  let rootRssKb = 0;
  const walk = (pid: number) => {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // utime, stime, and those of waited-for children (a ping that exited and was restarted)
      const t = Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
      const rss = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
      ticks += t;
      rssKb += rss;
      if (pid === root) {
        rootTicks = t;
        rootRssKb = rss;
      }
      pids++;
    } catch {
      return;
    }
    for (const c of children(pid)) walk(c);
  };
  walk(root);
  return { ticks, rssKb, pids, rootTicks, rootRssKb };
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))] ?? Number.NaN;
};

async function measure(prober: 'fping' | 'ping'): Promise<Record<string, number>> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-probe-'));
  const port = await freePort();
  const targets = Array.from(
    { length: TARGETS },
    (_, i) => `  - { name: t${i + 2}, addresses: [127.0.0.${i + 2}] }`,
  );
  writeFileSync(
    join(dir, 'probe.yaml'),
    `name: bench\nsite: dc1\nlisten: 127.0.0.1:${port}\nintervalMs: ${INTERVAL_MS}\nprober: ${prober}\nretentionSec: ${SECONDS + 30}\ntargets:\n${targets.join('\n')}\n`,
  );
  const agent: ChildProcess = spawn('node', ['bin/keizoku-probe.mjs', '--config', join(dir, 'probe.yaml')], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  try {
    const url = `http://127.0.0.1:${port}`;
    for (let i = 0; i < 100; i++) {
      if (
        await fetch(`${url}/v1/targets`).then(
          (r) => r.ok,
          () => false,
        )
      )
        break;
      await sleep(100);
    }
    await sleep(3_000); // warm-up
    const a = usage(agent.pid!);
    const t0 = Date.now();
    await sleep(SECONDS * 1000);
    const b = usage(agent.pid!);
    const t1 = Date.now();
    const cpuPercent = ((b.ticks - a.ticks) / TICK / ((t1 - t0) / 1000)) * 100;
    // Resolution: spacing of consecutive probes of each address, from the agent's own samples.
    const spacing: number[] = [];
    const perTarget: number[] = [];
    let lost = 0;
    let sent = 0;
    for (let i = 0; i < TARGETS; i++) {
      const w = (await (
        await fetch(`${url}/v1/window?target=t${i + 2}&from=${t0}&to=${t1}&samples=1`)
      ).json()) as {
        sent: number;
        lost: number;
        samples: { tMs: number }[];
      };
      perTarget.push(w.samples.length);
      sent += w.sent;
      lost += w.lost;
      for (let k = 1; k < w.samples.length; k++) spacing.push(w.samples[k]!.tMs - w.samples[k - 1]!.tMs);
    }
    const r1 = (x: number) => Math.round(x * 10) / 10;
    return {
      processes: b.pids,
      cpu_percent: r1(cpuPercent),
      cpu_percent_agent: r1(((b.rootTicks - a.rootTicks) / TICK / ((t1 - t0) / 1000)) * 100),
      cpu_percent_per_target: Math.round((cpuPercent / TARGETS) * 1000) / 1000,
      rss_mib: r1(b.rssKb / 1024),
      rss_mib_agent: r1(b.rootRssKb / 1024),
      send_interval_p50_ms: r1(pct(spacing, 0.5)),
      send_interval_p95_ms: r1(pct(spacing, 0.95)),
      send_interval_max_ms: r1(spacing.reduce((m, x) => Math.max(m, x), 0)),
      probes_per_target_per_s_median: r1(pct(perTarget, 0.5) / SECONDS),
      loss_rate: Number((lost / Math.max(1, sent)).toFixed(5)),
    };
  } finally {
    const exited = new Promise((r) => agent.once('exit', r));
    agent.kill('SIGTERM');
    await exited;
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main() {
  const fping = await measure('fping');
  console.error(`fping: ${JSON.stringify(fping)}`);
  const ping = await measure('ping');
  console.error(`ping: ${JSON.stringify(ping)}`);
  const ratio = (k: string) => Math.round((fping[k]! / ping[k]!) * 100) / 100;
  console.log(
    JSON.stringify({
      targets: TARGETS,
      interval_ms: INTERVAL_MS,
      seconds: SECONDS,
      prober: 'fping',
      ...fping,
      ping,
      ratio_cpu_fping_vs_ping: ratio('cpu_percent'),
      ratio_rss_fping_vs_ping: ratio('rss_mib'),
      ratio_probes_per_s_fping_vs_ping: ratio('probes_per_target_per_s_median'),
    }),
  );
}

await main();
