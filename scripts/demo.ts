// The demo: a lab of 3 libvirt hosts over 2 sites with four guests; Redis, keizokud (TLS to
// every host) and a keizoku-probe agent following keizokud's VM list; host h1 put into
// maintenance (its VMs evacuated live, each move measured by the probe), then a
// live-migration drill whose table is printed with pass/fail against the VM's tier. On a
// terminal everything stays up until Ctrl-C, then all of it is torn down.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createVm, downLab, freePort, labKeizokudConfig, readState, upLab } from '../lab/index.ts';

const id = Number(process.env.KEIZOKU_LAB_ID ?? 0);
const DRILL_MOVES = Number(process.env.DEMO_DRILL_MOVES ?? 10);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(fn: () => Promise<T | undefined>, timeoutMs: number): Promise<T | undefined> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return v;
    await sleep(250);
  }
  return undefined;
}

async function main() {
  const dir = mkdtempSync(join(tmpdir(), 'keizoku-demo-'));
  const children: ChildProcess[] = [];
  let torn = false;
  const teardown = async () => {
    if (torn) return;
    torn = true;
    for (const c of children.reverse()) if (c.exitCode === null) c.kill('SIGTERM');
    await sleep(1_000);
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    await downLab(id);
    rmSync(dir, { recursive: true, force: true });
    console.log(`== lab ${id}, keizokud, keizoku-probe and redis torn down`);
  };
  process.on('SIGINT', () => void teardown().then(() => process.exit(130)));
  process.on('SIGTERM', () => void teardown().then(() => process.exit(143)));

  console.log(`== lab ${id}: 3 libvirt hosts over 2 sites (WAN shaped to 100 Mbit/s)`);
  await upLab({ id, hosts: 3, sites: 2, owner: 'demo' });
  try {
    await Promise.all([
      createVm(id, { name: 'web1', host: 'h1' }),
      createVm(id, { name: 'web2', host: 'h1' }),
      createVm(id, { name: 'batch1', host: 'h2' }),
      createVm(id, { name: 'db1', host: 'h3' }),
    ]);
    const state = readState(id)!;
    for (const h of state.layout.hosts) console.log(`   ${h.name} (${h.site}) ${h.tlsUri}`);
    for (const v of state.vms) console.log(`   guest ${v.name} at ${v.address} on ${v.createdOn}`);

    const redisPort = await freePort();
    children.push(
      spawn(
        'redis-server',
        [
          '--port',
          String(redisPort),
          '--bind',
          '127.0.0.1',
          '--save',
          '',
          '--appendonly',
          'no',
          '--dir',
          dir,
        ],
        { stdio: 'ignore' },
      ),
    );
    const [apiPort, metricsPort, probePort] = [await freePort(), await freePort(), await freePort()];
    const config = labKeizokudConfig(state, {
      redisUrl: `redis://127.0.0.1:${redisPort}/0`,
      metricsPort,
      apiPort,
      tls: true,
      extra: {
        loops: { inventoryIntervalMs: 2_000, limitsIntervalMs: 5_000 },
        audit: { dir: join(dir, 'audit') },
        drills: { dir: join(dir, 'drills') },
        migration: { sessionCheckPort: 7 },
        vms: [
          { match: { name: 'web*' }, tier: 'frontend', limits: 'standard' },
          { match: { name: 'db1' }, tier: 'core', limits: 'standard' },
          { match: { name: 'batch*' }, tier: 'low', limits: 'capped-50' },
        ],
      },
    });
    const configFile = join(dir, 'keizokud.yaml');
    writeFileSync(configFile, JSON.stringify(config, null, 2));
    const log = (name: string) => join(dir, `${name}.log`);
    const daemon = (args: string[], name: string) => {
      const fd = openSync(log(name), 'a');
      const c = spawn('node', args, { stdio: ['ignore', fd, fd] });
      children.push(c);
      return c;
    };
    daemon(['bin/keizokud.mjs', '--config', configFile], 'keizokud');
    const url = `http://127.0.0.1:${apiPort}`;
    const token = (name: string, role: string) => {
      const r = spawnSync(
        'node',
        ['bin/keizokud.mjs', 'token', 'create', '--config', configFile, '--name', name, '--role', role],
        {
          encoding: 'utf8',
        },
      );
      if (r.status !== 0) throw new Error(`token create: ${r.stderr}`);
      const file = join(dir, `${name}.token`);
      writeFileSync(file, r.stdout, { mode: 0o600 });
      return file;
    };
    const adminToken = token('demo-admin', 'admin');
    token('lab-probe', 'probe');
    writeFileSync(
      join(dir, 'probe.yaml'),
      `name: lab-probe\nsite: dc1\nlisten: 127.0.0.1:${probePort}\nintervalMs: 20\nfollowController: true\ncontroller: { url: "${url}", tokenFile: lab-probe.token, refreshSec: 2 }\n`,
    );
    daemon(['bin/keizoku-probe.mjs', '--config', join(dir, 'probe.yaml')], 'keizoku-probe');
    const env = { ...process.env, KEIZOKU_URL: url, KEIZOKU_CONFIG: '', KEIZOKU_TOKEN: '' };
    const cli = (...args: string[]) => {
      console.log(`$ keizoku ${args.join(' ')}`);
      return spawnSync('node', ['bin/keizoku.mjs', '--token-file', adminToken, ...args], {
        stdio: 'inherit',
        env,
      }).status;
    };
    const authed = (path: string) =>
      fetch(url + path, {
        headers: { authorization: `Bearer ${readFileSync(adminToken, 'utf8').trim()}` },
      }).then((r) => r.json() as Promise<Record<string, unknown>>);
    const ready = await until(async () => {
      const hosts = (await authed('/v1/hosts')).hosts as { health: string }[];
      const vms = (await authed('/v1/vms')).vms as { state: string }[];
      const probes = (await authed('/v1/probes')).probes as unknown[];
      const probing = await fetch(`http://127.0.0.1:${probePort}/v1/targets`).then(
        (r) => r.json() as Promise<{ targets: { samples: number }[] }>,
      );
      return hosts.every((h) => h.health === 'up') &&
        vms.filter((v) => v.state === 'running').length === 4 &&
        probes.length === 1 &&
        probing.targets.length === 4 &&
        probing.targets.every((t) => t.samples > 50)
        ? true
        : undefined;
    }, 60_000);
    if (!ready) throw new Error(`keizokud and the probe did not see the lab within 60 s (logs in ${dir})`);
    console.log(
      `== keizokud API ${url}, /metrics http://127.0.0.1:${metricsPort}/metrics; keizoku-probe http://127.0.0.1:${probePort}/metrics`,
    );
    cli('host', 'list');
    cli('vm', 'list');

    console.log('== maintenance of h1: its VMs move live to the other host of dc1, measured by the probe');
    cli('host', 'maintenance', 'h1', '--enter', '--wait');
    cli('host', 'list');
    cli('host', 'maintenance', 'h1', '--exit');

    console.log(
      `== a live-migration drill of ${DRILL_MOVES} moves of web1, judged against its tier (frontend: outage <= 2 s)`,
    );
    const drill = cli(
      'drill',
      'run',
      'live-migration',
      '--vm',
      'web1',
      '--count',
      String(DRILL_MOVES),
      '--pause',
      '500',
      '--wait',
    );
    console.log(`== drill ${drill === 0 ? 'passed' : 'did not pass'}; reports in ${join(dir, 'drills')}`);
    cli('tier', 'compliance');

    if (process.stdin.isTTY) {
      console.log(
        `== everything stays up. Try: KEIZOKU_URL=${url} npx keizoku --token-file ${adminToken} job list | audit | drill list
   curl http://127.0.0.1:${metricsPort}/metrics; npm run lab -- status --lab ${id}. Ctrl-C tears it all down.`,
      );
      await new Promise(() => undefined);
    }
  } finally {
    await teardown();
  }
}

main().catch((e: unknown) => {
  console.error(`demo: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
});
