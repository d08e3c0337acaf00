// bench:scale — keizokud as shipped against 1,000 simulated libvirt hosts x 20,000 VMs on the
// wire (lab/sim/: libvirt's remote protocol over TCP, one loopback address per host, in a
// process of its own) and a real Redis: cold start to ready with the first full inventory,
// the controller's CPU and RSS in steady state at a 10 s inventory interval, GET /v1/vms under
// that load. CPU is read from /proc/PID/stat (utime+stime) of each process over the same
// window: keizokud, its fping child, the simulator and Redis share this machine's cores.
// Then, as root, 20 hosts are powered off at once and keizokud's failover restarts their VMs
// (bench/scale-failover.ts): the whole bench runs in a network namespace of its own
// (lab/sim/netns.ts) where a powered-off host's address is gone, so ICMP is silent.
// Prints one JSON object on the last line.
import { type ChildProcess, spawn } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import autocannon from 'autocannon';
import { Redis } from 'ioredis';
import { freePort } from '../lab/index.ts';
import { createSimNetns, SIM_HOST_PREFIX } from '../lab/sim/netns.ts';
import { TokenStore } from '../src/api/auth/tokens.ts';
import { startRedis } from '../test/support/redis.ts';
import { haVmEntries, runFailoverPhase } from './scale-failover.ts';
import { median, r1 } from './stats.ts';

const HOSTS = Number(process.env.BENCH_HOSTS ?? 1000);
const VMS_PER_HOST = Number(process.env.BENCH_VMS_PER_HOST ?? 20);
const INTERVAL_MS = Number(process.env.BENCH_INVENTORY_INTERVAL_MS ?? 10_000);
const WARMUP_S = Number(process.env.BENCH_WARMUP_S ?? 20);
const WINDOW_S = Number(process.env.BENCH_WINDOW_S ?? 60);
const LIST_S = Number(process.env.BENCH_LIST_S ?? 20);
const SIM_PORT = Number(process.env.BENCH_SIM_PORT ?? 16509);
const COLD_START_LIMIT_MS = 120_000;
const FAILED_HOSTS = Number(process.env.BENCH_FAILED_HOSTS ?? 20);
/** VMs 1..N of each host in a tier with failover (default: all of them). */
const HA_VMS_PER_HOST = Math.min(VMS_PER_HOST, Number(process.env.BENCH_HA_VMS_PER_HOST ?? VMS_PER_HOST));
const FAILOVER_TIMEOUT_MS = Number(process.env.BENCH_FAILOVER_TIMEOUT_MS ?? 300_000);
/** Set inside the bench's own network namespace (the bench runs itself again there). */
const NETNS = process.env.KZ_SCALE_NETNS;
const NOT_BUILT = 'not built';
/** A directory: keizokud runs under node --cpu-prof and writes its profile there at exit. */
const CPU_PROF_DIR = process.env.BENCH_CPU_PROF;
/** How long keizokud may take to exit after SIGTERM (its profile is written at the exit). */
const STOP_GRACE_MS = Number(process.env.BENCH_STOP_GRACE_MS ?? (CPU_PROF_DIR ? 300_000 : 60_000));

const TICK_HZ = 100; // USER_HZ of /proc/PID/stat on Linux
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** utime + stime of a process in seconds (all its threads), or null once it is gone. */
function cpuSeconds(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / TICK_HZ;
  } catch {
    return null;
  }
}

/** A process's resident set now and at its peak, in MiB. */
function rssMiB(pid: number): { now: number; peak: number } {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(s)?.[1] ?? Number.NaN);
  return { now: kib('VmRSS') / 1024, peak: kib('VmHWM') / 1024 };
}

function childPids(pid: number): number[] {
  const out: number[] = [];
  for (const t of readdirSync(`/proc/${pid}/task`)) {
    const c = readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8').trim();
    if (c) out.push(...c.split(/\s+/).map(Number));
  }
  return out;
}

const commOf = (pid: number) => readFileSync(`/proc/${pid}/comm`, 'utf8').trim();

async function getJson(url: string, token: string): Promise<unknown> {
  const r = await fetch(url, { headers: { authorization: `Bearer ${token}` } });
  if (!r.ok) throw new Error(`GET ${url} answered ${r.status}`);
  return r.json();
}

async function stopChild(child: ChildProcess, grace = 30_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), grace);
  await exited;
  clearTimeout(t);
}

/** As root, runs this bench again inside a network namespace of its own, then removes it. */
async function inNetns(): Promise<number> {
  const ns = createSimNetns(`kzscale-${process.pid}`);
  try {
    const child = spawn(
      ns.exec[0]!,
      [...ns.exec.slice(1), process.execPath, ...process.execArgv, process.argv[1]!],
      {
        stdio: 'inherit',
        env: { ...process.env, KZ_SCALE_NETNS: ns.name },
      },
    );
    const stop = () => child.kill('SIGTERM');
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
    return await new Promise<number>((r) => child.once('exit', (c) => r(c ?? 1)));
  } finally {
    ns.remove();
  }
}

async function main() {
  const dir = mkdtempSync(join(tmpdir(), 'kz-bench-scale-'));
  const redis = await startRedis();
  const children: ChildProcess[] = [];
  try {
    // The simulated hosts, in their own process.
    const sim = spawn(
      'node',
      [
        '--import',
        'tsx',
        'lab/sim/main.ts',
        '--hosts',
        String(HOSTS),
        '--vms-per-host',
        String(VMS_PER_HOST),
        '--port',
        String(SIM_PORT),
        ...(NETNS
          ? [
              '--address-dev',
              'sim0',
              '--address-prefix',
              SIM_HOST_PREFIX,
              '--bmc-port',
              String(await freePort()),
            ]
          : []),
      ],
      { stdio: ['pipe', 'pipe', 'inherit'] },
    );
    children.push(sim);
    const simLines = createInterface({ input: sim.stdout! });
    const line = await new Promise<string>((resolve, reject) => {
      simLines.once('line', resolve);
      sim.once('exit', (c) => reject(new Error(`the simulated hosts exited (${c})`)));
    });
    // One command at a time, each answered by one line.
    let simQueue: Promise<unknown> = Promise.resolve();
    const simCommand = (cmd: object) => {
      const r = simQueue.then(
        () =>
          new Promise<{ ok: boolean; at?: number; error?: string }>((resolve) => {
            simLines.once('line', (l) => resolve(JSON.parse(l)));
            sim.stdin!.write(`${JSON.stringify(cmd)}\n`);
          }),
      );
      simQueue = r;
      return r;
    };
    const simInfo = JSON.parse(line) as {
      hosts: { name: string; uri: string; address: string }[];
      bmc?: { port: number; caFile: string; passwordFile: string; username: string };
    };
    const simHosts = simInfo.hosts;
    const bmc = simInfo.bmc;

    // keizokud as shipped: defaults but for its listeners, its directories and the lab's
    // plain TCP (marked insecure, as the lab's own config does).
    const [apiPort, metricsPort] = [await freePort(), await freePort()];
    const sites = ['dc1', 'dc2', 'dc3', 'dc4'];
    const config = {
      sites: sites.map((name) => ({ name })),
      hosts: simHosts.map((h, i) => ({
        name: h.name,
        uri: h.uri,
        insecure: true,
        site: sites[i % sites.length],
        managementAddress: h.address,
        // The simulator's BMC: keizokud's redfish fence powers the simulated host off.
        ...(bmc
          ? {
              fence: {
                method: 'redfish',
                address: '127.0.0.1',
                port: bmc.port,
                systemId: h.name,
                username: bmc.username,
                passwordFile: bmc.passwordFile,
                caFile: bmc.caFile,
                confirmTimeoutMs: 10_000,
              },
            }
          : {}),
      })),
      // VMs in a tier with failover (policies/tiers.yaml `low`), restarted after a host failure.
      ...(bmc ? { vms: haVmEntries(HA_VMS_PER_HOST) } : {}),
      redis: { url: redis.url },
      api: { listen: `127.0.0.1:${apiPort}`, rateLimitPerMinute: 1_000_000 },
      metrics: { listen: `127.0.0.1:${metricsPort}` },
      audit: { dir: join(dir, 'audit') },
      drills: { dir: join(dir, 'drills') },
      loops: { inventoryIntervalMs: INTERVAL_MS },
    };
    const configFile = join(dir, 'keizokud.yaml');
    writeFileSync(configFile, JSON.stringify(config, null, 2));
    const api = `http://127.0.0.1:${apiPort}`;
    const tokens = new Redis(redis.url, { maxRetriesPerRequest: 1 });
    const store = new TokenStore(tokens, 'keizoku:default:');
    const token = (await store.create({ name: 'bench', role: 'viewer' })).token;
    const probeToken = (
      await store.create({ name: 'bench-probe', role: 'probe', probe: { name: 'scale-probe', site: 'dc1' } })
    ).token;
    tokens.disconnect();

    // Its log goes to a file, not through this process (whose CPU is not measured).
    const logFile = join(dir, 'keizokud.log');
    const logFd = openSync(logFile, 'w');
    const t0 = performance.now();
    const prof = CPU_PROF_DIR ? ['--cpu-prof', '--cpu-prof-dir', CPU_PROF_DIR] : [];
    const kz = spawn('node', [...prof, 'bin/keizokud.mjs', '--config', configFile], {
      stdio: ['ignore', logFd, logFd],
    });
    children.push(kz);
    const pid = kz.pid!;

    let readyzMs = Number.NaN;
    let fullMs = Number.NaN;
    for (;;) {
      if (kz.exitCode !== null)
        throw new Error(`keizokud exited:\n${readFileSync(logFile, 'utf8').slice(-3000)}`);
      if (performance.now() - t0 > COLD_START_LIMIT_MS)
        throw new Error(`keizokud not ready with a full inventory within ${COLD_START_LIMIT_MS} ms`);
      if (Number.isNaN(readyzMs)) {
        const up = await fetch(`${api}/readyz`).then(
          (r) => r.ok,
          () => false,
        );
        if (up) readyzMs = performance.now() - t0;
      }
      if (!Number.isNaN(readyzMs)) {
        const hosts = (await getJson(`${api}/v1/hosts`, token)) as {
          hosts: { health: string; vms: string[] }[];
        };
        const up = hosts.hosts.filter((h) => h.health === 'up');
        const vms = up.reduce((n, h) => n + h.vms.length, 0);
        if (up.length === HOSTS && vms === HOSTS * VMS_PER_HOST) {
          fullMs = performance.now() - t0;
          break;
        }
      }
      await sleep(100);
    }
    const rssAtReady = rssMiB(pid);

    // Steady state: after a warm-up, CPU of every process over one window (the window holds
    // at least one refresh of every domain's definition: every 6 inventory intervals).
    await sleep(WARMUP_S * 1000);
    const fping = childPids(pid).filter((c) => commOf(c) === 'fping');
    const procs = { keizokud: pid, sim: sim.pid!, redis: redisPid(redis.port), fping: fping[0] ?? null };
    const before = Object.fromEntries(Object.entries(procs).map(([k, p]) => [k, p ? cpuSeconds(p) : null]));
    const wStart = performance.now();
    // When each phase began, from keizokud's start (to cut its CPU profile by phase).
    const at = () => Math.round(performance.now() - t0);
    const phases: Record<string, number> = { ready: Math.round(fullMs), steady: at() };
    let rssMax = 0;
    // How long an open route takes to answer: the lag of keizokud's event loop, sampled.
    const readyzLatency: number[] = [];
    while (performance.now() - wStart < WINDOW_S * 1000) {
      await sleep(1000);
      rssMax = Math.max(rssMax, rssMiB(pid).now);
      const q = performance.now();
      await fetch(`${api}/readyz`).then((r) => r.text());
      readyzLatency.push(performance.now() - q);
    }
    const wallS = (performance.now() - wStart) / 1000;
    const cores = (k: keyof typeof procs) => {
      const p = procs[k];
      const a = before[k];
      const b = p ? cpuSeconds(p) : null;
      return a === null || a === undefined || b === null ? null : Number(((b - a) / wallS).toFixed(3));
    };
    const cpu = {
      keizokud: cores('keizokud'),
      fping: cores('fping'),
      sim: cores('sim'),
      redis: cores('redis'),
    };
    const rssSteady = rssMiB(pid);

    // GET /v1/vms, one request at a time, while the inventory goes on.
    phases.list = at();
    const before2 = cpuSeconds(pid)!;
    const l0 = performance.now();
    const list = await autocannon({
      url: `${api}/v1/vms`,
      connections: 1,
      duration: LIST_S,
      timeout: 60,
      headers: { authorization: `Bearer ${token}` },
    });
    const listCores = (cpuSeconds(pid)! - before2) / ((performance.now() - l0) / 1000);
    if (list.non2xx > 0 || list.errors > 0)
      throw new Error(`GET /v1/vms: ${list.non2xx} non-2xx, ${list.errors} errors`);
    const listed = ((await getJson(`${api}/v1/vms`, token)) as { vms: unknown[] }).vms.length;
    const rssEnd = rssMiB(pid);
    const log0 = readFileSync(logFile, 'utf8');
    const lostBefore = log0.split('"msg":"libvirt connection lost"').length - 1;

    // The inventory's own account of its passes, then the cost of one /metrics scrape.
    phases.scrape = at();
    const m0 = performance.now();
    const metricsText = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    const scrapeMs = performance.now() - m0;
    const metric = (re: RegExp) => Number(re.exec(metricsText)?.[1] ?? Number.NaN);
    const passSum = metric(/^keizoku_loop_duration_seconds_sum\{loop="inventory"\} (\S+)$/m);
    const passCount = metric(/^keizoku_loop_duration_seconds_count\{loop="inventory"\} (\S+)$/m);
    const partial = metric(/^keizoku_loop_runs_total\{loop="inventory",result="partial"\} (\S+)$/m);

    await sleep(5_000); // what the scrape did to the libvirt links shows in the log
    phases.end = at();

    const log = readFileSync(logFile, 'utf8');
    const count = (msg: string) => log.split(`"msg":"${msg}"`).length - 1;
    const result = {
      bench: 'scale',
      hosts: HOSTS,
      vms: HOSTS * VMS_PER_HOST,
      ha_vms: NETNS ? HOSTS * HA_VMS_PER_HOST : 0,
      vms_listed: listed,
      inventory_interval_ms: INTERVAL_MS,
      machine_cores: Number(readFileSync('/proc/cpuinfo', 'utf8').match(/^processor\s*:/gm)?.length ?? 0),
      readyz_ms: Math.round(readyzMs),
      cold_start_ready_ms: Math.round(fullMs),
      cold_start_goal_ms: 10_000,
      steady_window_s: r1(wallS),
      leader_cpu_cores: cpu.keizokud,
      leader_cpu_goal_cores: 1.0,
      fping_cpu_cores: cpu.fping,
      sim_cpu_cores: cpu.sim,
      redis_cpu_cores: cpu.redis,
      leader_rss_mib: r1(Math.max(rssMax, rssSteady.now)),
      leader_rss_goal_mib: 1_500,
      leader_rss_at_ready_mib: r1(rssAtReady.now),
      leader_rss_peak_mib: r1(rssEnd.peak),
      inventory_pass_mean_ms: Math.round((passSum / passCount) * 1000),
      inventory_passes: passCount,
      inventory_passes_partial: Number.isNaN(partial) ? 0 : partial,
      metrics_scrape_ms: Math.round(scrapeMs),
      metrics_scrape_kib: Math.round(Buffer.byteLength(metricsText) / 1024),
      vm_list_requests: list.requests.total,
      vm_list_p50_ms: list.latency.p50,
      vm_list_p99_ms: list.latency.p99,
      vm_list_response_kib: Math.round(list.throughput.total / 1024 / Math.max(1, list.requests.total)),
      leader_cpu_cores_while_listing: Number(listCores.toFixed(3)),
      readyz_p50_ms: r1(median(readyzLatency)),
      readyz_max_ms: r1(Math.max(...readyzLatency)),
      libvirt_connections_lost_before_scrape: lostBefore,
      libvirt_connections_lost_after_scrape: count('libvirt connection lost') - lostBefore,
      // Verdicts of a host that answers all along (every simulated host does).
      host_verdicts_suspect: log.split('"health":"suspect"').length - 1,
      leadership_lost: count('no longer leader'),
      slow_loop_passes: count('slow loop pass'),
      cpu_profile: CPU_PROF_DIR ?? null,
      phase_starts_ms: phases,
      inventory_host_failures: count('inventory of host failed'),
      evacuate_50_hosts_ms: NOT_BUILT,
      failover_20_hosts_plan_ms: NETNS ? 'not measured' : 'needs root (a network namespace)',
      failover_20_hosts_all_started_ms: NETNS ? 'not measured' : 'needs root (a network namespace)',
      drs_pass_ms: NOT_BUILT,
      note: 'evacuation and DRS figures need migrations in the simulated hosts, which they do not implement yet',
    };
    if (NETNS && FAILED_HOSTS > 0) {
      phases.failover = at();
      // A failover that does not finish leaves its keys unmeasured; the other figures still print.
      const failover = await runFailoverPhase({
        dir,
        api,
        viewerToken: token,
        probeToken,
        hosts: HOSTS,
        vmsPerHost: VMS_PER_HOST,
        haVmsPerHost: HA_VMS_PER_HOST,
        failed: FAILED_HOSTS,
        sim: simCommand,
        timeoutMs: FAILOVER_TIMEOUT_MS,
      }).catch((e: unknown) => {
        const why = (e instanceof Error ? e.message : String(e)).split('\n')[0]!;
        return {
          failover_20_hosts_plan_ms: `not measured: ${why}`,
          failover_20_hosts_all_started_ms: 'not measured',
        };
      });
      Object.assign(result, failover);
      phases.failover_end = at();
    }
    const s0 = performance.now();
    await stopChild(kz, STOP_GRACE_MS); // under --cpu-prof the profile is written at its exit
    Object.assign(result, { stop_ms: Math.round(performance.now() - s0), stop_signal: kz.signalCode });
    console.log(JSON.stringify(result));
  } finally {
    for (const c of children.reverse()) await stopChild(c);
    // keizokud's log is kept for reading later (artifacts/ is not committed).
    const logFile = join(dir, 'keizokud.log');
    if (existsSync(logFile)) {
      mkdirSync('artifacts/bench-scale', { recursive: true });
      copyFileSync(logFile, `artifacts/bench-scale/keizokud-${Date.now()}.log`);
    }
    await redis.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The redis-server listening on this port (started by startRedis, a child of this process). */
function redisPid(port: number): number | null {
  for (const c of childPids(process.pid)) {
    try {
      // redis-server rewrites its command line as its title: "redis-server 127.0.0.1:PORT".
      const cmd = readFileSync(`/proc/${c}/cmdline`, 'utf8');
      if (commOf(c) === 'redis-server' && cmd.includes(`:${port}`)) return c;
    } catch {
      // gone
    }
  }
  return null;
}

const run = !NETNS && process.getuid?.() === 0 ? inNetns().then((code) => process.exit(code)) : main();
run.catch((e: unknown) => {
  console.error(`bench:scale: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
});
