import { createServer, type Server } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { HttpCheck } from '../../../src/probe/http-check.ts';
import { computeWindow } from '../../../src/probe/outage.ts';

let server: Server | null = null;
afterEach(() => new Promise<void>((r) => (server ? server.close(() => r()) : r())));

describe('HttpCheck against a local server', () => {
  it('counts wrong answers as lost probes and turns them into one outage', async () => {
    // Requests 10 to 19 get a 503: driven by count, not by time, so a busy machine changes nothing.
    let n = 0;
    server = createServer((_req, res) => {
      const i = n++;
      if (i >= 10 && i < 20) res.writeHead(503).end('down');
      else res.writeHead(200).end('keizoku-lab-guest web1');
    });
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/`;
    const check = new HttpCheck({ url, intervalMs: 20, timeoutMs: 2_000, expect: 'keizoku-lab-guest' });
    check.start();
    while (n < 30) await new Promise((r) => setTimeout(r, 20));
    const samples = await check.stop();
    const w = computeWindow(samples, { intervalMs: 20, timeoutMs: 2_000 });
    expect(w.perAddress[url]!.sent - w.perAddress[url]!.received).toBe(10);
    expect(samples.filter((s) => s.receivedAt === null).map((s) => s.seq)).toEqual([
      10, 11, 12, 13, 14, 15, 16, 17, 18, 19,
    ]);
    expect(w.outages).toHaveLength(1);
    expect(w.outages[0]!.open).toBe(false);
  });
});
