import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Principal } from '../../../src/api/auth/rbac.ts';
import type { TokenStore } from '../../../src/api/auth/tokens.ts';
import type { JobFacts } from '../../../src/api/decision-view.ts';
import type { ApiDeps } from '../../../src/api/deps.ts';
import { decisionRoutes } from '../../../src/api/routes/decisions.ts';
import { createApi } from '../../../src/api/server.ts';
import type { DecisionRecord } from '../../../src/core/plan.ts';
import type { AuditLog } from '../../../src/store/audit.ts';
import { DEC_ID, evacuation, JOB, OTHER_ID, principal } from './decision-fixture.ts';

/** The API frame with the decision routes over in-memory decisions and jobs. */
const PRINCIPALS: Record<string, Principal> = {
  admin: principal('admin'),
  viewer: principal('viewer'),
  operator: principal('operator'),
  db1: principal('vm-admin', ['db1']),
  probe: principal('probe'),
};

const web2Only: DecisionRecord = {
  ...evacuation(),
  id: OTHER_ID,
  at: evacuation().at + 60_000,
  planner: 'operator',
  reason: 'migrate web2 to h2',
  ref: 'api',
  vms: ['web2'],
  candidates: { web2: evacuation().candidates.web2! },
  actions: [{ kind: 'migrate', vm: 'web2', from: 'h3', to: 'h2', copyStorage: false }],
  jobs: [{ id: 'mig-00000000-0000-4000-8000-00000000000f', vm: 'web2', kind: 'migrate' }],
};
const RECORDS = [evacuation(), web2Only];

const JOBS = new Map<string, JobFacts>([
  [
    JOB.db1,
    {
      state: 'succeeded',
      result: { outcome: 'succeeded', reason: null, finishedAt: 2, probe: [{ outageMs: 210 }] },
    },
  ],
]);

let app: FastifyInstance;

beforeAll(async () => {
  app = await createApi({
    tokens: { verify: async (t: string) => PRINCIPALS[t] ?? null } as unknown as TokenStore,
    audit: { record: async () => ({}) } as unknown as AuditLog,
    bodyLimitBytes: 65_536,
    rateLimitPerMinute: 10_000,
  });
  const snapshot = () => ({
    takenAt: 0,
    sites: ['dc1'],
    hosts: new Map(),
    vms: new Map(['web1', 'web2', 'db1', 'db2', 'db9.x'].map((n) => [n, { name: n }])),
  });
  decisionRoutes(app, { snapshot } as unknown as ApiDeps, {
    decisions: {
      get: async (id) => RECORDS.find((r) => r.id === id) ?? null,
      forVm: async (vm, limit = 10) =>
        RECORDS.filter((r) => r.vms.includes(vm))
          .sort((a, b) => b.at - a.at)
          .slice(0, limit),
    },
    jobs: { get: async (id) => JOBS.get(id) ?? null },
  });
  await app.ready();
});
afterAll(() => app.close());

const get = (who: string, url: string) =>
  app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${who}` } });

describe('GET /v1/decisions/{id}', () => {
  it('shows an admin the whole decision with its jobs joined', async () => {
    const r = await get('admin', `/v1/decisions/${DEC_ID}`);
    expect(r.statusCode).toBe(200);
    const body = r.json();
    expect(body.vms).toEqual(['web1', 'db1', 'web2']);
    expect(body.actions).toHaveLength(4);
    expect(body.actions[3]).toEqual({ kind: 'fence', host: 'h1' });
    expect(body.candidates.web1[0]).toEqual({
      host: 'h2',
      feasible: true,
      rejectedBy: [],
      scores: { memory: 0.9, cpu: 0.7 },
      score: 0.82,
    });
    expect(body.jobs.find((j: { id: string }) => j.id === JOB.db1)).toMatchObject({
      state: 'succeeded',
      outcome: 'succeeded',
      outageMs: 210,
    });
    expect(body.jobs.find((j: { id: string }) => j.id === JOB.web1)).toMatchObject({ state: 'gone' });
    expect(body.partial).toBe(false);
    expect(r.body).toContain('db2, db9.x already on h2');
  });

  it("shows a vm-admin its VM's part and no other VM's name", async () => {
    const r = await get('db1', `/v1/decisions/${DEC_ID}`);
    expect(r.statusCode).toBe(200);
    expect(r.json().vms).toEqual(['db1']);
    expect(r.json().partial).toBe(true);
    expect(r.json().candidates.db1[0].rejectedBy[0]).toMatchObject({ code: 'AntiAffinity', redacted: true });
    for (const other of ['web1', 'web2', 'db2', 'db9']) expect(r.body).not.toContain(other);
  });

  it('gives a vm-admin the same 404 for a decision about other VMs as for a missing one', async () => {
    const other = await get('db1', `/v1/decisions/${OTHER_ID}`);
    const missing = await get('db1', '/v1/decisions/dec-00000000-0000-4000-8000-000000000000');
    expect(other.statusCode).toBe(404);
    expect(missing.statusCode).toBe(404);
    expect(other.json().error.code).toBe(missing.json().error.code);
    expect(other.body).not.toContain('web2');
    // It exists: an admin reads it.
    expect((await get('admin', `/v1/decisions/${OTHER_ID}`)).statusCode).toBe(200);
  });

  it('lets viewers and operators read, not probes or anonymous callers; checks the id', async () => {
    expect((await get('viewer', `/v1/decisions/${DEC_ID}`)).statusCode).toBe(200);
    expect((await get('operator', `/v1/decisions/${DEC_ID}`)).statusCode).toBe(200);
    expect((await get('probe', `/v1/decisions/${DEC_ID}`)).statusCode).toBe(403);
    expect((await app.inject({ method: 'GET', url: `/v1/decisions/${DEC_ID}` })).statusCode).toBe(401);
    const bad = await get('admin', '/v1/decisions/mig-1');
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.message).toMatch(/id/);
  });
});

describe('GET /v1/vms/{name}/decisions', () => {
  it('lists the decisions that touched the VM, newest first, limited', async () => {
    const r = await get('viewer', '/v1/vms/web2/decisions');
    expect(r.statusCode).toBe(200);
    expect(r.json().vm).toBe('web2');
    expect(r.json().decisions.map((d: { id: string }) => d.id)).toEqual([OTHER_ID, DEC_ID]);
    const one = await get('viewer', '/v1/vms/web2/decisions?limit=1');
    expect(one.json().decisions.map((d: { id: string }) => d.id)).toEqual([OTHER_ID]);
    expect((await get('viewer', '/v1/vms/web2/decisions?limit=0')).statusCode).toBe(400);
    expect((await get('viewer', '/v1/vms/web2/decisions?since=1')).statusCode).toBe(400);
  });

  it("gives a vm-admin its VM's decisions redacted, and hides other VMs", async () => {
    const r = await get('db1', '/v1/vms/db1/decisions');
    expect(r.statusCode).toBe(200);
    expect(r.json().decisions).toHaveLength(1);
    for (const other of ['web1', 'web2', 'db2', 'db9']) expect(r.body).not.toContain(other);
    const hidden = await get('db1', '/v1/vms/web2/decisions');
    expect(hidden.statusCode).toBe(404);
    expect(hidden.json().error.code).toBe('not_found');
  });
});
