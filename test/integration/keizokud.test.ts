import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createVm, freePort, type LabState, labKeizokudConfig, readState, virsh } from '../../lab/index.ts';
import { sharedLab } from '../support/lab-fixture.ts';
import { recordChild } from '../support/process.ts';
import { startRedis } from '../support/redis.ts';

const INVENTORY_MS = 2_000;

/** The metric lines of one family, as {labels -> value}. */
function samples(text: string, name: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of text.matchAll(new RegExp(`^${name}\\{([^}]*)\\} (\\S+)$`, 'gm'))) out[m[1]!] = Number(m[2]);
  return out;
}

async function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('keizokud inventory against the lab', () => {
  let lab: LabState;
  let dir: string;
  let daemon: ChildProcess;
  let url: string;
  let stderr = '';
  let stdout = '';
  let redis: Awaited<ReturnType<typeof startRedis>>;

  beforeAll(async () => {
    redis = await startRedis();
    lab = sharedLab();
    await createVm(lab.id, { name: 'kz-a', host: 'h1' });
    lab = readState(lab.id)!;
    dir = mkdtempSync(join(tmpdir(), 'keizokud-test-'));
    const port = await freePort();
    url = `http://127.0.0.1:${port}/metrics`;
    // TLS to every host, as keizokud would reach real hosts.
    const config = labKeizokudConfig(lab, {
      redisUrl: redis.url,
      metricsPort: port,
      apiPort: await freePort(),
      tls: true,
      extra: {
        libvirt: { keepaliveIntervalSec: 1, keepaliveCount: 3 },
        loops: { inventoryIntervalMs: INVENTORY_MS },
        vms: [{ match: { name: 'kz-*' }, tier: 'frontend', limits: 'standard', haPriority: 500 }],
      },
    });
    writeFileSync(join(dir, 'keizokud.yaml'), JSON.stringify(config, null, 2));
    daemon = spawn('node', ['bin/keizokud.mjs', '--config', join(dir, 'keizokud.yaml')], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    recordChild(daemon.pid, 'keizokud');
    daemon.stdout!.on('data', (b: Buffer) => {
      stdout += b.toString();
    });
    daemon.stderr!.on('data', (b: Buffer) => {
      stderr += b.toString();
    });
  });

  afterAll(async () => {
    if (daemon && daemon.exitCode === null) daemon.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    await redis?.stop();
  });

  const scrape = async () => (await fetch(url)).text();

  it('discovers every host over TLS and every VM', async () => {
    const text = await until(
      'all hosts up and kz-a listed',
      async () => {
        const t = await scrape();
        const up = samples(t, 'keizoku_host_up');
        const ok = lab.layout.hosts.every((h) => up[`host="${h.name}",site="${h.site}"`] === 1);
        return ok && t.includes('keizoku_vm_memory_bytes{vm="kz-a",host="h1"}') ? t : undefined;
      },
      30_000,
    );
    expect(samples(text, 'keizoku_vm_memory_bytes')['vm="kz-a",host="h1"']).toBe(96 * 1024 * 1024);
    expect(Object.keys(samples(text, 'keizoku_host_memory_bytes'))).toHaveLength(3);
    // The first pass may count as partial: a host whose first TLS connect outlasted the interval.
    expect(text).toMatch(/keizoku_loop_runs_total\{loop="inventory",result="(success|partial)"\} \d+/);
    expect(text).toMatch(
      /keizoku_libvirt_call_duration_seconds_count\{host="h1",call="all_domain_stats"\} \d+/,
    );
  });

  it('keeps desired state, placement and the last domain XML of managed VMs in Redis', async () => {
    const r = new Redis(redis.url);
    try {
      const key = (what: string) => `keizoku:default:vm:kz-a:${what}`;
      let placement: string | null = null;
      for (let i = 0; i < 100 && !(placement && (await r.get(key('domain')))); i++) {
        await new Promise((res) => setTimeout(res, 100));
        placement = await r.get(key('placement'));
      }
      expect(JSON.parse(placement!)).toMatchObject({ host: 'h1' });
      expect(JSON.parse((await r.get(key('desired')))!)).toEqual({
        tier: 'frontend',
        limits: 'standard',
        homeSite: null,
        haPriority: 500,
      });
      const domain = JSON.parse((await r.get(key('domain')))!);
      expect(domain.host).toBe('h1');
      expect(domain.xml).toContain('<name>kz-a</name>');
      const history = await r.xrange(key('history'), '-', '+');
      expect(history.map(([, f]) => f[3])).toEqual(['placed']);
    } finally {
      r.disconnect();
    }
  });

  it('reflects a new VM and a killed VM by the second inventory pass after the change', async () => {
    // "Within one inventory interval", counted in the daemon's own passes rather than in ms (a
    // guest booting on a busy machine slows every pass): a pass in flight at the change may have
    // read the host before it, the next successful one reads it after. Passes publish their
    // series before they are counted, so no scrape may show two successful passes since the
    // change without it.
    const successes = (text: string) =>
      samples(text, 'keizoku_loop_runs_total')['loop="inventory",result="success"'] ?? 0;
    const passesUntil = async (what: string, seen: (text: string) => boolean) => {
      const start = successes(await scrape());
      const t = Date.now();
      let unseenAfter = 0; // successful passes since the change, at the last scrape without it
      await until(
        what,
        async () => {
          const text = await scrape();
          if (seen(text)) return true;
          unseenAfter = successes(text) - start;
          return undefined;
        },
        30_000,
      );
      return { unseenAfter, ms: Date.now() - t };
    };
    await createVm(lab.id, { name: 'kz-b', host: 'h2', wait: false }); // returns once libvirt runs it
    const listed = await passesUntil('kz-b listed', (text) => text.includes('vm="kz-b",host="h2"'));
    await virsh(lab.layout.hosts[0]!, ['destroy', 'kz-a']);
    const shutoff = await passesUntil(
      'kz-a shut off',
      (text) => (samples(text, 'keizoku_host_vms')['host="h1",state="shutoff"'] ?? 0) >= 1,
    );
    const figures = `listed after ${listed.ms} ms, unseen after ${listed.unseenAfter} passes; shut off after ${shutoff.ms} ms, unseen after ${shutoff.unseenAfter} passes (interval ${INVENTORY_MS} ms)`;
    console.log(`inventory: ${figures}`);
    expect(listed.unseenAfter, figures).toBeLessThan(2);
    expect(shutoff.unseenAfter, figures).toBeLessThan(2);
  });

  it('drains and exits 0 on SIGTERM, with structured logs free of key material', async () => {
    const exited = new Promise<number | null>((r) => daemon.once('exit', (code) => r(code)));
    daemon.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(stderr).toBe(''); // no warnings, no stack traces
    // Every log line is a JSON object; none carries key material.
    const lines = stdout.trim().split('\n');
    expect(lines.length).toBeGreaterThan(3);
    const logs = lines.map((l) => JSON.parse(l) as { msg: string });
    expect(logs.map((l) => l.msg)).toEqual(
      expect.arrayContaining([
        'keizokud started',
        'connected to libvirt',
        'elected leader',
        'draining',
        'stopped',
      ]),
    );
    const key = readFileSync(lab.pki!.clientKeyFile, 'utf8').split('\n')[1]!;
    expect(stdout).not.toContain('PRIVATE KEY');
    expect(stdout).not.toContain(key);
  });
});

describe('keizokud --check-config', () => {
  const bad: [string, RegExp][] = [
    ['missing-field.yaml', /missing-field\.yaml: \S+: /],
    ['wrong-type.yaml', /wrong-type\.yaml: \S+: expected/],
    ['unknown-tier.yaml', /unknown-tier\.yaml: vms\[\d+\]\.tier: /],
    ['duplicate-host.yaml', /duplicate-host\.yaml: hosts\[\d+\]\.name: /],
    ['bad-uri.yaml', /bad-uri\.yaml: hosts\[0\]\.uri: expected a libvirt URI/],
    ['tcp-without-insecure.yaml', /tcp-without-insecure\.yaml: hosts\[\d+\]\.insecure: /],
    ['unknown-site.yaml', /unknown-site\.yaml: hosts\[\d+\]\.site: /],
    ['unknown-field.yaml', /unknown-field\.yaml: leader\.leaseMS: unknown field/],
    ['yaml-syntax.yaml', /yaml-syntax\.yaml: YAML syntax error at line \d+, column \d+/],
    ['negative-interval.yaml', /negative-interval\.yaml: loops\.\w+: /],
    ['bad-ha-priority.yaml', /bad-ha-priority\.yaml: vms\[\d+\]\.haPriority: /],
  ];
  for (const [file, msg] of bad) {
    it(`rejects ${file} with one line naming file and path`, () => {
      const r = spawnSync(
        'node',
        ['bin/keizokud.mjs', '--config', `test/fixtures/config/bad/${file}`, '--check-config'],
        { encoding: 'utf8' },
      );
      expect(r.status).toBe(1);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(msg);
      expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
    });
  }

  it('accepts the example config', () => {
    const r = spawnSync(
      'node',
      ['bin/keizokud.mjs', '--config', 'examples/keizokud.yaml', '--check-config'],
      { encoding: 'utf8' },
    );
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/ok \(3 hosts, 2 sites\)/);
  });
});
