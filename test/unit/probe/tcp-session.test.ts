import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { MAX_LINE_CHARS, TcpSessionCheck } from '../../../src/probe/tcp-session.ts';
import { guest } from './echo-guest.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('TCP session check against an untrusted echo service (F8)', () => {
  let g: Awaited<ReturnType<typeof guest>> | null = null;
  afterEach(async () => {
    await g?.close();
    g = null;
  });

  it('F8: bytes streamed with no newline keep the read buffer capped and end the check with a clear reason', async () => {
    let sent = 0;
    g = await guest((s) => {
      const chunk = Buffer.alloc(64 * 1024, 'y');
      const pump = () => {
        while (!s.destroyed && sent < 32 * 1024 * 1024) {
          sent += chunk.length;
          if (!s.write(chunk)) return void s.once('drain', pump);
        }
      };
      pump();
    });
    const check = new TcpSessionCheck({
      host: '127.0.0.1',
      port: g.port,
      heartbeatMs: 20,
      breakAfterMs: 5_000,
    });
    await check.start();
    // The controller hangs up on the guest rather than reading on.
    expect(await g.allClosed()).toBe(true);
    await sleep(50);
    expect((check as unknown as { buffer: string }).buffer.length).toBeLessThanOrEqual(MAX_LINE_CHARS);
    expect(sent).toBeLessThan(32 * 1024 * 1024);
    const r = check.stop();
    expect(r.survived).toBe(false);
    expect(r.reason).toBe(`the echo service sent more than ${MAX_LINE_CHARS} characters without a newline`);
  });

  it('F8: an echo service that answers in lines still counts its echoes, and stop() may be called twice', async () => {
    g = await guest((s) => s.pipe(s));
    const check = new TcpSessionCheck({
      host: '127.0.0.1',
      port: g.port,
      heartbeatMs: 10,
      breakAfterMs: 5_000,
    });
    await check.start();
    await sleep(200);
    const r = check.stop();
    expect(r).toMatchObject({ survived: true });
    expect(r.echoed).toBeGreaterThan(3);
    expect(await g.allClosed()).toBe(true);
    expect(check.stop().heartbeats).toBe(r.heartbeats);
  });

  it('tries again while the guest is unreachable, and connects once it answers', async () => {
    g = await guest((s) => s.pipe(s));
    let attempts = 0;
    const check = new TcpSessionCheck({
      host: '127.0.0.1',
      port: g.port,
      heartbeatMs: 10,
      breakAfterMs: 5_000,
      connectTimeoutMs: 5_000,
      attempt: async (host, port) => {
        if (++attempts < 3)
          throw Object.assign(new Error(`connect EHOSTUNREACH ${host}:${port}`), { code: 'EHOSTUNREACH' });
        return await new Promise<Socket>((resolve, reject) => {
          const s = connect({ host, port }, () => resolve(s));
          s.once('error', reject);
        });
      },
    });
    await check.start();
    await sleep(100);
    const r = check.stop();
    expect(attempts).toBe(3);
    expect(r).toMatchObject({ survived: true });
    expect(r.echoed).toBeGreaterThan(2);
  });

  it('gives up at the connect timeout with the attempts made and the last error', async () => {
    let attempts = 0;
    const check = new TcpSessionCheck({
      host: '127.0.0.1',
      port: 9,
      heartbeatMs: 10,
      breakAfterMs: 5_000,
      connectTimeoutMs: 800,
      attempt: async () => {
        attempts++;
        throw Object.assign(new Error('connect EHOSTUNREACH'), { code: 'EHOSTUNREACH' });
      },
    });
    await expect(check.start()).rejects.toThrow(
      /^tcp 127\.0\.0\.1:9: no connection within 800 ms \([2-9] attempts; last: connect EHOSTUNREACH\)$/,
    );
    expect(attempts).toBeGreaterThan(1);
    expect(check.stop().survived).toBe(false);
  });

  it('a refusal ends it at once: the guest has no echo service on that port', async () => {
    g = await guest((s) => s.pipe(s));
    const port = g.port;
    await g.close();
    g = null;
    const check = new TcpSessionCheck({
      host: '127.0.0.1',
      port,
      heartbeatMs: 10,
      breakAfterMs: 5_000,
      connectTimeoutMs: 5_000,
    });
    const t0 = Date.now();
    await expect(check.start()).rejects.toThrow(
      new RegExp(`^tcp 127\\.0\\.0\\.1:${port}: connect ECONNREFUSED`),
    );
    // Short of the connect timeout: it did not go on trying until then.
    expect(Date.now() - t0).toBeLessThan(5_000);
  });
});
