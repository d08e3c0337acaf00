import { createServer, type Server, type ServerResponse } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { probeSeries, probeWindows } from '../../../src/daemon/probe-window.ts';
import type { ProbeRegistration } from '../../../src/store/probe-book.ts';

/**
 * keizokud asking agents for windows: stand-in agents (one server each) that redirect, answer
 * too much, too slowly or the wrong shape are left out, and only the figures of a good answer
 * are kept.
 */

const figures = {
  fromMs: 1_000,
  toMs: 2_000,
  sent: 50,
  lost: 2,
  lossRate: 0.04,
  rttMinMs: 0.2,
  rttMaxMs: 1.5,
  rttAvgMs: 0.4,
  outageMs: 40,
  outageStartMs: 1_500,
  outageEndMs: 1_540,
  outages: [{ startMs: 1_500, endMs: 1_540, durationMs: 40, lost: 2, open: false, atWindowStart: false }],
};
const json = { 'content-type': 'application/json' };

const behaviours: Record<string, (res: ServerResponse) => void> = {
  good: (res) =>
    res.writeHead(200, json).end(
      JSON.stringify({
        ...figures,
        intervalMs: 20,
        target: 'vm1',
        addresses: ['10.0.0.1'],
        note: '<script>',
        probe: 'someone-else',
        samples: [{ tMs: 1_000, rttMs: 0.3 }],
      }),
    ),
  redirect: (res) => res.writeHead(302, { location: `${urls.target}/v1/window` }).end(),
  huge: (res) => res.writeHead(200, json).end(JSON.stringify({ ...figures, pad: 'x'.repeat(300 * 1024) })),
  // No content-length: the cap applies while reading.
  stream: (res) => {
    res.writeHead(200, json);
    // Valid figures but too long: only the cap keeps it out.
    res.write(`${JSON.stringify(figures).slice(0, -1)},"pad":"`);
    let n = 0;
    const more = () => {
      if (n++ > 20 || res.destroyed) return void res.end('"}');
      res.write('x'.repeat(64 * 1024), () => setImmediate(more));
    };
    more();
  },
  wrong: (res) => res.writeHead(200, json).end(JSON.stringify({ ...figures, sent: 'many' })),
  // Answers well past the fetch's 1.5 s timeout below, which leaves a busy machine room to
  // answer the good probe (300 ms was too little beside a CPU burner).
  slow: (res) => setTimeout(() => res.writeHead(200, json).end(JSON.stringify(figures)), 5_000),
  target: (res) => res.writeHead(200, json).end(JSON.stringify(figures)),
};
const servers: Server[] = [];
const urls: Record<string, string> = {};
const hits: Record<string, string[]> = {};

beforeAll(async () => {
  for (const [name, play] of Object.entries(behaviours)) {
    hits[name] = [];
    const s = createServer((req, res) => {
      hits[name]!.push(req.url!);
      play(res);
    });
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    servers.push(s);
    urls[name] = `http://127.0.0.1:${(s.address() as { port: number }).port}`;
  }
});
afterAll(async () => {
  for (const s of servers) {
    s.closeAllConnections();
    await new Promise<void>((r) => s.close(() => r()));
  }
});

const book = (names: string[]) => ({
  live: async (): Promise<ProbeRegistration[]> =>
    names.map((name) => ({ name, site: 'dc1', url: urls[name]!, intervalMs: 20, seenAt: 0 })),
});

describe('probeWindows', () => {
  it('F5c: the window fetch refuses redirects and oversize replies', async () => {
    const names = ['good', 'redirect', 'huge', 'stream', 'wrong', 'slow'];
    const windows = await probeWindows(book(names), 'vm1', 1_000, 2_000, { timeoutMs: 1_500 });
    expect(windows.map((w) => w.probe)).toEqual(['good']);
    // The redirect was not followed.
    expect(hits.target).toEqual([]);
    expect(hits.redirect).toEqual(['/v1/window?target=vm1&from=1000&to=2000']);
    // Only the figures, under the registered name: nothing else from the reply.
    expect(windows[0]).toEqual({ probe: 'good', site: 'dc1', intervalMs: 20, ...figures });
  });

  it('F5c: a series is read through the same checks', async () => {
    expect(await probeSeries(book(['redirect', 'wrong']), 'vm1', 0, 1, { timeoutMs: 1_500 })).toEqual({
      rtt: [],
      outages: [],
    });
    const s = await probeSeries(book(['huge', 'good']), 'vm1', 0, 1, { maxBytes: 64 * 1024 });
    expect(s.rtt).toEqual([{ tMs: 1_000, rttMs: 0.3 }]);
  });
});
