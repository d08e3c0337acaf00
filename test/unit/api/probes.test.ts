import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { TokenError, TokenStore } from '../../../src/api/auth/tokens.ts';
import type { ApiDeps } from '../../../src/api/deps.ts';
import { probeRoutes } from '../../../src/api/routes/probes.ts';
import { tierRoutes } from '../../../src/api/routes/tiers.ts';
import { createApi } from '../../../src/api/server.ts';
import { loadTiersFile } from '../../../src/config/index.ts';
import type { ClusterSnapshot } from '../../../src/core/model.ts';
import { AuditLog } from '../../../src/store/audit.ts';
import { redisKeys } from '../../../src/store/keys.ts';
import { ProbeBook, type ProbeBookOptions } from '../../../src/store/probe-book.ts';
import { startRedis } from '../../support/redis.ts';

/**
 * The probe routes and the availability query through Fastify inject, against a real
 * redis-server: what a probe token may claim, how outages are checked and kept per agent, how
 * much a query reads, and what is audited.
 */

const PREFIX = 'kz-test:';
const keys = redisKeys(PREFIX);
const tiers = await loadTiersFile();
let server: Awaited<ReturnType<typeof startRedis>>;
let redis: Redis;
let dir: string;
let app: FastifyInstance;
let audit: AuditLog;
let tokens: TokenStore;
let book: ProbeBook;
const registrations: string[] = [];

const snapshot = {
  takenAt: 0,
  sites: ['dc1'],
  hosts: new Map(),
  vms: new Map(
    ['vm1', 'vm2'].map((name) => [name, { name, uuid: name, host: 'h1', state: 'running', vcpus: 1 }]),
  ),
} as unknown as ClusterSnapshot;

async function build(o: ProbeBookOptions = {}): Promise<void> {
  await app?.close();
  book = new ProbeBook(redis, PREFIX, o);
  app = await createApi({ tokens, audit, bodyLimitBytes: 1 << 20, rateLimitPerMinute: 1_000_000 });
  const deps = {
    snapshot: () => snapshot,
    policyOf: () => ({ tier: 'frontend' }),
    audit,
    redis,
    prefix: PREFIX,
    probeBook: book,
    probeRegistrations: { inc: ({ probe }: { probe: string }) => void registrations.push(probe) },
  } as unknown as ApiDeps;
  probeRoutes(app, deps);
  tierRoutes(app, deps, {
    tiers,
    timeZone: 'Asia/Tokyo',
    placement: { cpuOvercommit: 1, memoryFraction: 1 },
  });
  await app.ready();
}

const probeToken = async (name: string, site = 'dc1') =>
  (await tokens.create({ name, role: 'probe', probe: { name, site } })).token;

async function call(
  token: string,
  method: 'GET' | 'POST',
  url: string,
  body?: unknown,
  remoteAddress?: string,
) {
  const r = await app.inject({
    method,
    url,
    headers: { authorization: `Bearer ${token}` },
    ...(body !== undefined ? { payload: body as object } : {}),
    ...(remoteAddress ? { remoteAddress } : {}),
  });
  // biome-ignore lint/suspicious/noExplicitAny: test code reads whatever JSON the route answers
  return { status: r.statusCode, body: r.json() as any };
}

const outage = (target: string, startMs: number, lengthMs = 1_000) => ({
  target,
  addresses: ['10.0.0.1'],
  startMs,
  endMs: startMs + lengthMs,
  outageMs: lengthMs,
  lost: 10,
});

beforeAll(async () => {
  server = await startRedis();
  redis = new Redis(server.url);
  dir = mkdtempSync(join(tmpdir(), 'kz-probes-'));
  audit = new AuditLog(redis, PREFIX, {
    dir,
    retentionDays: 1,
    streamMaxEntries: 10_000,
    timeZone: 'UTC',
  });
});
afterAll(async () => {
  await app?.close();
  await audit.close();
  redis.disconnect();
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
});
beforeEach(async () => {
  await redis.flushdb();
  tokens = new TokenStore(redis, PREFIX, 0);
  registrations.length = 0;
  await build();
});
afterEach(async () => {
  await app.close();
});

describe('F5a: a probe token speaks for one agent', () => {
  it('F5a: a probe token cannot report outages as another probe', async () => {
    const t = await probeToken('p1');
    const now = Date.now();
    const r = await call(t, 'POST', '/v1/probe/events', {
      probe: 'p2',
      site: 'dc9',
      events: [outage('vm1', now - 60_000)],
    });
    expect(r).toMatchObject({ status: 200, body: { accepted: 1, refused: [] } });
    expect(await redis.zcard(keys.probeOutages('p2'))).toBe(0);
    const [stored] = await redis.zrange(keys.probeOutages('p1'), '0', '-1');
    expect(JSON.parse(stored!)).toMatchObject({ probe: 'p1', site: 'dc1', target: 'vm1' });

    const reg = await call(t, 'POST', '/v1/probes', {
      name: 'p2',
      site: 'dc9',
      url: 'http://127.0.0.1:9464',
      intervalMs: 20,
    });
    expect(reg).toMatchObject({ status: 200, body: { registered: 'p1', site: 'dc1' } });
    expect((await book.live()).map((p) => [p.name, p.site])).toEqual([['p1', 'dc1']]);
  });

  it('F5a: a probe token bound to no agent is refused, and none can be created', async () => {
    await expect(tokens.create({ name: 'x', role: 'probe' })).rejects.toThrow(/--probe-name and --site/);
    await expect(
      tokens.create({ name: 'x', role: 'viewer', probe: { name: 'p1', site: 'dc1' } }),
    ).rejects.toThrow(TokenError);
    await expect(
      tokens.create({ name: 'x', role: 'probe', probe: { name: 'a b', site: 'dc1' } }),
    ).rejects.toThrow(/--probe-name: expected/);
    // A token made before binding existed: its record has no `probe`.
    const { token, info } = await tokens.create({
      name: 'old',
      role: 'probe',
      probe: { name: 'p', site: 's' },
    });
    const record = JSON.parse((await redis.hget(`${PREFIX}tokens`, info.id))!);
    delete record.probe;
    await redis.hset(`${PREFIX}tokens`, info.id, JSON.stringify(record));
    const r = await call(token, 'POST', '/v1/probe/events', { probe: 'p', site: 's', events: [] });
    expect(r.status).toBe(403);
    expect(r.body.error.message).toMatch(/bound to no agent.*--probe-name/);
  });

  it('F5a: outages are checked against the clock and the report age', async () => {
    const t = await probeToken('p1');
    const now = Date.now();
    const r = await call(t, 'POST', '/v1/probe/events', {
      events: [
        outage('vm1', now - 60_000),
        { ...outage('vm1', now - 30_000), endMs: now - 40_000 },
        outage('vm1', now - 8 * 86_400_000),
        outage('vm1', now + 3_600_000),
      ],
    });
    expect(r.status).toBe(200);
    expect(r.body.accepted).toBe(1);
    expect(r.body.refused.map((x: { index: number }) => x.index)).toEqual([1, 2, 3]);
    expect(r.body.refused[0].message).toMatch(/^events\[1\]\.endMs .* is before startMs/);
    expect(r.body.refused[1].message).toMatch(/^events\[2\]\.startMs .* more than 7 days ago/);
    expect(r.body.refused[2].message).toMatch(/^events\[3\]\.endMs .* in the future/);
    expect(await redis.zcard(keys.probeOutages('p1'))).toBe(1);
  });
});

describe('F5b: outages are kept per agent', () => {
  it("F5b: one agent's flood does not evict another agent's outages", async () => {
    await build({ maxPerProbe: 50 });
    const [honest, flood] = [await probeToken('p1'), await probeToken('p2')];
    const now = Date.now();
    await call(honest, 'POST', '/v1/probe/events', { events: [outage('vm1', now - 600_000, 60_000)] });
    for (let i = 0; i < 4; i++)
      await call(flood, 'POST', '/v1/probe/events', {
        events: Array.from({ length: 100 }, (_, j) => outage('zz', now - 500_000 + i * 1_000 + j)),
      });
    expect(await redis.zcard(keys.probeOutages('p2'))).toBe(50);
    const a = await call(honest, 'GET', '/v1/tiers/availability');
    expect(a.status).toBe(200);
    const vm1 = a.body.vms.find((v: { vm: string }) => v.vm === 'vm1');
    expect(vm1).toMatchObject({ outageMs: 60_000, outages: 1 });
  });
});

describe('F5c: a registration names the agent itself', () => {
  const body = (url: string) => ({ url, intervalMs: 20 });

  it('F5c: a registration whose URL host is not the source address is refused', async () => {
    const t = await probeToken('p1');
    const from = '10.0.0.5';
    for (const url of ['http://10.0.0.6:9464', 'http://169.254.169.254', 'http://[::1]:9464'])
      expect((await call(t, 'POST', '/v1/probes', body(url), from)).status, url).toBe(403);
    for (const url of [
      'http://10.0.0.5:9/#',
      'http://10.0.0.5:9/x',
      'http://10.0.0.5:9?a=1',
      'http://user@10.0.0.5:9',
      'http://probe.example:9464',
      'ftp://10.0.0.5:21',
    ])
      expect((await call(t, 'POST', '/v1/probes', body(url), from)).status, url).toBe(400);
    expect(await book.live()).toEqual([]);

    const ok = await call(t, 'POST', '/v1/probes', body('http://10.0.0.5:9464/'), from);
    expect(ok).toMatchObject({ status: 200, body: { url: 'http://10.0.0.5:9464' } });
    // An agent listening on every address names 0.0.0.0: the source address stands for it.
    const any = await call(t, 'POST', '/v1/probes', body('http://0.0.0.0:9464'), '::ffff:10.0.0.7');
    expect(any).toMatchObject({ status: 200, body: { url: 'http://10.0.0.7:9464' } });
    expect((await book.live()).map((p) => p.url)).toEqual(['http://10.0.0.7:9464']);
  });
});

describe('F13: bounded reads', () => {
  /** Counts the rows Redis returned to the book, by command. */
  function counting(): { redis: Redis; rows: Record<string, number>; calls: string[] } {
    const rows: Record<string, number> = {};
    const calls: string[] = [];
    const proxy = new Proxy(redis, {
      get(target, prop, receiver) {
        const v = Reflect.get(target, prop, receiver);
        if (typeof v !== 'function' || prop === 'multi' || prop === 'pipeline') return v;
        return async (...args: unknown[]) => {
          calls.push(String(prop));
          const out = await (v as (...a: unknown[]) => Promise<unknown>).apply(target, args);
          if (Array.isArray(out)) rows[String(prop)] = (rows[String(prop)] ?? 0) + out.length;
          return out;
        };
      },
    });
    return { redis: proxy, rows, calls };
  }

  it("F13: availability reads only the period's range, at most a cap per agent", async () => {
    const now = Date.now();
    const writer = new ProbeBook(redis, PREFIX);
    // Long before the period (another year, as if reported then), and many in it.
    await writer.addOutages('p1', 'dc1', [outage('vm1', now - 200 * 86_400_000)], now - 200 * 86_400_000);
    const many = Array.from({ length: 300 }, (_, i) => outage('vm2', now - 3_600_000 + i * 10));
    await writer.addOutages('p1', 'dc1', many, now);
    const c = counting();
    const reader = new ProbeBook(c.redis, PREFIX, { readLimitPerProbe: 120 });
    const from = now - 86_400_000;
    const r = await reader.outagesBetween(from, now);
    expect(r.truncated).toBe(true);
    expect(r.byTarget.get('vm2')).toHaveLength(120);
    expect(r.byTarget.has('vm1')).toBe(false);
    // Rows read: at most the cap (in batches), never the whole key.
    expect(c.rows.zrangebyscore).toBeLessThanOrEqual(120 + 1);
    expect(c.calls).not.toContain('xrange');

    const all = await new ProbeBook(redis, PREFIX).outagesBetween(from, now);
    expect(all).toMatchObject({ truncated: false });
    expect(all.byTarget.get('vm2')).toHaveLength(300);
  });

  it('F13: registrations older than the TTL are dropped, and the live list reads only live ones', async () => {
    const now = Date.now();
    const b = new ProbeBook(redis, PREFIX, { registrationTtlMs: 600_000 });
    for (let i = 0; i < 50; i++)
      await b.register(
        { name: `old${i}`, site: 'dc1', url: 'http://10.0.0.1:1', intervalMs: 20 },
        now - 3_600_000,
      );
    await b.register({ name: 'idle', site: 'dc1', url: 'http://10.0.0.2:1', intervalMs: 20 }, now - 120_000);
    await b.register({ name: 'p1', site: 'dc1', url: 'http://10.0.0.3:1', intervalMs: 20 }, now);
    expect(await redis.hlen(`${PREFIX}probes`)).toBe(2);
    expect(await redis.zcard(`${PREFIX}probes:seen`)).toBe(2);
    const c = counting();
    const live = await new ProbeBook(c.redis, PREFIX).live(now);
    expect(live.map((p) => p.name)).toEqual(['p1']);
    expect(c.calls).not.toContain('hgetall');
    expect(c.rows.hmget).toBe(1);
  });
});

describe('F29: registrations are not operator actions', () => {
  it('F29, F12: a registration is counted, not audited; a refused one (denied) and an outage push are audited', async () => {
    const t = await probeToken('p1');
    for (let i = 0; i < 3; i++)
      expect(
        (await call(t, 'POST', '/v1/probes', { url: 'http://127.0.0.1:9464', intervalMs: 20 })).status,
      ).toBe(200);
    expect(registrations).toEqual(['p1', 'p1', 'p1']);
    await call(t, 'POST', '/v1/probes', { url: 'http://10.9.9.9:9464', intervalMs: 20 });
    const viewer = (await tokens.create({ name: 'v', role: 'viewer' })).token;
    await call(viewer, 'POST', '/v1/probes', { url: 'http://127.0.0.1:9464', intervalMs: 20 });
    await call(t, 'POST', '/v1/probe/events', { events: [] });
    await audit.close(); // waits for the entries in flight
    const entries = await audit.query({ limit: 100 });
    expect(entries.map((e) => [e.action, e.outcome, e.status]).reverse()).toEqual([
      // A registration for another address is a denial, audited as one (F12 on probe routes).
      ['probe.report', 'denied', 403],
      ['probe.report', 'denied', 403],
      // The outage push: received before its handler ran, then its outcome.
      ['probe.report', 'received', null],
      ['probe.report', 'succeeded', 200],
    ]);
    expect(registrations).toHaveLength(3);
  });
});
