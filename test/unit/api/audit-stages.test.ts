import type { FastifyInstance } from 'fastify';
import { describe, expect, it } from 'vitest';
import { drillRoutes } from '../../../src/api/routes/drills.ts';
import { type JobDeps, jobRoutes } from '../../../src/api/routes/jobs.ts';
import type { DrillSystem } from '../../../src/drills/runner.ts';
import type { JobView } from '../../../src/jobs/queue.ts';
import { api, bearer, fakeAudit } from './fakes.ts';

/** A mutating route whose effect the test can count. */
function startRoute(
  app: FastifyInstance,
  effects: { n: number; auditedBefore: number[] },
  audit: { calls: unknown[] },
) {
  app.post(
    '/v1/vms/:name/start',
    { config: { action: 'vm.start', vmParam: 'name' } },
    async (_req, reply) => {
      effects.n++;
      effects.auditedBefore.push(audit.calls.length);
      return reply.status(202).send({ started: true });
    },
  );
  app.post(
    '/v1/vms/:name/destroy',
    {
      config: { action: 'vm.destroy', vmParam: 'name' },
      schema: {
        body: {
          type: 'object',
          required: ['confirm'],
          additionalProperties: false,
          properties: { confirm: { type: 'boolean' } },
        },
      },
    },
    async () => {
      effects.n++;
      throw new Error('libvirt said no: secret detail');
    },
  );
}

const diskFull = () => Object.assign(new Error('disk full'), { code: 'ENOSPC' });

describe('audit stages (F4)', () => {
  it('F4: an audit log that cannot be written gives 503 and the handler does not run', async () => {
    const audit = fakeAudit(diskFull);
    const { app } = await api({ audit });
    const effects = { n: 0, auditedBefore: [] as number[] };
    startRoute(app, effects, audit);
    const r = await app.inject({ method: 'POST', url: '/v1/vms/vm1/start', headers: bearer('admin') });
    expect(r.statusCode).toBe(503);
    expect(r.json().error.code).toBe('audit_unavailable');
    expect(r.body).not.toContain('disk full');
    expect(effects.n).toBe(0);
  });

  it('F4: a mutating request writes a received entry before its handler runs, then exactly one outcome entry', async () => {
    const { app, audit } = await api();
    const effects = { n: 0, auditedBefore: [] as number[] };
    startRoute(app, effects, audit);
    const r = await app.inject({ method: 'POST', url: '/v1/vms/vm1/start', headers: bearer('operator') });
    expect(r.statusCode).toBe(202);
    expect(effects.auditedBefore).toEqual([1]);
    expect(audit.written.map((e) => [e.outcome, e.action, e.target, e.requestId])).toEqual([
      ['received', 'vm.start', 'vm1', r.headers['x-request-id']],
      ['succeeded', 'vm.start', 'vm1', r.headers['x-request-id']],
    ]);
  });

  it('F4: an outcome entry that cannot be written gives the API error body (no raw error text), written once', async () => {
    const audit = fakeAudit((e) => (e.outcome === 'received' ? null : diskFull()));
    const { app } = await api({ audit });
    const effects = { n: 0, auditedBefore: [] as number[] };
    startRoute(app, effects, audit);
    const r = await app.inject({ method: 'POST', url: '/v1/vms/vm1/start', headers: bearer('admin') });
    expect(effects.n).toBe(1);
    expect(r.statusCode).toBe(500);
    expect(r.json()).toEqual({ error: { code: 'audit_failed', message: expect.any(String) } });
    expect(r.body).not.toContain('disk full');
    // One received entry and one attempt at the outcome: the error response does not audit again.
    expect(audit.calls.map((e) => e.outcome)).toEqual(['received', 'succeeded']);
  });

  it('F4: an error sent after the outcome entry (a later onSend hook throwing) does not write a second one', async () => {
    const { app, audit } = await api();
    let thrown = 0;
    app.post(
      '/v1/vms/:name/shutdown',
      {
        config: { action: 'vm.shutdown', vmParam: 'name' },
        onSend: async (_req, _reply, payload) => {
          if (thrown++ === 0) throw new Error('serialiser broke');
          return payload;
        },
      },
      async (_req, reply) => reply.status(202).send({ ok: true }),
    );
    const r = await app.inject({ method: 'POST', url: '/v1/vms/vm1/shutdown', headers: bearer('admin') });
    expect(r.statusCode).toBe(500);
    expect(r.body).not.toContain('serialiser broke');
    expect(audit.calls.map((e) => e.outcome)).toEqual(['received', 'succeeded']);
  });

  it('F4: a handler that throws gives one failed entry, and a request refused by validation no received entry', async () => {
    const { app, audit } = await api();
    const effects = { n: 0, auditedBefore: [] as number[] };
    startRoute(app, effects, audit);
    const failed = await app.inject({
      method: 'POST',
      url: '/v1/vms/vm1/destroy',
      headers: bearer('admin'),
      payload: { confirm: true },
    });
    expect(failed.statusCode).toBe(500);
    expect(failed.body).not.toContain('secret detail');
    const invalid = await app.inject({
      method: 'POST',
      url: '/v1/vms/vm1/destroy',
      headers: bearer('admin'),
      payload: { confirm: 'yes' },
    });
    expect(invalid.statusCode).toBe(400);
    expect(audit.calls.map((e) => [e.outcome, e.status ?? null])).toEqual([
      ['received', null],
      ['failed', 500],
      ['rejected', 400],
    ]);
  });
});

const job = (o: Partial<JobView> = {}): JobView =>
  ({
    id: 'mig-00000000-0000-4000-8000-000000000001',
    kind: 'migrate',
    vm: 'vm1',
    from: 'h1',
    to: 'h2',
    reason: 'api',
    requestedBy: { id: 'x', name: 'x' },
    state: 'active',
    createdAt: 0,
    progress: null,
    result: null,
    decisionId: null,
    ...o,
  }) as JobView;

function withJobs(app: FastifyInstance, jobs: JobView[]) {
  const cancelled: string[] = [];
  const j = {
    jobs: {
      get: async (id: string) => jobs.find((x) => x.id === id) ?? null,
      cancel: async (id: string) => {
        cancelled.push(id);
        return { ...jobs.find((x) => x.id === id)!, state: 'cancelled' };
      },
      list: async () => jobs,
    },
    evacuations: {},
    placement: {},
  } as unknown as JobDeps;
  jobRoutes(
    app,
    { snapshot: () => ({ takenAt: 0, sites: [], hosts: new Map(), vms: new Map() }) } as never,
    j,
  );
  return cancelled;
}

describe('audit of cancels and of refusals raised in handlers (F12)', () => {
  const mine = job();
  const theirs = job({ id: 'mig-00000000-0000-4000-8000-000000000002', vm: 'vm2' });

  it("F12: a cancel is audited as job.cancel with the job's VM as target", async () => {
    const { app, audit } = await api();
    const cancelled = withJobs(app, [mine]);
    const r = await app.inject({ method: 'DELETE', url: `/v1/jobs/${mine.id}`, headers: bearer('operator') });
    expect(r.statusCode).toBe(202);
    expect(cancelled).toEqual([mine.id]);
    const outcome = audit.written.filter((e) => e.outcome !== 'received');
    expect(outcome.map((e) => [e.action, e.target, e.outcome])).toEqual([['job.cancel', 'vm1', 'succeeded']]);
  });

  it("F12: a viewer's cancel and a vm-admin's cancel of a hidden job are audited as denied", async () => {
    const { app, audit } = await api();
    const cancelled = withJobs(app, [mine, theirs]);
    const viewer = await app.inject({
      method: 'DELETE',
      url: `/v1/jobs/${mine.id}`,
      headers: bearer('viewer'),
    });
    const hidden = await app.inject({
      method: 'DELETE',
      url: `/v1/jobs/${theirs.id}`,
      headers: bearer('owner'),
    });
    const missing = await app.inject({
      method: 'DELETE',
      url: '/v1/jobs/mig-00000000-0000-4000-8000-000000000009',
      headers: bearer('owner'),
    });
    const own = await app.inject({ method: 'DELETE', url: `/v1/jobs/${mine.id}`, headers: bearer('owner') });
    expect([viewer.statusCode, hidden.statusCode, missing.statusCode, own.statusCode]).toEqual([
      403, 404, 404, 202,
    ]);
    // The hidden job answers exactly as a missing one.
    expect(hidden.json().error.message.replace(theirs.id, 'X')).toBe(
      missing.json().error.message.replace('mig-00000000-0000-4000-8000-000000000009', 'X'),
    );
    expect(cancelled).toEqual([mine.id]);
    const outcome = audit.written.filter((e) => e.outcome !== 'received');
    expect(outcome.map((e) => [e.action, e.outcome, e.status])).toEqual([
      ['job.cancel', 'denied', 403],
      ['job.cancel', 'denied', 404],
      ['job.cancel', 'rejected', 404],
      ['job.cancel', 'succeeded', 202],
    ]);
  });

  it('F12: a drill is audited as drill.run with its VM as target', async () => {
    const { app, audit } = await api();
    const enqueued: unknown[] = [];
    const drills = {
      enqueue: async (req: unknown) => {
        enqueued.push(req);
        return { id: 'drill-1' };
      },
    } as unknown as DrillSystem;
    drillRoutes(app, drills, 'UTC');
    const r = await app.inject({
      method: 'POST',
      url: '/v1/drills',
      headers: bearer('operator'),
      payload: { scenario: 'live-migration', vm: 'vm1' },
    });
    expect(r.statusCode).toBe(202);
    expect(enqueued.length).toBe(1);
    const outcome = audit.written.filter((e) => e.outcome !== 'received');
    expect(outcome.map((e) => [e.action, e.target, e.outcome])).toEqual([['drill.run', 'vm1', 'succeeded']]);
  });
});
