import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LabState } from '../../lab/index.ts';
import { CLUSTER_PREFIX, redisKeys } from '../../src/store/keys.ts';
import { type RunningKeizokud, startKeizokud } from '../support/keizokud.ts';
import { sharedLab } from '../support/lab-fixture.ts';
import { startRedis } from '../support/redis.ts';

/** A small seeded PRNG (mulberry32), so that a failing case can be replayed. */
function rng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (n: number) => Math.floor(next() * n),
    pick: <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)]!,
  };
}

interface FuzzCase {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string | Buffer;
  kind: string;
}

const TRAVERSAL = [
  '..',
  '../..',
  '%2e%2e%2f%2e%2e%2fetc%2fpasswd',
  '..%2F..%2Fetc',
  '%00',
  '%2Fetc%2Fshadow',
  '....//',
];
const UNICODE = ['継続', 'vm\u202eevil', '😀', 'a\u0000b', 'Ω≈ç√', '\ud800', 'é'.repeat(70)];
const WRONG_VALUES = ['"yes"', '1', '[]', '{}', 'null', '-1', '1e309', '"x".repeat', 'true'];

/** Requests that are each wrong in some way; none may succeed or crash the daemon. */
function generate(seed: number, n: number, token: string): FuzzCase[] {
  const r = rng(seed);
  const auth = { authorization: `Bearer ${token}` };
  const json = { ...auth, 'content-type': 'application/json' };
  const vmVerb = () => r.pick(['start', 'shutdown', 'destroy']);
  const gens: (() => FuzzCase)[] = [
    () => ({
      kind: 'bad json',
      method: 'POST',
      path: `/v1/vms/fz-none/${vmVerb()}`,
      headers: json,
      body: r.pick([
        '{',
        '{"confirm":',
        '[1,2',
        '{"a":1}}',
        'nul',
        '\u0000\u0001',
        '{"confirm":true,}',
        "{'a':1}",
      ]),
    }),
    () => ({
      kind: 'wrong type',
      method: 'PUT',
      path: '/v1/vms/fz-none/policy',
      headers: json,
      body: `{"${r.pick(['tier', 'limits', 'haPriority'])}": ${r.pick(WRONG_VALUES.filter((v) => v !== 'null'))}}`,
    }),
    () => ({
      kind: 'wrong type',
      method: 'POST',
      path: '/v1/vms/fz-none/destroy',
      headers: json,
      body: `{"confirm": ${r.pick(['"yes"', '1', '[]', '{}', 'null', 'false'])}}`,
    }),
    () => ({
      kind: 'huge body',
      method: r.pick(['POST', 'PUT']),
      path: r.pick(['/v1/vms/fz-none/destroy', '/v1/vms/fz-none/policy', '/v1/probe/events']),
      headers: json,
      body: `{"pad":"${'x'.repeat(70_000 + r.int(200_000))}"}`,
    }),
    () => ({
      kind: 'unknown field',
      method: 'PUT',
      path: '/v1/vms/fz-none/policy',
      headers: json,
      body: JSON.stringify({
        tier: 'low',
        [r.pick(['__proto__', 'constructor', 'owner', 'x'.repeat(100), '継続'])]: 1,
      }),
    }),
    () => ({
      kind: 'unknown field',
      method: 'POST',
      path: '/v1/probes',
      headers: json,
      body: JSON.stringify({
        name: 'p',
        site: 'dc1',
        url: 'http://127.0.0.1:1',
        intervalMs: 10,
        extra: r.int(9),
      }),
    }),
    () => ({
      kind: 'path traversal',
      method: r.pick(['POST', 'PUT', 'DELETE', 'GET']),
      path: `/v1/vms/${r.pick(TRAVERSAL)}/${r.pick(['start', 'policy', 'destroy', ''])}`,
      headers: json,
      body: '{}',
    }),
    () => ({
      kind: 'path traversal',
      method: 'GET',
      path: `/v1/${r.pick(TRAVERSAL)}/${r.pick(TRAVERSAL)}`,
      headers: auth,
    }),
    () => ({
      kind: 'unicode',
      method: r.pick(['POST', 'GET']),
      path: `/v1/vms/${encodeURIComponent(r.pick(UNICODE).replace('\ud800', 'x'))}/start`,
      headers: json,
      body: JSON.stringify({ name: r.pick(UNICODE) }),
    }),
    () => ({
      kind: 'unicode',
      method: 'PUT',
      path: '/v1/vms/fz-none/policy',
      headers: json,
      body: JSON.stringify({ tier: r.pick(UNICODE) }),
    }),
    () => ({
      kind: 'wrong media type',
      method: 'PUT',
      path: '/v1/vms/fz-none/policy',
      headers: {
        ...auth,
        'content-type': r.pick(['text/plain', 'application/xml', 'multipart/form-data', 'x/y']),
      },
      body: '<tier>low</tier>',
    }),
    () => ({
      kind: 'bad query',
      method: 'GET',
      path: `/v1/audit?${r.pick(['limit=abc', 'limit=-1', 'limit=99999999', 'since=-5', 'outcome=maybe', 'bogus=1', 'since=1e99'])}`,
      headers: auth,
    }),
    () => ({
      kind: 'bad auth',
      method: r.pick(['POST', 'GET', 'PUT']),
      path: r.pick(['/v1/vms', '/v1/vms/fz-none/start', '/v1/vms/fz-none/policy', '/v1/audit']),
      headers: {
        authorization: r.pick([
          'Bearer',
          `Bearer kz_000000000000_${'A'.repeat(43)}`,
          `Basic ${Buffer.from('admin:admin').toString('base64')}`,
          `Bearer ${'x'.repeat(4000)}`,
          `Bearer ${token.slice(0, -1)}`,
          `bearer${token}`,
        ]),
        'content-type': 'application/json',
      },
      body: '{}',
    }),
    () => ({
      kind: 'unknown route',
      method: r.pick(['DELETE', 'PATCH', 'POST']),
      path: r.pick(['/v1/vms', '/v1/hosts/h1', '/v1/tokens', '/admin', `/v1/${'a/'.repeat(50)}`]),
      headers: json,
      body: '{}',
    }),
  ];
  return Array.from({ length: n }, () => r.pick(gens)());
}

describe('API under malformed requests', () => {
  let lab: LabState;
  let kz: RunningKeizokud;
  let redis: Awaited<ReturnType<typeof startRedis>>;
  let admin: string;

  beforeAll(async () => {
    redis = await startRedis();
    lab = sharedLab();
    kz = await startKeizokud(lab, redis.url, { api: { rateLimitPerMinute: 1_000_000 } });
    admin = await kz.token('admin');
  }, 60_000);

  afterAll(async () => {
    await kz?.stop();
    await redis?.stop();
  });

  it('answers 5,000 generated bad requests with a 4xx and a clear message, stays up, audits each mutating one', async () => {
    const cases = generate(20261123, 5_000, admin);
    const bad: string[] = [];
    const audited: string[] = [];
    const kinds = new Map<string, number>();
    const CONCURRENCY = 16;
    let next = 0;
    const worker = async () => {
      while (next < cases.length) {
        const c = cases[next++]!;
        kinds.set(c.kind, (kinds.get(c.kind) ?? 0) + 1);
        const res = await fetch(kz.url + c.path, {
          method: c.method,
          headers: c.headers,
          ...(c.body !== undefined && c.method !== 'GET' ? { body: c.body } : {}),
        });
        const text = await res.text();
        let message: unknown;
        try {
          message = (JSON.parse(text) as { error?: { message?: unknown } }).error?.message;
        } catch {
          message = undefined;
        }
        const clear = typeof message === 'string' && message.length > 0 && !/\n\s+at /.test(message);
        if (res.status < 400 || res.status >= 500 || !clear)
          bad.push(`${c.kind}: ${c.method} ${c.path.slice(0, 80)} -> ${res.status} ${text.slice(0, 120)}`);
        if (c.method !== 'GET') audited.push(res.headers.get('x-request-id') ?? `missing id: ${c.kind}`);
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    expect([...new Set(bad.map((b) => b.replace(/-> .*/, '')))].slice(0, 30)).toEqual([]);
    expect([...kinds.keys()].length).toBeGreaterThanOrEqual(10);

    // Still up and serving.
    expect((await kz.request('GET', '/v1/hosts', admin)).status).toBe(200);
    expect(kz.output()).not.toMatch(/"level":(50|60)/);

    // Every mutating request has one outcome entry in the audit stream.
    const ids = await outcomeEntries(kz, admin);
    const missing = audited.filter((id) => ids.get(id)?.length !== 1);
    expect(audited.length).toBeGreaterThan(2_000);
    expect(missing.slice(0, 10)).toEqual([]);
  }, 300_000);

  it('refuses probe forgery: a name not its own, outages out of time, a window URL not on the source address; each audited once', async () => {
    const probe = await kz.token('probe', { name: 'fz-probe', site: 'dc1' });
    const call = (method: string, path: string, body: unknown) =>
      fetch(kz.url + path, {
        method,
        headers: { authorization: `Bearer ${probe}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      }).then(async (r) => ({
        status: r.status,
        id: r.headers.get('x-request-id') ?? '',
        body: (await r.json()) as { accepted?: number; refused?: { index: number }[] },
      }));
    const now = Date.now();
    const outage = (startMs: number, endMs: number) => ({
      target: 'fz-vm',
      addresses: ['10.0.0.1'],
      startMs,
      endMs,
      outageMs: Math.max(0, endMs - startMs),
      lost: 1,
    });
    // Outages claimed for another agent land under the token's own name; those out of time are refused.
    const pushed = await call('POST', '/v1/probe/events', {
      probe: 'real-probe',
      site: 'dc2',
      events: [
        outage(now - 2_000, now - 1_000),
        outage(now - 1_000, now - 2_000),
        outage(now - 30 * 86_400_000, now - 29 * 86_400_000),
        outage(now + 3_600_000, now + 3_601_000),
      ],
    });
    expect(pushed.status, JSON.stringify(pushed.body)).toBe(200);
    expect(pushed.body.accepted).toBe(1);
    expect(pushed.body.refused?.map((x) => x.index)).toEqual([1, 2, 3]);
    const keys = redisKeys(CLUSTER_PREFIX);
    expect(await kz.redis.zcard(keys.probeOutages('real-probe'))).toBe(0);
    expect(await kz.redis.zcard(keys.probeOutages('fz-probe'))).toBe(1);
    // A window URL on another host than the agent's own source address: refused.
    const ids: string[] = [pushed.id];
    for (const url of [
      'http://169.254.169.254:80',
      'http://10.1.2.3:9100',
      'http://127.0.0.1:9/#',
      'http://user@127.0.0.1:9',
    ]) {
      const r = await call('POST', '/v1/probes', { name: 'real-probe', site: 'dc2', url, intervalMs: 20 });
      expect(r.status, `${url}: ${JSON.stringify(r.body)}`).toBeGreaterThanOrEqual(400);
      expect(r.status).toBeLessThan(500);
      ids.push(r.id);
    }
    expect(kz.alive()).toBe(true);
    const entries = await outcomeEntries(kz, admin);
    for (const id of ids) expect(entries.get(id)?.length, id).toBe(1);
  });
});

/** Outcome entries (not `received`) of the audit stream, by request id. */
async function outcomeEntries(kz: RunningKeizokud, admin: string) {
  const r = await kz.request('GET', '/v1/audit?limit=10000', admin);
  const ids = new Map<string, { outcome: string; status: number }[]>();
  for (const e of r.body.entries as { requestId: string; outcome: string; status: number }[])
    if (e.outcome !== 'received') ids.set(e.requestId, [...(ids.get(e.requestId) ?? []), e]);
  return ids;
}

/** Sends the cases CONCURRENCY at a time; each answer must be a 4xx with a clear message. */
async function send(kz: RunningKeizokud, cases: FuzzCase[]) {
  const out: { c: FuzzCase; status: number; id: string; message: string }[] = [];
  let next = 0;
  const worker = async () => {
    while (next < cases.length) {
      const c = cases[next++]!;
      const res = await fetch(kz.url + c.path, {
        method: c.method,
        headers: c.headers,
        ...(c.body !== undefined ? { body: c.body } : {}),
      });
      const text = await res.text();
      let message = '';
      try {
        message = String((JSON.parse(text) as { error?: { message?: unknown } }).error?.message ?? '');
      } catch {
        message = '';
      }
      out.push({ c, status: res.status, id: res.headers.get('x-request-id') ?? '', message });
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  return out;
}

const LIMIT = 50;

describe('API under floods of refused requests and policy abuse', () => {
  let lab: LabState;
  let kz: RunningKeizokud;
  let redis: Awaited<ReturnType<typeof startRedis>>;
  let admin: string;
  let viewer: string;
  let owner: string;

  beforeAll(async () => {
    redis = await startRedis();
    lab = sharedLab();
    kz = await startKeizokud(lab, redis.url, { api: { rateLimitPerMinute: LIMIT } });
    admin = await kz.token('admin');
    viewer = await kz.token('viewer');
    owner = await kz.token('vm-admin', { name: 'fz-owner', vms: ['fz-*'], allowMigrate: true });
  }, 60_000);

  afterAll(async () => {
    await kz?.stop();
    await redis?.stop();
  });

  it('limits bad tokens and refused roles by address (429 after the limit), audits each once as denied, keeps valid tokens working', async () => {
    const r = rng(20261202);
    const json = { 'content-type': 'application/json' };
    const badTokens: FuzzCase[] = Array.from({ length: 4 * LIMIT }, () => ({
      kind: 'bad token',
      method: r.pick(['POST', 'PUT', 'DELETE']),
      path: r.pick(['/v1/vms/fz-none/start', '/v1/vms/fz-none/policy', '/v1/jobs/x', '/v1/drills']),
      headers: {
        ...json,
        authorization: `Bearer kz_${r.int(1e12).toString(16).padStart(12, '0')}_${'A'.repeat(43)}`,
      },
      body: '{}',
    }));
    const flood = await send(kz, badTokens);
    const statuses = flood.map((x) => x.status);
    expect(statuses.filter((s) => s !== 401 && s !== 429)).toEqual([]);
    // One window of the limit, perhaps two if the flood spans a minute's end.
    expect(statuses.filter((s) => s === 401).length).toBeLessThanOrEqual(2 * LIMIT);
    expect(statuses.filter((s) => s === 429).length).toBeGreaterThanOrEqual(2 * LIMIT);
    expect(flood.find((x) => x.status === 429)!.message).toMatch(
      /^more than 50 requests a minute; retry in \d+ s$/,
    );

    // The address's budget is spent: a viewer's refused writes get 429 too; its reads, and the
    // admin's, go on from their tokens' budgets.
    const refused = await send(
      kz,
      Array.from({ length: 10 }, () => ({
        kind: 'refused role',
        method: 'POST',
        path: '/v1/vms/fz-none/start',
        headers: { authorization: `Bearer ${viewer}` },
      })),
    );
    expect(new Set(refused.map((x) => x.status))).toEqual(new Set([429]));
    expect((await kz.request('GET', '/v1/hosts', viewer)).status).toBe(200);
    expect((await kz.request('GET', '/v1/hosts', admin)).status).toBe(200);

    const ids = await outcomeEntries(kz, admin);
    const wrong = [...flood, ...refused].filter(
      (x) =>
        ids.get(x.id)?.length !== 1 ||
        ids.get(x.id)![0]!.outcome !== 'denied' ||
        ids.get(x.id)![0]!.status !== x.status,
    );
    expect(
      wrong.map((x) => `${x.c.method} ${x.c.path} ${x.status}: ${JSON.stringify(ids.get(x.id))}`).slice(0, 5),
    ).toEqual([]);
    expect(kz.output()).not.toMatch(/"level":(50|60)/);
  }, 120_000);

  it("refuses a vm-admin's migration policy beyond api.vmAdminMigrationPolicy with a 403 naming the fields, audited once", async () => {
    const r = rng(20261203);
    const abuse = (): Record<string, number> => {
      const p: Record<string, number> = {};
      // At least one field beyond the defaults (timeout 5 min, bandwidth 0 or >= 100, no post-copy).
      const bad = r.int(3);
      if (bad === 0 || r.int(2)) p.timeoutMs = 300_001 + r.int(86_400_000 - 300_001);
      if (bad === 1 || r.int(2)) p.bandwidthMiBs = 1 + r.int(99);
      if (bad === 2 || r.int(2)) p[r.pick(['postCopyAfterIterations', 'postCopyAfterMs'])] = 1 + r.int(1000);
      if (r.int(2)) p.maxDowntimeMs = 1 + r.int(60_000);
      return p;
    };
    const cases: FuzzCase[] = Array.from({ length: 40 }, () => ({
      kind: 'policy abuse',
      method: 'POST',
      path: `/v1/vms/fz-${r.int(5)}/migrate`,
      headers: { authorization: `Bearer ${owner}`, 'content-type': 'application/json' },
      body: JSON.stringify({ ...(r.int(2) ? { to: r.pick(lab.layout.hosts).name } : {}), policy: abuse() }),
    }));
    const answers = await send(kz, cases);
    const bad = answers.filter(
      (x) =>
        x.status !== 403 ||
        !/^role vm-admin: policy\.(timeoutMs|bandwidthMiBs|postCopyAfter)/.test(x.message),
    );
    expect(bad.map((x) => `${x.c.body} -> ${x.status} ${x.message}`).slice(0, 5)).toEqual([]);
    // Within the limits the policy passes the check (the VM does not exist: 404).
    const fair = await kz.request('POST', '/v1/vms/fz-0/migrate', owner, {
      policy: { timeoutMs: 60_000, bandwidthMiBs: 0 },
    });
    expect(fair.status).toBe(404);
    const ids = await outcomeEntries(kz, admin);
    const wrong = answers.filter(
      (x) => ids.get(x.id)?.length !== 1 || ids.get(x.id)![0]!.outcome !== 'denied',
    );
    expect(wrong.length).toBe(0);
    expect(ids.get(fair.requestId!)?.map((e) => e.outcome)).toEqual(['rejected']);
  }, 120_000);
});
