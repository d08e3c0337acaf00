import type { Job } from 'bullmq';
import type { FastifyInstance, InjectOptions } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PowerAction } from '../../../src/jobs/power.ts';
import { POWER_KINDS, POWER_QUEUE } from '../../../src/jobs/power.ts';
import { toView } from '../../../src/jobs/views.ts';
import { raiseDecision } from '../../../src/loops/drs.ts';
import { Contract } from '../../support/openapi.ts';
import { DEC_ID } from './decision-fixture.ts';
import { FO_ID } from './failover-fixture.ts';
import { bearer } from './fakes.ts';
import { fullApi, MIG_ID, REC_ID } from './full-api.ts';

/**
 * The main routes' answers, successes and errors, checked against the published document
 * (strictly: a field the document does not describe fails). The integration tests check
 * every answer the real keizokud gives them the same way (test/support/keizokud.ts).
 */

let app: FastifyInstance;
let contract: Contract;
beforeAll(async () => {
  app = await fullApi();
  contract = new Contract((await app.inject({ method: 'GET', url: '/v1/openapi.json' })).json());
});
afterAll(() => app.close());

const DRILL = 'drill-00000000-0000-4000-8000-000000000001';
const as = (who: string, method: InjectOptions['method'], url: string, payload?: object): InjectOptions => ({
  method,
  url,
  headers: bearer(who),
  ...(payload ? { payload } : {}),
});

const EXCHANGES: [InjectOptions, number][] = [
  [as('admin', 'GET', '/v1/hosts'), 200],
  [as('admin', 'GET', '/v1/hosts/h1'), 200],
  [as('admin', 'GET', '/v1/hosts/nope'), 404],
  [as('owner', 'GET', '/v1/hosts'), 403],
  [as('admin', 'GET', '/v1/vms'), 200],
  [as('admin', 'GET', '/v1/vms/vm1'), 200],
  [as('owner', 'GET', '/v1/vms/off1'), 404],
  [{ method: 'GET', url: '/v1/vms' }, 401],
  [as('admin', 'PUT', '/v1/vms/vm1/policy', { haPriority: 5 }), 200],
  [as('admin', 'PUT', '/v1/vms/vm1/policy', { tier: 'gold' }), 400],
  [as('admin', 'PUT', '/v1/vms/vm1/policy', { x: 1 }), 400],
  [as('admin', 'GET', '/v1/audit?limit=5'), 200],
  [as('admin', 'POST', '/v1/vms/vm1/migrate', { to: 'h2' }), 202],
  [as('admin', 'POST', '/v1/vms/vm1/migrate', { to: 'h1' }), 409],
  [as('admin', 'GET', '/v1/jobs'), 200],
  [as('admin', 'GET', `/v1/jobs/${MIG_ID}`), 200],
  [as('admin', 'GET', '/v1/jobs/mig-00000000-0000-4000-8000-00000000ffff'), 404],
  [as('admin', 'DELETE', `/v1/jobs/${MIG_ID}`), 409],
  [as('admin', 'POST', '/v1/vms/off1/start'), 202],
  [as('admin', 'POST', '/v1/vms/vm1/shutdown'), 202],
  [as('admin', 'POST', '/v1/vms/vm1/destroy', { confirm: true }), 202],
  [as('admin', 'POST', '/v1/vms/vm1/start'), 409],
  [as('admin', 'POST', '/v1/hosts/h2/maintenance', { action: 'enter' }), 202],
  [as('admin', 'POST', '/v1/hosts/h1/confirm-off', { confirm: true }), 409],
  [as('admin', 'GET', `/v1/decisions/${DEC_ID}`), 200],
  [as('admin', 'GET', '/v1/vms/web1/decisions'), 200],
  [as('admin', 'GET', '/v1/schedules'), 200],
  [as('admin', 'GET', '/v1/schedules/night'), 200],
  [as('admin', 'GET', '/v1/schedules/nope'), 404],
  [as('admin', 'POST', '/v1/drills', { scenario: 'live-migration', vm: 'vm1', count: 2 }), 202],
  [as('admin', 'GET', '/v1/drills'), 200],
  [as('admin', 'GET', `/v1/drills/${DRILL}`), 200],
  [as('admin', 'GET', `/v1/drills/${DRILL}?format=md`), 409],
  [
    as('admin', 'POST', '/v1/probes', {
      name: 'p1',
      site: 'dc1',
      url: 'http://127.0.0.1:7481',
      intervalMs: 1000,
    }),
    200,
  ],
  [as('admin', 'GET', '/v1/probes'), 200],
  [as('admin', 'POST', '/v1/probe/events', { probe: 'p1', site: 'dc1', events: [] }), 200],
  [as('admin', 'GET', '/v1/tiers/compliance'), 200],
  [as('admin', 'GET', '/v1/tiers/availability?month=2026-01'), 200],
  [as('viewer', 'GET', '/v1/drs/recommendations'), 200],
  [as('admin', 'GET', '/v1/drs/explain/vm1'), 200],
  [as('admin', 'GET', '/v1/drs/explain/nope'), 404],
  [as('viewer', 'POST', `/v1/drs/recommendations/${REC_ID}/apply`), 403],
  [as('admin', 'POST', `/v1/drs/recommendations/${REC_ID}/apply`), 202],
  [as('admin', 'POST', `/v1/drs/recommendations/${REC_ID}/apply`), 404],
  [as('viewer', 'GET', '/v1/ha'), 200],
  [as('operator', 'POST', '/v1/ha/pause', { forSeconds: 60, reason: 'switch reboot' }), 200],
  [as('viewer', 'POST', '/v1/ha/pause', { forSeconds: 60 }), 403],
  [as('admin', 'POST', '/v1/ha/pause', { forSeconds: 0 }), 400],
  [as('operator', 'DELETE', '/v1/ha/pause'), 200],
  [as('operator', 'POST', '/v1/ha/vms/off1/clear'), 202],
  [as('viewer', 'POST', '/v1/ha/vms/off1/clear'), 403],
  [as('admin', 'POST', '/v1/ha/vms/vm1/clear'), 409],
  [as('viewer', 'POST', '/v1/ha/whatif', { fail: ['h1'] }), 200],
  [as('admin', 'POST', '/v1/ha/whatif', { fail: ['nope'] }), 404],
  [as('viewer', 'GET', '/v1/ha/failovers'), 200],
  [as('viewer', 'GET', '/v1/ha/failovers?host=h1&limit=5'), 200],
  [as('viewer', 'GET', '/v1/ha/failovers?limit=0'), 400],
  [as('viewer', 'GET', `/v1/ha/failovers/${FO_ID}`), 200],
  [as('viewer', 'GET', '/v1/ha/failovers/fo-h9-1'), 404],
  [as('viewer', 'GET', '/v1/ha/failovers/..%2Fx'), 400],
  [as('owner', 'GET', '/v1/ha/failovers'), 403],
  [as('admin', 'GET', '/v1/nowhere'), 404],
];

describe('responses against the OpenAPI document', () => {
  it.each(EXCHANGES.map(([o, s]) => [`${o.method} ${o.url} → ${s}`, o, s] as const))(
    '%s fits the document',
    async (_, o, status) => {
      const r = await app.inject(o);
      expect(r.statusCode, r.body).toBe(status);
      const body =
        r.body === '' ? '' : r.headers['content-type']?.toString().includes('json') ? r.json() : r.body;
      expect(
        contract.check({
          method: String(o.method),
          url: String(o.url),
          status: r.statusCode,
          contentType: (r.headers['content-type'] as string | undefined) ?? null,
          body,
        }),
      ).toEqual([]);
    },
  );

  it('every documented operation is exercised here', () => {
    const seen = new Set(
      EXCHANGES.map(([o]) => {
        const path = String(o.url).split('?')[0]!;
        return contract.operationFor(String(o.method), path)?.operationId;
      }),
    );
    const all = Object.values(contract.doc.paths).flatMap((item) => Object.values(item as object));
    expect(all.map((op) => op.operationId).filter((id) => !seen.has(id))).toEqual([]);
  });

  it('a job of every power kind fits the document (a DRS cap raise and a restart elsewhere too)', () => {
    const replica = {
      vm: 'vm1',
      disk: 'vda',
      host: 'h3',
      address: '10.0.0.13',
      port: 10809,
      name: 'vm1-vda',
      path: '/var/lib/keizoku/replicas/vm1-vda.replica.qcow2',
      sizeBytes: 67108864,
    };
    const actions: Record<PowerAction['kind'], PowerAction> = {
      start: { kind: 'start', vm: 'vm1', host: 'h1' },
      shutdown: { kind: 'shutdown', vm: 'vm1', host: 'h1' },
      destroy: { kind: 'destroy', vm: 'vm1', host: 'h1' },
      define: { kind: 'define', vm: 'vm1', host: 'h1' },
      undefine: { kind: 'undefine', vm: 'vm1', host: 'h1' },
      'restart-elsewhere': { kind: 'restart-elsewhere', vm: 'vm1', from: 'h1', to: 'h2' },
      'raise-cpu-cap': {
        kind: 'raise-cpu-cap',
        vm: 'vm1',
        host: 'h1',
        quotaPercent: 90,
        periodUs: 100_000,
        holdMs: 60_000,
      },
      'start-mirror': { kind: 'start-mirror', vm: 'vm1', host: 'h1', target: replica },
      'restart-from-replica': {
        kind: 'restart-from-replica',
        vm: 'vm1',
        from: 'h1',
        to: 'h3',
        replicas: [replica],
      },
    };
    for (const kind of POWER_KINDS) {
      const id = `${kind}-00000000-0000-4000-8000-000000000001`;
      const job = {
        id,
        timestamp: 1,
        queueName: POWER_QUEUE,
        data: {
          action: actions[kind],
          requestedBy: { id: 'c', name: 'controller' },
          reason: 'drs',
          decisionId: null,
        },
        returnvalue: { outcome: 'succeeded', reason: null, vm: 'vm1', host: 'h1', finishedAt: 2 },
      } as unknown as Job;
      const x = { method: 'GET', url: `/v1/jobs/${id}`, status: 200, contentType: 'application/json' };
      expect(contract.check({ ...x, body: toView(job, 'completed') }), kind).toEqual([]);
    }
  });

  it("a DRS cap raise's decision fits the document", () => {
    const raise = {
      vm: 'vm1',
      host: 'h1',
      fromPercent: 50,
      toPercent: 90,
      capPercent: 50,
      burstPercent: 90,
      periodUs: 100_000,
      holdMs: 10_000,
      extraVcpus: 0.4,
      renewal: false,
      reason: 'vm1 bursts against its cap of 50 % per vCPU',
    };
    const d = raiseDecision(raise, 1, {
      id: DEC_ID,
      ref: 'drs',
      requestedBy: { id: 'c', name: 'controller' },
    });
    const body = { ...d, jobs: [], partial: false };
    const x = { status: 200, contentType: 'application/json' };
    expect(contract.check({ ...x, method: 'GET', url: `/v1/decisions/${DEC_ID}`, body })).toEqual([]);
    const list = { vm: 'vm1', decisions: [body] };
    expect(contract.check({ ...x, method: 'GET', url: '/v1/vms/vm1/decisions', body: list })).toEqual([]);
  });

  it('an undocumented field, a wrong type, an undocumented status or content type each fail', () => {
    const job = { method: 'GET', url: `/v1/jobs/${MIG_ID}`, contentType: 'application/json' };
    const ok = { error: { code: 'not_found', message: 'no job' } };
    expect(contract.check({ ...job, status: 404, body: ok })).toEqual([]);
    expect(contract.check({ ...job, status: 404, body: { error: { ...ok.error, stack: 'x' } } })[0]).toMatch(
      /body\/error must NOT have additional properties \("stack"\)/,
    );
    expect(contract.check({ ...job, status: 404, body: { error: { code: 1, message: 'm' } } })[0]).toMatch(
      /body\/error\/code must be string/,
    );
    expect(contract.check({ ...job, status: 302, body: '' })[0]).toMatch(/status not in the document/);
    expect(contract.check({ ...job, status: 404, contentType: 'text/plain', body: 'x' })[0]).toMatch(
      /content type "text\/plain" not in the document/,
    );
    expect(contract.check({ ...job, url: '/v1/jobz', status: 200, body: {} })[0]).toMatch(/no operation/);
  });
});
