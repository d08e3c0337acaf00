import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { connectLibvirt } from '../../../src/libvirt/index.ts';
import type { Handler } from '../../support/fake-libvirt-server.ts';
import {
  makeTestPki,
  openHandler,
  startFakeTlsLibvirt,
  type TestPki,
} from '../../support/fake-libvirt-tls.ts';
import { type ResetPoint, type ResetProxy, startResetProxy } from '../../support/reset-proxy.ts';

let dir: string;
let pki: TestPki;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'kz-tls-reset-'));
  pki = makeTestPki(dir);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// A reset must fail the dial, never reach the process: any uncaught error fails the test.
const uncaught: unknown[] = [];
const onUncaught = (e: unknown) => uncaught.push(e);
beforeEach(() => {
  uncaught.length = 0;
  process.on('uncaughtException', onUncaught);
});
let stops: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const s of stops.reverse()) await s();
  stops = [];
  // Give a late 'error' event the chance to surface before judging.
  await new Promise((r) => setTimeout(r, 50));
  process.off('uncaughtException', onUncaught);
  expect(uncaught).toEqual([]);
});

/** The fake libvirtd behind a proxy that resets connection n at plan(n). */
async function rig(
  plan: (n: number) => ResetPoint | null,
  o: { handler?: Handler; onSecure?: Parameters<typeof startFakeTlsLibvirt>[2] } = {},
) {
  const server = await startFakeTlsLibvirt(pki, o.handler ?? openHandler, o.onSecure);
  const proxy = await startResetProxy({
    listenHost: '127.0.0.1',
    targetHost: '127.0.0.1',
    targetPort: server.port,
    plan,
  });
  stops.push(server.stop, proxy.close);
  const dial = () =>
    connectLibvirt(`qemu+tls://127.0.0.1:${proxy.port}/system`, {
      tls: pki.client,
      connectTimeoutMs: 3_000,
    });
  return { proxy, dial };
}

describe('TLS transport under connection resets', () => {
  it('F1: without a reset the fake libvirtd accepts the dial (the rig is sound)', async () => {
    const { dial } = await rig(() => null);
    const c = await dial();
    await c.close();
  });

  it('F1: a reset before the TLS handshake is a failed dial', async () => {
    const { dial, proxy } = await rig(() => ({ at: 'accept' }));
    await expect(dial()).rejects.toThrow(/tls 127\.0\.0\.1/);
    expect(proxy.resets).toBe(1);
  });

  it('F1: a reset in the middle of the TLS handshake is a failed dial', async () => {
    const { dial, proxy } = await rig(() => ({ at: 'bytes', direction: 'toClient', after: 60 }));
    await expect(dial()).rejects.toThrow(/tls 127\.0\.0\.1/);
    expect(proxy.resets).toBe(1);
  });

  it('F1: a reset after the TLS handshake before the verdict byte is a failed dial', async () => {
    let proxy: ResetProxy | undefined;
    const r = await rig(() => ({ at: 'manual' }), {
      // The server has finished its side of the handshake, so the client is waiting for the verdict.
      onSecure: () => {
        setTimeout(() => proxy?.resetOpen(), 20);
        return false;
      },
    });
    proxy = r.proxy;
    await expect(r.dial()).rejects.toThrow(/tls 127\.0\.0\.1:\d+: .*(ECONNRESET|closed)/);
    expect(proxy.resets).toBe(1);
  });

  it('F1: a reset after the verdict byte, before the first reply, is a failed dial', async () => {
    let proxy: ResetProxy | undefined;
    const r = await rig(() => ({ at: 'manual' }), { handler: () => proxy?.resetOpen() });
    proxy = r.proxy;
    await expect(r.dial()).rejects.toThrow(/connection (error|closed)/);
    expect(proxy.resets).toBe(1);
  });

  it('F1: 50 resets at random byte offsets are 50 failed dials, then the next dial connects', async () => {
    // Seeded, so a failure can be replayed: offsets over the whole open (handshake, verdict, RPC).
    let seed = 0x2f6b;
    const random = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed / 0x7fffffff;
    };
    const { dial, proxy } = await rig((n) =>
      n < 50
        ? {
            at: 'bytes',
            direction: random() < 0.5 ? 'toServer' : 'toClient',
            after: Math.floor(random() * 1500),
          }
        : null,
    );
    let failed = 0;
    for (let i = 0; i < 50; i++) {
      const c = await dial().catch(() => null);
      if (c === null) failed++;
      else await c.close();
    }
    // An offset beyond everything the open exchanges lets a dial through: that is fine, a crash is not.
    expect(failed).toBeGreaterThan(40);
    expect(proxy.connections).toBe(50);
    const c = await dial();
    await c.close();
  });
});
