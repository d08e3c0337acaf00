import { createServer, type IncomingMessage, type Server } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import type { OutageReport } from '../../../agents/probe/agent.ts';
import { ControllerLink } from '../../../agents/probe/controller.ts';

/** A stand-in keizokud: records requests, answers with what `reply` says. */
interface Seen {
  method: string;
  url: string;
  auth: string;
  body: unknown;
}
let server: Server | null = null;
afterEach(() => new Promise<void>((r) => (server ? server.close(() => r()) : r())));

async function controller(
  reply: (req: IncomingMessage, n: number) => [number, unknown],
): Promise<{ url: string; seen: Seen[] }> {
  const seen: Seen[] = [];
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      seen.push({
        method: req.method!,
        url: req.url!,
        auth: req.headers.authorization ?? '',
        body: body ? JSON.parse(body) : null,
      });
      const [status, out] = reply(req, seen.length);
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(out));
    });
  });
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server!.address() as { port: number }).port}`, seen };
}

const outage = (i: number): OutageReport => ({
  target: 'web1',
  addresses: ['10.1.0.20'],
  startMs: 1_000 * i,
  endMs: 1_000 * i + 150,
  outageMs: 150,
  lost: 9,
});

function link(
  url: string,
  now: () => number,
  o: Partial<ConstructorParameters<typeof ControllerLink>[0]> = {},
) {
  return new ControllerLink({
    url,
    token: 'kz_test_secret',
    probe: 'probe-dc1',
    site: 'dc1',
    selfUrl: 'http://127.0.0.1:9464',
    intervalMs: 20,
    now,
    ...o,
  });
}

describe('ControllerLink', () => {
  it('pushes outages with the bearer token, keeps them while keizokud fails, retries with backoff', async () => {
    // The first two pushes fail (503), then keizokud takes them.
    const c = await controller((_req, n) => (n <= 2 ? [503, { error: 'starting' }] : [200, {}]));
    let t = 0;
    const l = link(c.url, () => t);
    l.enqueue(outage(1));
    l.enqueue(outage(2));
    expect(await l.push()).toEqual({ error: expect.stringMatching(/HTTP 503/), retryInMs: 1_000 });
    expect(l.pendingCount).toBe(2);
    expect(await l.push()).toBeNull(); // within the backoff: no request
    t = 1_000;
    expect(await l.push()).toEqual({ error: expect.stringMatching(/HTTP 503/), retryInMs: 2_000 });
    t = 2_500;
    expect(await l.push()).toBeNull();
    l.enqueue(outage(3));
    t = 3_000;
    expect(await l.push()).toEqual({ sent: 3 });
    expect(l.pendingCount).toBe(0);
    expect(c.seen).toHaveLength(3);
    expect(c.seen.every((s) => s.method === 'POST' && s.url === '/v1/probe/events')).toBe(true);
    expect(c.seen.every((s) => s.auth === 'Bearer kz_test_secret')).toBe(true);
    expect(c.seen[2]!.body).toEqual({
      probe: 'probe-dc1',
      site: 'dc1',
      events: [outage(1), outage(2), outage(3)],
    });
    // Success resets the backoff.
    l.enqueue(outage(4));
    expect(await l.push()).toEqual({ sent: 1 });
  });

  it('keeps at most maxPending outages, dropping the oldest, and sends them in batches', async () => {
    const c = await controller(() => [200, {}]);
    const l = link(c.url, () => 0, { maxPending: 5, batch: 2 });
    for (let i = 0; i < 8; i++) l.enqueue(outage(i));
    expect(l.pendingCount).toBe(5);
    expect(l.dropped).toBe(3);
    expect(await l.push()).toEqual({ sent: 2 });
    expect(await l.push()).toEqual({ sent: 2 });
    expect(await l.push()).toEqual({ sent: 1 });
    expect(await l.push()).toBeNull();
    const sent = c.seen.flatMap((s) => (s.body as { events: OutageReport[] }).events.map((e) => e.startMs));
    expect(sent).toEqual([3_000, 4_000, 5_000, 6_000, 7_000]);
  });

  it('F5a: drops the outages keizokud refuses, saying why, instead of resending them', async () => {
    const c = await controller(() => [
      200,
      { accepted: 1, refused: [{ index: 1, message: 'events[1].endMs (1) is in the future' }] },
    ]);
    const l = link(c.url, () => 0);
    l.enqueue(outage(1));
    l.enqueue(outage(2));
    expect(await l.push()).toEqual({ sent: 2, refused: ['events[1].endMs (1) is in the future'] });
    expect(l.pendingCount).toBe(0);
    expect(await l.push()).toBeNull();
  });

  it('keeps outages when keizokud cannot be reached, and never puts the token in an error', async () => {
    const c = await controller(() => [200, {}]);
    await new Promise<void>((r) => server!.close(() => r()));
    server = null;
    const l = link(c.url, () => 0);
    l.enqueue(outage(1));
    const r = await l.push();
    expect(r).toMatchObject({ error: expect.stringMatching(/^POST \/v1\/probe\/events: ECONNREFUSED/) });
    expect(JSON.stringify(r)).not.toContain('secret');
    expect(l.pendingCount).toBe(1);
  });

  it('registers with its name, site, URL and interval', async () => {
    const c = await controller(() => [200, {}]);
    await link(c.url, () => 0).register();
    expect(c.seen).toEqual([
      {
        method: 'POST',
        url: '/v1/probes',
        auth: 'Bearer kz_test_secret',
        body: { name: 'probe-dc1', site: 'dc1', url: 'http://127.0.0.1:9464', intervalMs: 20 },
      },
    ]);
  });

  it('follows running VMs with addresses, keeping one that drops out for the grace period', async () => {
    let vms: unknown[] = [
      { name: 'web1', host: 'h1', state: 'running', addresses: ['10.1.0.20'] },
      { name: 'db1', host: 'h2', state: 'running', addresses: ['10.1.0.21', '10.2.0.21'] },
      { name: 'noaddr', host: 'h1', state: 'running', addresses: [] },
      { name: 'off', host: 'h1', state: 'shutoff', addresses: ['10.1.0.22'] },
      // Names are not followed (the pinger would resolve them through DNS); IPv6 literals are.
      { name: 'named', host: 'h1', state: 'running', addresses: ['portal.example', 'fd00::5'] },
    ];
    const c = await controller(() => [200, { vms }]);
    let t = 0;
    const l = link(c.url, () => t, { followGraceMs: 60_000 });
    expect(await l.followed()).toEqual([
      { name: 'web1', addresses: ['10.1.0.20'] },
      { name: 'db1', addresses: ['10.1.0.21', '10.2.0.21'] },
      { name: 'named', addresses: ['fd00::5'] },
    ]);
    expect(c.seen[0]).toMatchObject({ method: 'GET', url: '/v1/vms', auth: 'Bearer kz_test_secret' });
    vms = [{ name: 'web1', host: 'h2', state: 'paused', addresses: ['10.1.0.20'] }]; // mid-move
    t = 30_000;
    expect((await l.followed()).map((x) => x.name)).toEqual(['web1', 'db1', 'named']);
    t = 61_000;
    expect(await l.followed()).toEqual([]);
  });

  it('says when the VM list is not one', async () => {
    const c = await controller(() => [200, { items: [] }]);
    await expect(link(c.url, () => 0).followed()).rejects.toThrow('GET /v1/vms: no "vms" list in the reply');
  });
});
