import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createVm, type LabState, readState, virsh } from '../../lab/index.ts';
import type { DecisionRecord } from '../../src/core/plan.ts';
import { DecisionStore } from '../../src/store/decisions.ts';
import { type ApiResponse, type RunningKeizokud, startKeizokud } from '../support/keizokud.ts';
import { sharedLab } from '../support/lab-fixture.ts';
import { startRedis } from '../support/redis.ts';

type Who = 'admin' | 'operator' | 'viewer' | 'vmAdmin' | 'probe';
const WHO: Who[] = ['admin', 'operator', 'viewer', 'vmAdmin', 'probe'];

const probeBody = { name: 'p1', site: 'dc1', url: 'http://127.0.0.1:9464', intervalMs: 100 };
const eventsBody = {
  probe: 'p1',
  site: 'dc1',
  events: [{ target: 'rb1', addresses: ['10.0.0.1'], startMs: 1, endMs: 2, outageMs: 1, lost: 0 }],
};

/**
 * Each role against each route: the status expected for admin, operator, viewer, a vm-admin
 * scoped to rb1 (no migrate) and a probe agent. Anonymous requests always get 401. 403 is a
 * refusal the caller may know about; 404 for the vm-admin on rb2 hides that rb2 exists.
 * Mutating requests are chosen to be harmless (start of a running VM is a 409, destroy
 * without confirmation a 400) so that the table runs in any order.
 */
const TABLE: [string, string, unknown, Record<Who, number>][] = [
  ['GET', '/v1/hosts', undefined, { admin: 200, operator: 200, viewer: 200, vmAdmin: 403, probe: 403 }],
  ['GET', '/v1/hosts/h1', undefined, { admin: 200, operator: 200, viewer: 200, vmAdmin: 403, probe: 403 }],
  ['GET', '/v1/vms', undefined, { admin: 200, operator: 200, viewer: 200, vmAdmin: 200, probe: 200 }],
  ['GET', '/v1/vms/rb1', undefined, { admin: 200, operator: 200, viewer: 200, vmAdmin: 200, probe: 200 }],
  ['GET', '/v1/vms/rb2', undefined, { admin: 200, operator: 200, viewer: 200, vmAdmin: 404, probe: 200 }],
  [
    'POST',
    '/v1/vms/rb1/start',
    undefined,
    { admin: 409, operator: 409, viewer: 403, vmAdmin: 409, probe: 403 },
  ],
  [
    'POST',
    '/v1/vms/rb2/start',
    undefined,
    { admin: 409, operator: 409, viewer: 403, vmAdmin: 404, probe: 403 },
  ],
  [
    'POST',
    '/v1/vms/rb1/destroy',
    { confirm: false },
    { admin: 400, operator: 400, viewer: 403, vmAdmin: 403, probe: 403 },
  ],
  [
    'POST',
    '/v1/vms/rb2/destroy',
    { confirm: false },
    { admin: 400, operator: 400, viewer: 403, vmAdmin: 404, probe: 403 },
  ],
  [
    'PUT',
    '/v1/vms/rb2/policy',
    { haPriority: 7 },
    { admin: 200, operator: 200, viewer: 403, vmAdmin: 404, probe: 403 },
  ],
  ['PUT', '/v1/vms/rb1/policy', {}, { admin: 200, operator: 200, viewer: 403, vmAdmin: 403, probe: 403 }],
  [
    'GET',
    '/v1/vms/rb1/decisions',
    undefined,
    { admin: 200, operator: 200, viewer: 200, vmAdmin: 200, probe: 403 },
  ],
  [
    'GET',
    '/v1/vms/rb2/decisions',
    undefined,
    { admin: 200, operator: 200, viewer: 200, vmAdmin: 404, probe: 403 },
  ],
  [
    'GET',
    '/v1/decisions/dec-00000000-0000-4000-8000-000000000000',
    undefined,
    { admin: 404, operator: 404, viewer: 404, vmAdmin: 404, probe: 403 },
  ],
  [
    'GET',
    '/v1/audit?limit=1',
    undefined,
    { admin: 200, operator: 403, viewer: 403, vmAdmin: 403, probe: 403 },
  ],
  ['GET', '/v1/probes', undefined, { admin: 200, operator: 200, viewer: 200, vmAdmin: 403, probe: 403 }],
  ['POST', '/v1/probes', probeBody, { admin: 200, operator: 403, viewer: 403, vmAdmin: 403, probe: 200 }],
  [
    'POST',
    '/v1/probe/events',
    eventsBody,
    { admin: 200, operator: 403, viewer: 403, vmAdmin: 403, probe: 200 },
  ],
];

describe('API roles, scopes and audit against the lab', () => {
  let lab: LabState;
  let kz: RunningKeizokud;
  let redis: Awaited<ReturnType<typeof startRedis>>;
  const tokens = {} as Record<Who, string>;
  /** Every mutating request of this file: its id and the audit outcome it must have. */
  const mutating: { requestId: string; outcome: string; what: string }[] = [];

  const call = async (
    who: Who | null,
    method: string,
    path: string,
    body?: unknown,
  ): Promise<ApiResponse> => {
    const r = await kz.request(method, path, who ? tokens[who] : null, body);
    // A probe agent's registration is counted, not audited (F29); a refused one is audited.
    if (method === 'POST' && path === '/v1/probes' && r.status < 400)
      mutating.push({ requestId: r.requestId!, outcome: 'not audited', what: `${who} ${method} ${path}` });
    else if (method !== 'GET') {
      const hidden = r.status === 404 && who === 'vmAdmin' && path.includes('rb2');
      const outcome =
        r.status === 401 || r.status === 403 || hidden
          ? 'denied'
          : r.status < 400
            ? 'succeeded'
            : r.status < 500
              ? 'rejected'
              : 'failed';
      expect(r.requestId, `${method} ${path}`).toBeTruthy();
      mutating.push({ requestId: r.requestId!, outcome, what: `${who ?? 'anonymous'} ${method} ${path}` });
    }
    return r;
  };

  beforeAll(async () => {
    redis = await startRedis();
    lab = sharedLab();
    await Promise.all([
      createVm(lab.id, { name: 'rb1', host: 'h1' }),
      createVm(lab.id, { name: 'rb2', host: 'h2' }),
      createVm(lab.id, { name: 'tax1', host: 'h3', labels: { season: 'tax' } }),
    ]);
    lab = readState(lab.id)!;
    kz = await startKeizokud(lab, redis.url, {
      vms: [
        { match: { name: 'rb*' }, tier: 'frontend', limits: 'standard' },
        { match: { labels: { season: 'tax' } }, tier: 'frontend-seasonal', haPriority: 500 },
      ],
    });
    // The admin's token comes from the real command; the others straight from the token store.
    const created = kz.cli(['token', 'create', '--name', 'root-admin', '--role', 'admin', '--json']);
    expect(created.status, created.stderr).toBe(0);
    tokens.admin = JSON.parse(created.stdout).token;
    tokens.operator = await kz.token('operator');
    tokens.viewer = await kz.token('viewer');
    tokens.vmAdmin = await kz.token('vm-admin', { name: 'rb1-owner', vms: ['rb1'] });
    tokens.probe = await kz.token('probe', { name: 'p1' });
    // Wait until the inventory has the three VMs.
    for (let i = 0; i < 100; i++) {
      const r = await kz.request('GET', '/v1/vms', tokens.admin);
      if (r.body.vms?.filter((v: { state: string }) => v.state === 'running').length >= 3) break;
      await new Promise((res) => setTimeout(res, 200));
    }
  }, 120_000);

  afterAll(async () => {
    await kz?.stop();
    await redis?.stop();
  });

  it('gives each role exactly the access of the table, and anonymous requests 401', async () => {
    const got: string[] = [];
    const want: string[] = [];
    for (const [method, path, body, expected] of TABLE) {
      for (const who of WHO) {
        const r = await call(who, method, path, body);
        got.push(`${who} ${method} ${path} -> ${r.status}`);
        want.push(`${who} ${method} ${path} -> ${expected[who]}`);
        if (r.status >= 400) expect(typeof r.body.error?.message, `${who} ${method} ${path}`).toBe('string');
      }
      const anon = await call(null, method, path, body);
      got.push(`anonymous ${method} ${path} -> ${anon.status}`);
      want.push(`anonymous ${method} ${path} -> 401`);
    }
    expect(got).toEqual(want);
  });

  it('shows a vm-admin only its own VMs, and answers for another VM exactly as for a missing one', async () => {
    const list = await call('vmAdmin', 'GET', '/v1/vms');
    expect(list.body.vms.map((v: { name: string }) => v.name)).toEqual(['rb1']);
    const all = await call('admin', 'GET', '/v1/vms');
    expect(all.body.vms.map((v: { name: string }) => v.name)).toEqual(expect.arrayContaining(['rb1', 'rb2']));
    const other = await call('vmAdmin', 'GET', '/v1/vms/rb2');
    const missing = await call('vmAdmin', 'GET', '/v1/vms/rb9');
    expect(other.status).toBe(404);
    expect(missing.status).toBe(404);
    expect(other.body.error.message.replace('rb2', 'X')).toBe(missing.body.error.message.replace('rb9', 'X'));
    // The VM's address comes from its domain metadata, for the probe to follow.
    const rb1 = lab.vms.find((v) => v.name === 'rb1')!;
    expect(list.body.vms[0].addresses).toEqual([rb1.address]);
  });

  it("gives a VM the policy its metadata's labels select, and shows the labels", async () => {
    const tax1 = await call('admin', 'GET', '/v1/vms/tax1');
    expect(tax1.status).toBe(200);
    expect(tax1.body.labels).toEqual({ season: 'tax' });
    expect(tax1.body.policy).toMatchObject({ tier: 'frontend-seasonal', haPriority: 500, source: 'config' });
    const rb2 = await call('admin', 'GET', '/v1/vms/rb2');
    expect(rb2.body.labels).toEqual({});
    expect(rb2.body.policy.tier).toBe('frontend');
  });

  it('lets the vm-admin shut its VM down and start it again through libvirt', async () => {
    const down = await call('vmAdmin', 'POST', '/v1/vms/rb1/shutdown');
    expect(down.status, JSON.stringify(down.body)).toBe(202);
    const waitState = async (state: string) => {
      for (let i = 0; i < 150; i++) {
        const r = await call('vmAdmin', 'GET', '/v1/vms/rb1');
        if (r.body.state === state) return;
        await new Promise((res) => setTimeout(res, 200));
      }
      throw new Error(`rb1 never became ${state}`);
    };
    await waitState('shutoff');
    const up = await call('vmAdmin', 'POST', '/v1/vms/rb1/start');
    expect(up.status, JSON.stringify(up.body)).toBe(202);
    await waitState('running');
    const again = await call('vmAdmin', 'POST', '/v1/vms/rb1/start');
    expect(again.status).toBe(409);
  });

  it('applies a policy override and clears it', async () => {
    const set = await call('operator', 'PUT', '/v1/vms/rb2/policy', { tier: 'low', limits: null });
    expect(set.status).toBe(200);
    expect(set.body.policy).toMatchObject({ tier: 'low', limits: null, source: 'override' });
    const bad = await call('operator', 'PUT', '/v1/vms/rb2/policy', { tier: 'gold' });
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toMatch(/^body\.tier: unknown tier "gold"/);
    const cleared = await call('operator', 'PUT', '/v1/vms/rb2/policy', {});
    expect(cleared.body.policy).toMatchObject({ tier: 'frontend', limits: 'standard', source: 'config' });
  });

  it('stops accepting a token once it is revoked with keizokud token revoke', async () => {
    const t = await kz.token('viewer', { name: 'short-lived' });
    const id = t.split('_')[1]!;
    expect((await kz.request('GET', '/v1/hosts', t)).status).toBe(200);
    const r = kz.cli(['token', 'revoke', id]);
    expect(r.status, r.stderr).toBe(0);
    await new Promise((res) => setTimeout(res, 2_100)); // the verifier's cache
    expect((await kz.request('GET', '/v1/hosts', t)).status).toBe(401);
    const list = kz.cli(['token', 'list', '--json']);
    expect(JSON.parse(list.stdout).tokens.find((x: { id: string }) => x.id === id).revokedAt).toBeTypeOf(
      'number',
    );
    expect(list.stdout).not.toContain(t);
  });

  it('creates a probe token only for one agent and site (keizokud token create --probe-name --site)', () => {
    const unbound = kz.cli(['token', 'create', '--name', 'agent-x', '--role', 'probe']);
    expect(unbound.status).toBe(2);
    expect(unbound.stderr).toMatch(/--probe-name and --site/);
    const made = kz.cli([
      'token',
      'create',
      '--name',
      'agent-x',
      '--role',
      'probe',
      '--probe-name',
      'px',
      '--site',
      'dc1',
      '--json',
    ]);
    expect(made.status, made.stderr).toBe(0);
    expect(JSON.parse(made.stdout)).toMatchObject({ role: 'probe', probe: { name: 'px', site: 'dc1' } });
  });

  it('drives the same API from the keizoku CLI, with exit codes by outcome', () => {
    const cli = (who: Who | null, ...args: string[]) => {
      const r = spawnSync('node', ['bin/keizoku.mjs', ...args], {
        encoding: 'utf8',
        env: {
          ...process.env,
          KEIZOKU_URL: kz.url,
          KEIZOKU_TOKEN: who ? tokens[who] : '',
          KEIZOKU_CONFIG: '',
        },
      });
      return { status: r.status, stdout: r.stdout, stderr: r.stderr };
    };
    const list = cli('vmAdmin', 'vm', 'list', '--json');
    expect(list.status, list.stderr).toBe(0);
    expect(JSON.parse(list.stdout).vms.map((v: { name: string }) => v.name)).toEqual(['rb1']);
    const table = cli('viewer', 'host', 'list');
    expect(table.stdout).toMatch(/^HOST\s+SITE\s+HEALTH/);
    expect(table.stdout).toMatch(/^h1\s+dc1\s+up/m);
    expect(cli('vmAdmin', 'vm', 'show', 'rb2')).toMatchObject({
      status: 4,
      stderr: 'keizoku: no VM named "rb2"\n',
    });
    expect(cli('viewer', 'vm', 'start', 'rb1').status).toBe(3);
    expect(cli('admin', 'vm', 'start', 'rb1').status).toBe(5);
    expect(cli('admin', 'vm', 'destroy', 'rb1').status).toBe(2); // no --yes: nothing sent
    expect(cli(null, 'host', 'list').status).toBe(3);
    expect(cli('admin', 'vm', 'frobnicate').status).toBe(2);
    const audit = cli('admin', 'audit', '--since', '1h', '--outcome', 'denied', '--limit', '5', '--json');
    expect(audit.status, audit.stderr).toBe(0);
    expect(JSON.parse(audit.stdout).entries.length).toBe(5);
  });

  it("answers why a VM moved from the stored decision, with each VM's view its own", async () => {
    // A decision as the executor stores it: rb1 and rb2 evacuated off h3, rb2's filter names rb1.
    const id = 'dec-4f1e2d3c-0b9a-4877-8665-544332211000';
    const decision: DecisionRecord = {
      id,
      planner: 'evacuate',
      at: Date.now() - 1_000,
      reason: 'host h3 enters maintenance',
      ref: 'maintenance:h3',
      requestedBy: { id: 'tok-x', name: 'root-admin' },
      vms: ['rb1', 'rb2'],
      candidates: {
        rb1: [{ host: 'h1', feasible: true, rejectedBy: [], scores: { memory: 0.8 }, score: 0.8 }],
        rb2: [
          {
            host: 'h1',
            feasible: false,
            rejectedBy: [
              {
                plugin: 'anti-affinity',
                code: 'AntiAffinity',
                reason: 'anti-affinity group "rb": rb1 already on h1',
              },
            ],
            scores: {},
            score: 0,
          },
          { host: 'h2', feasible: true, rejectedBy: [], scores: { memory: 0.5 }, score: 0.5 },
        ],
      },
      actions: [
        { kind: 'migrate', vm: 'rb1', from: 'h3', to: 'h1', copyStorage: 'auto' },
        { kind: 'migrate', vm: 'rb2', from: 'h3', to: 'h2', copyStorage: 'auto' },
      ],
      ok: true,
      refused: [],
      jobs: [
        { id: 'mig-00000000-0000-4000-8000-0000000000a1', vm: 'rb1', kind: 'migrate' },
        { id: 'mig-00000000-0000-4000-8000-0000000000a2', vm: 'rb2', kind: 'migrate' },
      ],
    };
    const r = new Redis(redis.url);
    try {
      await new DecisionStore(r, 'keizoku:default:').put(decision);
    } finally {
      r.disconnect();
    }
    const all = await call('viewer', 'GET', `/v1/decisions/${id}`);
    expect(all.status).toBe(200);
    expect(all.body.vms).toEqual(['rb1', 'rb2']);
    // The jobs are not in the job system: the view says so rather than failing.
    expect(all.body.jobs.map((j: { state: string }) => j.state)).toEqual(['gone', 'gone']);
    const rb2 = await call('admin', 'GET', '/v1/vms/rb2/decisions?limit=5');
    expect(rb2.body.decisions.map((d: { id: string }) => d.id)).toEqual([id]);
    const own = await call('vmAdmin', 'GET', '/v1/vms/rb1/decisions');
    expect(own.status).toBe(200);
    expect(own.body.decisions[0].vms).toEqual(['rb1']);
    expect(JSON.stringify(own.body)).not.toContain('rb2');
    expect((await call('vmAdmin', 'GET', '/v1/vms/rb2/decisions')).status).toBe(404);
    const why = spawnSync('node', ['bin/keizoku.mjs', 'vm', 'why', 'rb1'], {
      encoding: 'utf8',
      env: { ...process.env, KEIZOKU_URL: kz.url, KEIZOKU_TOKEN: tokens.vmAdmin, KEIZOKU_CONFIG: '' },
    });
    expect(why.status, why.stderr).toBe(0);
    expect(why.stdout).toContain(`${id}  `);
    expect(why.stdout).toMatch(/h1\s+chosen\s+0\.80\s+memory 0\.80/);
    expect(why.stdout).not.toContain('rb2');
  });

  it("reports tier compliance and monthly availability from the probes' outage reports", async () => {
    const c = await call('viewer', 'GET', '/v1/tiers/compliance');
    expect(c.status).toBe(200);
    const rb1 = c.body.vms.find((v: { vm: string }) => v.vm === 'rb1');
    expect(rb1).toMatchObject({ tier: 'frontend' });
    expect(rb1.checks.find((x: { mechanism?: string }) => x.mechanism === 'failover')).toMatchObject({
      ok: true,
      reason: expect.stringMatching(/^rb1 can be restarted on h\d/),
    });
    expect(rb1.checks.find((x: { mechanism?: string }) => x.mechanism === 'live-migration').ok).toBe(true);
    const scoped = await call('vmAdmin', 'GET', '/v1/tiers/compliance');
    expect(scoped.body.vms.map((v: { vm: string }) => v.vm)).toEqual(['rb1']);

    const now = Date.now();
    const outage = {
      target: 'rb1',
      addresses: ['10.0.0.1'],
      startMs: now - 70_000,
      endMs: now - 10_000,
      outageMs: 60_000,
      lost: 6000,
    };
    // Two agents saw overlapping windows: counted once.
    await call('probe', 'POST', '/v1/probe/events', { probe: 'p1', site: 'dc1', events: [outage] });
    const p2 = await kz.token('probe', { name: 'p2', site: 'dc2' });
    const pushed = await kz.request('POST', '/v1/probe/events', p2, {
      events: [{ ...outage, startMs: now - 40_000 }],
    });
    expect(pushed.body).toEqual({ accepted: 1, refused: [] });
    mutating.push({ requestId: pushed.requestId!, outcome: 'succeeded', what: 'p2 POST /v1/probe/events' });
    const a = await call('viewer', 'GET', '/v1/tiers/availability');
    expect(a.status).toBe(200);
    const v = a.body.vms.find((x: { vm: string }) => x.vm === 'rb1');
    expect(v.outageMs).toBe(60_000);
    expect(v.availability.percent).toBeLessThan(100);
    const elapsed = a.body.periodEndMs - a.body.periodStartMs;
    expect(v.availability.percent).toBeCloseTo(((elapsed - 60_000) / elapsed) * 100, 6);
    expect(a.body.vms.find((x: { vm: string }) => x.vm === 'rb2').availability.percent).toBe(100);
    const frontend = a.body.tiers.find((t: { tier: string }) => t.tier === 'frontend');
    expect(frontend).toMatchObject({ vms: 2, minVm: 'rb1' });
    expect((await call('viewer', 'GET', '/v1/tiers/availability?month=2026-13')).status).toBe(400);
  });

  it("follows a VM's addresses changed live in its domain metadata (IP literals only)", async () => {
    const vm = lab.vms.find((v) => v.name === 'rb2')!;
    const h = lab.layout.hosts.find((x) => x.name === 'h2')!;
    const set = (inner: string) =>
      virsh(h, [
        'metadata',
        'rb2',
        'urn:keizoku:vm:1',
        '--key',
        'kz',
        '--live',
        '--config',
        '--set',
        `<vm>${inner}</vm>`,
      ]);
    const addressesSeen = async (want: string[]) => {
      for (let i = 0; i < 60; i++) {
        const r = await call('admin', 'GET', '/v1/vms/rb2');
        if (JSON.stringify(r.body.addresses) === JSON.stringify(want)) return;
        await new Promise((res) => setTimeout(res, 500));
      }
      throw new Error(`rb2 never showed addresses ${want.join(', ')}`);
    };
    expect((await call('admin', 'GET', '/v1/vms/rb2')).body.addresses).toEqual([vm.address]);
    try {
      // Read again every sixth inventory pass (1 s here).
      await set(`<address>${vm.address}</address><address>fd00::42</address><address>rb2.example</address>`);
      await addressesSeen([vm.address, 'fd00::42']);
    } finally {
      await set(`<address>${vm.address}</address>`);
    }
    await addressesSeen([vm.address]);
  });

  it('rate-limits one token past its requests per minute, with a clear 429, leaving other tokens alone', async () => {
    const t = await kz.token('viewer', { name: 'hasty' });
    const statuses: number[] = [];
    for (let i = 0; i < 1_210; i += 10) {
      const batch = await Promise.all(Array.from({ length: 10 }, () => kz.request('GET', '/v1/hosts', t)));
      statuses.push(...batch.map((r) => r.status));
      if (batch.some((r) => r.status === 429)) {
        expect(batch.find((r) => r.status === 429)!.body.error.message).toMatch(
          /more than 1200 requests a minute/,
        );
        break;
      }
    }
    expect(statuses.filter((s) => s === 200).length).toBe(1_200);
    expect(statuses).toContain(429);
    expect((await kz.request('GET', '/v1/hosts', tokens.viewer)).status).toBe(200);
  });

  it('has every mutating request of this file in the audit log once, with its outcome, in stream and day file', async () => {
    expect(mutating.length).toBeGreaterThan(40);
    const r = await kz.request('GET', '/v1/audit?limit=10000', tokens.admin);
    const entries = r.body.entries as { requestId: string; outcome: string }[];
    const files = readdirSync(kz.auditDir).filter((f) => f.endsWith('.jsonl'));
    const lines = files.flatMap((f) =>
      readFileSync(join(kz.auditDir, f), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { requestId: string; outcome: string; params: unknown }),
    );
    const problems: string[] = [];
    for (const m of mutating) {
      // One outcome entry each; a `received` one too when the handler ran (at most one).
      const of = (xs: { requestId: string; outcome: string }[], received: boolean) =>
        xs.filter((e) => e.requestId === m.requestId && (e.outcome === 'received') === received);
      const inStream = of(entries, false);
      const inFile = of(lines, false);
      if (m.outcome === 'not audited') {
        const any = entries.concat(lines).filter((e) => e.requestId === m.requestId).length;
        if (any > 0) problems.push(`${m.what}: audited, expected a counter only`);
      } else if (inStream.length !== 1 || inFile.length !== 1)
        problems.push(`${m.what}: ${inStream.length} in stream, ${inFile.length} in file`);
      else if (inStream[0]!.outcome !== m.outcome)
        problems.push(`${m.what}: ${inStream[0]!.outcome} != ${m.outcome}`);
      const received = of(lines, true).length;
      if (received > 1 || (m.outcome === 'succeeded' && received !== 1))
        problems.push(`${m.what}: ${received} received entries`);
    }
    expect(problems).toEqual([]);
    // Token commands are audited as local admin actions; no token appears anywhere.
    expect(lines.some((l) => (l as unknown as { action: string }).action === 'token.revoke')).toBe(true);
    const text = files.map((f) => readFileSync(join(kz.auditDir, f), 'utf8')).join('');
    for (const t of Object.values(tokens)) expect(text).not.toContain(t.slice(16));
    expect(kz.output()).not.toContain(tokens.admin.slice(16));
  });
});
