// The demo: a lab of 3 libvirt hosts over 2 sites, two guests, Redis and keizokud watching
// the hosts over TLS and capping one guest's CPU, then a live migration within a site and one
// across the WAN, each measured by libvirt and by ping from outside; keizokud re-applies the
// cap on the destination.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  createVm,
  downLab,
  freePort,
  labKeizokudConfig,
  labStatus,
  readState,
  upLab,
  virshMigrate,
} from '../lab/index.ts';

const id = Number(process.env.KEIZOKU_LAB_ID ?? 0);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(fn: () => Promise<T | undefined>, timeoutMs: number): Promise<T | undefined> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return v;
    await sleep(200);
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
    for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
    await sleep(500);
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    await downLab(id);
    rmSync(dir, { recursive: true, force: true });
    console.log(`== lab ${id}, keizokud and redis torn down`);
  };
  process.on('SIGINT', () => void teardown().then(() => process.exit(130)));
  process.on('SIGTERM', () => void teardown().then(() => process.exit(143)));

  console.log(`== lab ${id}: 3 libvirt hosts over 2 sites (WAN shaped to 100 Mbit/s)`);
  await upLab({ id, hosts: 3, sites: 2, owner: 'demo' });
  try {
    await Promise.all([
      createVm(id, { name: 'web1', host: 'h1' }),
      createVm(id, { name: 'core1', host: 'h3', disk: 'local' }),
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
    const metricsPort = await freePort();
    const config = labKeizokudConfig(state, {
      redisUrl: `redis://127.0.0.1:${redisPort}/0`,
      metricsPort,
      tls: true,
      extra: {
        loops: { inventoryIntervalMs: 2_000, limitsIntervalMs: 2_000 },
        vms: [{ match: { name: 'web1' }, tier: 'frontend', limits: 'capped-50' }],
      },
    });
    writeFileSync(join(dir, 'keizokud.yaml'), JSON.stringify(config, null, 2));
    children.push(
      spawn('node', ['bin/keizokud.mjs', '--config', join(dir, 'keizokud.yaml')], {
        stdio: ['ignore', 'ignore', 'inherit'],
      }),
    );
    const metricsUrl = `http://127.0.0.1:${metricsPort}/metrics`;
    const metrics = () => fetch(metricsUrl).then((r) => r.text());
    const compliance = (t: string) =>
      t.match(/keizoku_vm_limits_compliance\{vm="web1",host="(\w+)",status="(\w+)"\} 1/);
    const ready = await until(async () => {
      const t = await metrics();
      return (t.match(/^keizoku_host_up\{[^}]*\} 1$/gm)?.length ?? 0) === 3 && compliance(t) ? t : undefined;
    }, 30_000);
    if (!ready) throw new Error('keizokud did not report the lab within 30 s');
    const c = compliance(ready)!;
    console.log(
      `== keizokud (metrics at ${metricsUrl}): 3 hosts up over TLS; web1 limits profile capped-50 on ${c[1]}: ${c[2]}`,
    );

    console.log('== live migrations (virsh), pinged every 10 ms from outside the hosts');
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
    const after = await until(async () => {
      const m = compliance(await metrics());
      return m?.[1] === 'h2' ? m : undefined;
    }, 15_000);
    console.log(
      `== keizokud: web1 limits on ${after?.[1] ?? '?'} after the move: ${after?.[2] ?? 'not seen yet'}`,
    );
    const s = await labStatus(readState(id)!);
    for (const v of s.vms) console.log(`   ${v.name} now ${v.state} on ${v.host}`);
    if (process.stdin.isTTY) {
      console.log(
        `== lab ${id}, keizokud and redis stay up: 'npm run lab -- status', curl ${metricsUrl}. Ctrl-C tears it all down.`,
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
