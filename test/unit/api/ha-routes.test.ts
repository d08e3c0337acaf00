import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { TokenStore } from '../../../src/api/auth/tokens.ts';
import type { ApiDeps } from '../../../src/api/deps.ts';
import { haRoutes } from '../../../src/api/routes/ha.ts';
import { hostRoutes } from '../../../src/api/routes/hosts.ts';
import { powerRoutes } from '../../../src/api/routes/power.ts';
import { createApi } from '../../../src/api/server.ts';
import { emptyHaState } from '../../../src/core/ha/machine.ts';
import type { FailoverPlacement } from '../../../src/core/ha/restart-plan.ts';
import type { Decision } from '../../../src/core/plan.ts';
import type { PowerJobView } from '../../../src/jobs/views.ts';
import { AuditLog } from '../../../src/store/audit.ts';
import { HaStore } from '../../../src/store/ha.ts';
import { redisKeys } from '../../../src/store/keys.ts';
import { startRedis } from '../../support/redis.ts';
import { host, snap, vm } from '../core/planners/fixture.ts';

/**
 * The HA routes and admission of starts through Fastify inject, with the real HaStore, audit
 * log and tokens on a real redis-server: who may pause, what is audited, what the status and
 * the hosts list show, the what-if plan, and a start refused for the failures it would break.
 */

const PREFIX = 'kz-test:';
let server: Awaited<ReturnType<typeof startRedis>>;
let redis: Redis;
let dir: string;
let audit: AuditLog;
let tokens: TokenStore;
let ha: HaStore;
let t: Record<'admin' | 'operator' | 'viewer' | 'owner', string>;
const submitted: Decision[] = [];
const views = new Map<string, PowerJobView>();

// dc1: h1 runs db1 (tier core, priority 9) and web1 (tier front, priority 5), both HA, and
// batch1 whose tier has no failover; h2 is empty but for big-off and small-off, shut off.
// dc2: h3, never a target (restarts stay in their site).
const cluster = () =>
  snap(
    [host('h1', 'dc1', 1000), host('h2', 'dc1', 1000), host('h3', 'dc2', 1000)],
    [
      vm('db1', 'h1', 300),
      vm('web1', 'h1', 400),
      vm('batch1', 'h1', 100),
      vm('big-off', 'h2', 500, { state: 'shutoff' }),
      vm('small-off', 'h2', 100, { state: 'shutoff' }),
    ],
  );
const TIER: Record<string, string> = { db1: 'core', web1: 'front', batch1: 'batch' };
const PRIO: Record<string, number> = { db1: 9, web1: 5 };
const placement: FailoverPlacement = {
  rulesOf: () => ({ affinityGroup: null, antiAffinityGroup: null }),
  cpuOvercommit: 4,
  memoryFraction: 1,
  haPriorityOf: (v) => PRIO[v] ?? null,
  tierRankOf: (v) => (TIER[v] === 'core' ? 0 : 1),
};

const jobs = {
  holderOf: async () => null,
  submit: async (d: Decision) => {
    submitted.push(d);
    const a = d.actions[0] as { vm: string; host: string };
    const view: PowerJobView = {
      id: `start-00000000-0000-4000-8000-${String(submitted.length).padStart(12, '0')}`,
      kind: 'start',
      vm: a.vm,
      host: a.host,
      from: a.host,
      to: a.host,
      reason: 'api',
      requestedBy: d.requestedBy,
      state: 'succeeded',
      createdAt: 1,
      decisionId: d.id,
      progress: null,
      result: { outcome: 'succeeded', reason: null, vm: a.vm, host: a.host, finishedAt: 2 },
    };
    views.set(view.id, view);
    return { decision: { ...d, jobs: [] }, jobs: [view] };
  },
  wait: async (id: string) => views.get(id) ?? null,
};

async function build(toleratedHostFailures: number): Promise<FastifyInstance> {
  const app = await createApi({ tokens, audit, bodyLimitBytes: 65_536, rateLimitPerMinute: 100_000 });
  const deps = {
    snapshot: cluster,
    policyOf: (v: string) => (TIER[v] ? { tier: TIER[v] } : null),
    haPaused: () => ha.paused(),
  } as unknown as ApiDeps;
  hostRoutes(app, deps);
  haRoutes(app, deps, { store: ha, placement, toleratedHostFailures });
  powerRoutes(app, deps, {
    jobs: jobs as never,
    store: { getPlacement: async () => null },
    waitMs: 10,
    admission: { placement, policy: { toleratedHostFailures } },
  });
  await app.ready();
  return app;
}

let app: FastifyInstance;
async function call(who: keyof typeof t, method: 'GET' | 'POST' | 'DELETE', url: string, body?: object) {
  const r = await app.inject({
    method,
    url,
    headers: { authorization: `Bearer ${t[who]}` },
    ...(body ? { payload: body } : {}),
  });
  // biome-ignore lint/suspicious/noExplicitAny: test code reads whatever JSON the route answers
  return { status: r.statusCode, body: r.json() as any };
}
const auditOf = async (action: string) =>
  (await audit.query({ action, limit: 100 })).filter((e) => e.outcome !== 'received').reverse();

beforeAll(async () => {
  server = await startRedis();
  redis = new Redis(server.url);
  dir = mkdtempSync(join(tmpdir(), 'kz-ha-api-'));
  audit = new AuditLog(redis, PREFIX, { dir, retentionDays: 1, streamMaxEntries: 10_000, timeZone: 'UTC' });
});
afterAll(async () => {
  await app?.close();
  await audit.close();
  redis.disconnect();
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
});
beforeEach(async () => {
  await app?.close();
  await redis.flushdb();
  submitted.length = 0;
  tokens = new TokenStore(redis, PREFIX, 0);
  ha = new HaStore(redis, PREFIX);
  t = {
    admin: (await tokens.create({ name: 'root', role: 'admin' })).token,
    operator: (await tokens.create({ name: 'ops', role: 'operator' })).token,
    viewer: (await tokens.create({ name: 'eyes', role: 'viewer' })).token,
    owner: (await tokens.create({ name: 'owner', role: 'vm-admin', vms: ['web1'] })).token,
  };
  app = await build(0);
});

describe('pause and resume', () => {
  it('an operator pauses: stored with who and why, shown in the status and the hosts list, audited', async () => {
    const before = Date.now();
    const r = await call('operator', 'POST', '/v1/ha/pause', { forSeconds: 1800, reason: 'switch reboot' });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ by: 'ops', reason: 'switch reboot' });
    expect(r.body.until - r.body.since).toBe(1_800_000);
    expect(r.body.since).toBeGreaterThanOrEqual(before);
    expect(await ha.paused()).toEqual(r.body);
    // The key expires by itself, with the pause.
    const ttl = await redis.pttl(redisKeys(PREFIX).haPause);
    expect(ttl).toBeGreaterThan(1_790_000);
    expect(ttl).toBeLessThanOrEqual(1_800_000);

    expect((await call('viewer', 'GET', '/v1/ha')).body.pause).toEqual(r.body);
    expect((await call('viewer', 'GET', '/v1/hosts')).body.haPause).toEqual(r.body);
    expect(await auditOf('ha.pause')).toMatchObject([
      { actorName: 'ops', role: 'operator', outcome: 'succeeded', status: 200, target: 'ha' },
    ]);
  });

  it('a viewer and a vm-admin may not pause (403, audited as denied); a vm-admin may not read it', async () => {
    for (const who of ['viewer', 'owner'] as const) {
      const r = await call(who, 'POST', '/v1/ha/pause', { forSeconds: 60 });
      expect(r.status).toBe(403);
      expect(r.body.error.message).toMatch(/may not ha\.pause/);
    }
    expect((await call('owner', 'GET', '/v1/ha')).status).toBe(403);
    expect((await call('viewer', 'DELETE', '/v1/ha/pause')).status).toBe(403);
    expect(await ha.paused()).toBeNull();
    expect((await auditOf('ha.pause')).map((e) => [e.actorName, e.outcome, e.status])).toEqual([
      ['eyes', 'denied', 403],
      ['owner', 'denied', 403],
    ]);
    expect((await auditOf('ha.resume')).map((e) => [e.actorName, e.outcome])).toEqual([['eyes', 'denied']]);
  });

  it('refuses a duration outside 1 s..1 day and unknown fields, naming the field', async () => {
    for (const body of [{ forSeconds: 0 }, { forSeconds: 86_401 }, { forSeconds: 1.5 }, {}]) {
      const r = await call('admin', 'POST', '/v1/ha/pause', body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body.error.message).toMatch(/^body/);
    }
    const extra = await call('admin', 'POST', '/v1/ha/pause', { forSeconds: 5, until: 1 });
    expect(extra.body.error.message).toMatch(/"until"/);
    expect(await ha.paused()).toBeNull();
  });

  it('resume ends the pause at once; resuming again says nothing was paused', async () => {
    const p = (await call('admin', 'POST', '/v1/ha/pause', { forSeconds: 600 })).body;
    expect(p.reason).toBeNull();
    expect(await call('operator', 'DELETE', '/v1/ha/pause')).toEqual({
      status: 200,
      body: { resumed: true, pause: p },
    });
    expect(await ha.paused()).toBeNull();
    expect((await call('viewer', 'GET', '/v1/hosts')).body.haPause).toBeNull();
    expect((await call('operator', 'DELETE', '/v1/ha/pause')).body).toEqual({ resumed: false, pause: null });
    expect((await auditOf('ha.resume')).map((e) => [e.actorName, e.outcome, e.status])).toEqual([
      ['ops', 'succeeded', 200],
      ['ops', 'succeeded', 200],
    ]);
  });

  it('a pause ends by itself', async () => {
    await call('admin', 'POST', '/v1/ha/pause', { forSeconds: 1 });
    expect((await call('viewer', 'GET', '/v1/ha')).body.pause).not.toBeNull();
    await new Promise((r) => setTimeout(r, 1_100));
    expect((await call('viewer', 'GET', '/v1/ha')).body.pause).toBeNull();
  });
});

describe('GET /v1/ha', () => {
  it("shows each host's phase from the stored state, hosts it has not seen yet as null, and VMs in error", async () => {
    const machine = emptyHaState();
    machine.hosts.h1 = {
      ...{ phase: 'recovering', since: 7, health: 'fenced', downSince: 3, vms: ['db1', 'web1'] },
      ...{ attempt: 2, fenceStartedAt: null, nextFenceAt: null, pending: ['web1'] },
      ...{ inFlight: { db1: 'h2' }, failedOn: {}, nextPlanAt: 20 },
    };
    machine.vms.batch9 = { phase: 'error', host: 'h2', restarts: [1, 2, 3], relocated: true };
    machine.vms.web9 = { phase: 'ok', host: 'h2', restarts: [1], relocated: false };
    await ha.saveState({ machine, jobs: {} });
    const r = await call('viewer', 'GET', '/v1/ha');
    expect(r.status).toBe(200);
    expect(r.body).toEqual({
      pause: null,
      toleratedHostFailures: 0,
      hosts: [
        {
          name: 'h1',
          health: 'up',
          phase: 'recovering',
          since: 7,
          fenceAttempt: 2,
          pending: ['web1'],
          restarting: [{ vm: 'db1', to: 'h2' }],
        },
        { name: 'h2', health: 'up', phase: null, since: null, fenceAttempt: 0, pending: [], restarting: [] },
        { name: 'h3', health: 'up', phase: null, since: null, fenceAttempt: 0, pending: [], restarting: [] },
      ],
      vmsInError: [{ vm: 'batch9', host: 'h2', restarts: 3, relocated: true }],
    });
  });
});

describe('POST /v1/ha/whatif', () => {
  it('plans the restarts of a failed host in tier and priority order, within its site, naming VMs left down', async () => {
    const r = await call('viewer', 'POST', '/v1/ha/whatif', { fail: ['h1'] });
    expect(r.status).toBe(200);
    expect(r.body).toEqual({
      fail: ['h1'],
      reason: 'what if h1 failed',
      ok: true,
      order: ['db1', 'web1'],
      actions: [
        { vm: 'db1', from: 'h1', to: 'h2', tier: 'core', priority: 9 },
        { vm: 'web1', from: 'h1', to: 'h2', tier: 'front', priority: 5 },
      ],
      refused: [],
      notRestarted: ['batch1'],
    });
    expect(submitted).toEqual([]);
  });

  it('refuses what fits nowhere with every host reason', async () => {
    const r = await call('viewer', 'POST', '/v1/ha/whatif', { fail: ['h2', 'h1'] });
    expect(r.body.fail).toEqual(['h1', 'h2']);
    expect(r.body.ok).toBe(false);
    expect(r.body.actions).toEqual([]);
    expect(r.body.refused.map((x: { vm: string }) => x.vm)).toEqual(['db1', 'web1']);
    expect(r.body.refused[0].reasons.join('; ')).toMatch(/h2: host h2 is fenced/);
  });

  it('answers 404 for an unknown host and 400 for an empty or repeated list', async () => {
    const r = await call('viewer', 'POST', '/v1/ha/whatif', { fail: ['h1', 'h9'] });
    expect(r).toMatchObject({ status: 404, body: { error: { message: 'no host named "h9"' } } });
    expect((await call('viewer', 'POST', '/v1/ha/whatif', { fail: [] })).status).toBe(400);
    expect((await call('viewer', 'POST', '/v1/ha/whatif', { fail: ['h1', 'h1'] })).status).toBe(400);
  });
});

describe('admission control of starts', () => {
  it('with no tolerated failure configured, any start that fits is submitted', async () => {
    const r = await call('operator', 'POST', '/v1/vms/big-off/start');
    expect(r.status, JSON.stringify(r.body)).toBe(202);
    expect(submitted).toHaveLength(1);
  });

  it('with one tolerated failure, a start that leaves an HA VM no room is refused with the reason; one that fits is not', async () => {
    await app.close();
    app = await build(1);
    const r = await call('operator', 'POST', '/v1/vms/big-off/start');
    expect(r.status).toBe(409);
    expect(r.body.error).toEqual({
      code: 'admission_refused',
      message:
        'starting big-off on h2 would leave web1 unable to restart if h1 failed (1 host failure tolerated)',
    });
    expect(submitted).toEqual([]);
    expect((await auditOf('vm.start')).map((e) => [e.outcome, e.status, e.target])).toEqual([
      ['rejected', 409, 'big-off'],
    ]);

    const ok = await call('operator', 'POST', '/v1/vms/small-off/start');
    expect(ok.status, JSON.stringify(ok.body)).toBe(202);
    expect(submitted.map((d) => d.actions[0])).toEqual([{ kind: 'start', vm: 'small-off', host: 'h2' }]);
    expect((await call('viewer', 'GET', '/v1/ha')).body.toleratedHostFailures).toBe(1);
  });
});

describe('clearing a VM from failover error', () => {
  const inError = async () => {
    const machine = emptyHaState();
    machine.vms.web1 = { phase: 'error', host: 'h1', restarts: [1, 2, 3], relocated: true };
    machine.vms.db1 = { phase: 'restarting', host: 'h1', restarts: [1], relocated: false };
    await ha.saveState({ machine, jobs: {} });
  };

  it('an operator clears a VM in error: queued for the leader (202), audited with the VM', async () => {
    await inError();
    const r = await call('operator', 'POST', '/v1/ha/vms/web1/clear');
    expect(r.status).toBe(202);
    expect(r.body).toEqual({ vm: 'web1', host: 'h1', restarts: 3 });
    expect(await ha.takeClears()).toEqual(['web1']);
    expect(await ha.takeClears()).toEqual([]);
    expect(await auditOf('ha.clear')).toMatchObject([
      { actorName: 'ops', outcome: 'succeeded', status: 202, target: 'web1' },
    ]);
  });

  it('refuses a VM that is not in error (409, naming its phase) and one failover never saw', async () => {
    await inError();
    const busy = await call('admin', 'POST', '/v1/ha/vms/db1/clear');
    expect(busy.status).toBe(409);
    expect(busy.body.error.message).toMatch(/"db1" is not in failover error \(it is restarting\)/);
    const unseen = await call('admin', 'POST', '/v1/ha/vms/batch1/clear');
    expect(unseen.status).toBe(409);
    expect(await ha.takeClears()).toEqual([]);
  });

  it("a viewer and the VM's own vm-admin may not clear it (403, audited as denied)", async () => {
    await inError();
    for (const who of ['viewer', 'owner'] as const)
      expect((await call(who, 'POST', '/v1/ha/vms/web1/clear')).status).toBe(403);
    expect(await ha.takeClears()).toEqual([]);
    expect((await auditOf('ha.clear')).map((e) => [e.actorName, e.outcome])).toEqual([
      ['eyes', 'denied'],
      ['owner', 'denied'],
    ]);
  });
});
