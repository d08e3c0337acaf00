import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LabState } from '../../lab/index.ts';
import { type RunningKeizokud, startKeizokud } from '../support/keizokud.ts';
import { sharedLab } from '../support/lab-fixture.ts';
import { recordChild } from '../support/process.ts';
import { startRedis } from '../support/redis.ts';

/**
 * keizokud reaches h1 over TLS through a proxy that resets 50 connections at random points of
 * the connect (TCP, TLS handshake, libvirtd's verdict byte, first RPCs): it must stay up and
 * reconnect. The proxy runs in h1's network namespace, on h1's management address: the
 * lab's server certificates name that address only (an IP SAN), so that is where the TLS
 * name check passes; its traffic stays inside the lab.
 */
const RESETS = 50;

async function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch((e: Error) => {
      if (e.message.startsWith('keizokud died')) throw e;
      return undefined;
    });
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('keizokud behind a TLS link that keeps resetting', () => {
  let lab: LabState;
  let redis: Awaited<ReturnType<typeof startRedis>>;
  let proxy: ChildProcess;
  let kz: RunningKeizokud;
  let resets = 0;
  let resetsDoneAt = 0;
  let proxyOut = '';

  beforeAll(async () => {
    lab = sharedLab();
    redis = await startRedis();
    const h1 = lab.layout.hosts[0]!;
    proxy = spawn(
      'ip',
      [
        'netns',
        'exec',
        h1.netns,
        'node',
        '--import',
        'tsx',
        'test/support/reset-proxy-main.ts',
        h1.mgmtAddress,
        `${h1.mgmtAddress}:16514`,
        String(RESETS),
        String(Date.now() % 100_000),
      ],
      { stdio: ['pipe', 'pipe', 'pipe'] },
    );
    recordChild(proxy.pid, 'reset-proxy'); // ip netns exec runs node in its own place
    proxy.stderr!.on('data', (b: Buffer) => (proxyOut += b.toString()));
    const port = await new Promise<number>((resolve, reject) => {
      proxy.once('exit', (code) => reject(new Error(`reset proxy exited (${code}): ${proxyOut}`)));
      createInterface({ input: proxy.stdout! }).on('line', (line) => {
        const m = JSON.parse(line) as { port?: number; resets?: number };
        if (m.port) resolve(m.port);
        if (m.resets !== undefined) {
          resets = m.resets;
          if (resets >= RESETS && !resetsDoneAt) resetsDoneAt = Date.now();
        }
      });
    });
    const pki = lab.pki!;
    kz = await startKeizokud(
      lab,
      redis.url,
      { libvirt: { reconnectMinMs: 100, reconnectMaxMs: 400 } },
      (config) => {
        const libvirt = config.libvirt as Record<string, unknown>;
        libvirt.tls = { caFile: pki.caFile, certFile: pki.clientCertFile, keyFile: pki.clientKeyFile };
        const host = (config.hosts as Record<string, unknown>[]).find((h) => h.name === h1.name)!;
        host.uri = `qemu+tls://${h1.mgmtAddress}:${port}/system`;
        host.migrationUri = h1.uri;
      },
    );
  });

  afterAll(async () => {
    await kz?.stop();
    proxy?.stdin?.end();
    if (proxy && proxy.exitCode === null) proxy.kill();
    await redis?.stop();
  });

  it('F1: 50 resets at random points of the TLS connect: keizokud stays up, /healthz answers, and the host is up again', async () => {
    const token = await kz.token('viewer');
    /** h1 as GET /v1/hosts shows it: up, and observed after `sinceMs`. */
    const h1UpSince = (sinceMs: number) => async () => {
      const r = await kz.request('GET', '/v1/hosts', token);
      const h = r.body.hosts.find((x: { name: string }) => x.name === 'h1');
      return h?.health === 'up' && new Date(h.observedAt).getTime() > sinceMs ? true : undefined;
    };
    await until('h1 up through the proxy before any reset', h1UpSince(0), 30_000);
    const before = kz.output().length;
    proxy.stdin!.write('arm\n');
    await until(
      `${RESETS} resets`,
      async () => {
        if (!kz.alive())
          throw new Error(`keizokud died after ${resets} resets:\n${kz.output().slice(-3000)}`);
        return resets >= RESETS ? true : undefined;
      },
      150_000,
    );
    expect(resets).toBe(RESETS);
    expect(kz.alive()).toBe(true);
    expect((await kz.request('GET', '/healthz', null)).status).toBe(200);
    // Every connection before the 50th reset was reset, so a read after it is a reconnect.
    await until('h1 up over a connection made after the resets', h1UpSince(resetsDoneAt), 30_000);
    expect(kz.output().slice(before)).toMatch(
      /"host":"h1".*"connected to libvirt"|"connected to libvirt".*"host":"h1"/,
    );
    expect(kz.alive()).toBe(true);
    expect(kz.output()).not.toMatch(/uncaught exception|unhandled promise rejection/);
  });
});
