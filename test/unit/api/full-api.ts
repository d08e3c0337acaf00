import type { FastifyInstance } from 'fastify';
import type { Principal } from '../../../src/api/auth/rbac.ts';
import type { ApiDeps } from '../../../src/api/deps.ts';
import { auditRoutes } from '../../../src/api/routes/audit.ts';
import { decisionRoutes } from '../../../src/api/routes/decisions.ts';
import { drillRoutes } from '../../../src/api/routes/drills.ts';
import { drsRoutes } from '../../../src/api/routes/drs.ts';
import { failoverRoutes } from '../../../src/api/routes/failovers.ts';
import { haRoutes } from '../../../src/api/routes/ha.ts';
import { hostRoutes } from '../../../src/api/routes/hosts.ts';
import { type JobDeps, jobRoutes } from '../../../src/api/routes/jobs.ts';
import { powerRoutes } from '../../../src/api/routes/power.ts';
import { probeRoutes } from '../../../src/api/routes/probes.ts';
import { scheduleRoutes } from '../../../src/api/routes/schedules.ts';
import { tierRoutes } from '../../../src/api/routes/tiers.ts';
import { vmRoutes } from '../../../src/api/routes/vms.ts';
import { createApi } from '../../../src/api/server.ts';
import type { ClusterSnapshot, HostSnapshot, VmSnapshot } from '../../../src/core/model.ts';
import type { Decision } from '../../../src/core/plan.ts';
import type { Tiers } from '../../../src/core/tiers.ts';
import type { MigrationJobView, PowerJobView } from '../../../src/jobs/views.ts';
import { DrsLoop } from '../../../src/loops/drs.ts';
import type { HaPause } from '../../../src/store/ha.ts';
import { evacuation, JOB } from './decision-fixture.ts';
import { FO_ID, failoverFixture } from './failover-fixture.ts';
import { fakeAudit, TOKENS } from './fakes.ts';

/**
 * Every route group of keizokud on the API frame, over in-memory fakes that answer like the
 * real parts do (job views from src/jobs/views.ts, a decision from the decision fixture), so
 * that the OpenAPI document is the daemon's and the main routes give real answers to check
 * against it.
 */

const host = (name: string, vms: string[]): HostSnapshot => ({
  name,
  site: 'dc1',
  health: 'up',
  healthSince: 0,
  evidence: { connected: true, lastCallAgeMs: 10, icmp: true },
  cpus: 8,
  memoryKiB: 16 * 1024 * 1024,
  cpuUtilisation: 0.1,
  memoryUsedKiB: 4 * 1024 * 1024,
  maintenance: false,
  observedAt: 1,
  vms,
});
const vm = (name: string, on: string, state: VmSnapshot['state']): VmSnapshot => ({
  name,
  uuid: `uuid-${name}`,
  host: on,
  state,
  vcpus: 1,
  memoryKiB: 1024 * 1024,
  cpuUsage: 0.05,
  memoryUsedKiB: null,
});

export const SNAPSHOT: ClusterSnapshot = {
  takenAt: 0,
  sites: ['dc1'],
  hosts: new Map([
    ['h1', host('h1', ['vm1', 'off1'])],
    ['h2', host('h2', [])],
  ]),
  vms: new Map([
    ['vm1', vm('vm1', 'h1', 'running')],
    ['off1', vm('off1', 'h1', 'shutoff')],
  ]),
};

export const MIG_ID = 'mig-00000000-0000-4000-8000-0000000000aa';
export const REC_ID = 'rec-00000000-0000-4000-8000-000000000001';

/** DRS's own cluster: vm1 uses a whole vCPU on h1 (1 CPU), h2 (8 CPUs) is idle. */
const DRS_SNAPSHOT: ClusterSnapshot = {
  ...SNAPSHOT,
  takenAt: 1,
  hosts: new Map([
    ['h1', { ...host('h1', ['vm1']), cpus: 1 }],
    ['h2', host('h2', [])],
  ]),
  vms: new Map([['vm1', { ...vm('vm1', 'h1', 'running'), cpuUsage: 1 }]]),
};

const requestedBy = { id: 'id-admin', name: 'admin' };
const migration: MigrationJobView = {
  id: MIG_ID,
  kind: 'migrate',
  vm: 'vm1',
  from: 'h1',
  to: 'h2',
  reason: 'api',
  requestedBy,
  state: 'succeeded',
  createdAt: 1,
  decisionId: 'dec-00000000-0000-4000-8000-000000000001',
  progress: {
    phase: 'done',
    percent: 100,
    dataTotalBytes: 10,
    dataProcessedBytes: 10,
    dataRemainingBytes: 0,
    iteration: 2,
    dirtyRateBytesPerSec: 0,
    elapsedMs: 900,
  },
  result: {
    outcome: 'succeeded',
    reason: null,
    vm: 'vm1',
    from: 'h1',
    to: 'h2',
    host: 'h2',
    checks: [{ check: 'placement', ok: true, detail: 'h2 fits' }],
    startedAt: 1,
    finishedAt: 2,
    checkMs: 5,
    totalMs: 900,
    libvirtDowntimeMs: 150,
    dataTransferredBytes: 10,
    iterations: 2,
    postCopy: false,
    settings: null,
    probe: [
      {
        probe: 'p1',
        site: 'dc1',
        sent: 10,
        lost: 1,
        lossRate: 0.1,
        rttMinMs: 0.2,
        rttMaxMs: 1,
        rttAvgMs: 0.5,
        outageMs: 180,
      },
    ],
    session: { survived: true, heartbeats: 9, echoed: 9, longestGapMs: 200 },
    sessionUnchecked: null,
    downtimeRaises: [],
    guestResets: 0,
    reconciled: false,
  },
};

const powerJob = (id: string, kind: PowerJobView['kind'], vmName: string): PowerJobView => ({
  id,
  kind,
  vm: vmName,
  host: 'h1',
  from: 'h1',
  to: 'h1',
  reason: 'api',
  requestedBy,
  state: 'succeeded',
  createdAt: 1,
  decisionId: 'dec-00000000-0000-4000-8000-000000000002',
  progress: null,
  result: { outcome: 'succeeded', reason: null, vm: vmName, host: 'h1', finishedAt: 2 },
});

const TIERS = {
  dataClasses: {},
  tiers: [
    {
      id: 'low',
      label: 'Low',
      labelJa: '低',
      mechanisms: ['live-migration'],
      minSites: 1,
      dataClass: 'c',
      objectives: { maxOutageMs: { 'live-migration': 1000 }, rtoSeconds: 60, monthlyAvailabilityPercent: 99 },
    },
  ],
} as unknown as Tiers;

export async function fullApi(): Promise<FastifyInstance> {
  const principals: Record<string, Principal> = TOKENS;
  const app = await createApi({
    tokens: { verify: async (t: string) => principals[t] ?? null } as never,
    audit: fakeAudit() as never,
    bodyLimitBytes: 65_536,
    rateLimitPerMinute: 10_000,
  });
  const jobs = new Map<string, MigrationJobView | PowerJobView>([[MIG_ID, migration]]);
  const jobSystem = {
    get: async (id: string) => jobs.get(id) ?? null,
    list: async () => [...jobs.values()],
    holderOf: async () => null,
    cancel: async (id: string) => ({ ...jobs.get(id)!, state: 'cancelled' }),
    submit: async (d: Decision) => {
      const a = d.actions[0]!;
      const id = `${a.kind === 'migrate' ? 'mig' : a.kind}-00000000-0000-4000-8000-${String(jobs.size).padStart(12, '0')}`;
      const view =
        a.kind === 'migrate'
          ? { ...migration, id, state: 'waiting' as const, progress: null, result: null, decisionId: d.id }
          : powerJob(id, a.kind as PowerJobView['kind'], (a as { vm: string }).vm);
      jobs.set(id, view);
      return { decision: { ...d, jobs: [] }, jobs: [view] };
    },
    wait: async (id: string) => jobs.get(id) ?? null,
  };
  let pause: HaPause | null = null;
  const deps = {
    snapshot: () => SNAPSHOT,
    haPaused: async () => pause,
    clientFor: () => null,
    policyOf: (name: string) =>
      name === 'vm1'
        ? { tier: 'low', limits: null, haPriority: 0, homeSite: null, recoverySite: null, source: 'config' }
        : null,
    setPolicy: async () => {},
    addressesOf: () => ['10.0.0.5'],
    labelsOf: () => ({ app: 'web' }),
    tierIds: ['low'],
    limitsProfiles: [],
    store: { history: async () => [], getPlacement: async () => null },
    audit: {
      query: async () => [
        {
          time: '2026-01-01T00:00:00.000Z',
          actor: 'id-admin',
          actorName: 'admin',
          role: 'admin',
          action: 'vm.migrate',
          target: 'vm1',
          params: { path: { name: 'vm1' }, body: {}, query: null },
          outcome: 'succeeded',
          status: 202,
          message: null,
          requestId: 'r1',
          remote: '127.0.0.1',
        },
      ],
    },
    probeBook: {
      register: async () => {},
      live: async () => [
        { name: 'p1', site: 'dc1', url: 'http://127.0.0.1:7481', intervalMs: 1000, seenAt: 1 },
      ],
      check: () => null,
      addOutages: async () => {},
      outagesBetween: async () => ({ byTarget: new Map(), truncated: false }),
    },
    redis: null,
    prefix: 'test:',
  } as unknown as ApiDeps;
  const jobDeps = {
    jobs: jobSystem,
    evacuations: {
      enter: async (h: string) => ({ host: h, maintenance: true, jobs: [], job: null, decision: 'dec-x' }),
      exit: async (h: string) => ({ host: h, maintenance: false, jobs: [], job: null, decision: 'dec-y' }),
    },
    placement: {
      rulesOf: () => ({ affinityGroup: null, antiAffinityGroup: null }),
      cpuOvercommit: 4,
      memoryFraction: 0.9,
      haPriorityOf: () => 0,
    },
    policyLimits: { maxTimeoutMs: 300_000, minBandwidthMiBs: 100, allowPostCopy: false },
  } as unknown as JobDeps;
  const drill = {
    id: 'drill-00000000-0000-4000-8000-000000000001',
    scenario: 'live-migration',
    vm: 'vm1',
    count: 2,
    status: 'queued',
    createdAt: 1,
    requestedBy: 'admin',
    movesDone: 0,
    error: null,
    report: null,
  };
  hostRoutes(app, deps);
  vmRoutes(app, deps);
  auditRoutes(app, deps);
  probeRoutes(app, deps);
  jobRoutes(app, deps, jobDeps);
  powerRoutes(app, deps, { jobs: jobSystem as never, store: deps.store, waitMs: 10 });
  decisionRoutes(app, deps, {
    decisions: {
      get: async (id) => (id === evacuation().id ? evacuation() : null),
      forVm: async () => [evacuation()],
    },
    jobs: { get: async (id) => (id === JOB.db1 ? migration : null) },
  });
  scheduleRoutes(app, {
    describe: async () => [
      {
        name: 'night',
        kind: 'vm-schedule',
        vms: ['off1'],
        stop: '0 22 * * *',
        start: '0 6 * * *',
        skipHolidays: true,
        timeZone: 'Asia/Tokyo',
        nextStop: 1,
        nextStart: 2,
        runs: [{ at: 1, action: 'stop', vms: ['off1'], failed: [], skipped: null }],
      },
    ],
  } as never);
  drillRoutes(
    app,
    {
      enqueue: async () => drill,
      list: async () => [{ ...drill, report: undefined }].map(({ report: _, ...d }) => d),
      get: async (id: string) => (id === drill.id ? drill : null),
    } as never,
    'UTC',
  );
  tierRoutes(app, deps, {
    tiers: TIERS,
    timeZone: 'UTC',
    placement: { cpuOvercommit: 4, memoryFraction: 0.9 },
  });
  // The real reconciler in manual mode over a fixed snapshot: one pass makes REC_ID.
  const drs = new DrsLoop({
    snapshot: () => DRS_SNAPSHOT,
    jobs: jobSystem,
    placement: jobDeps.placement,
    modeOf: () => 'manual',
    anyEnabled: () => true,
    tierAllows: () => true,
    aggressiveness: 5,
    planIntervalMs: 30_000,
    sampleIntervalMs: 1_000,
    log: { info() {}, warn() {} },
    newRecommendationId: () => REC_ID,
  });
  await drs.pass(1);
  drsRoutes(app, { drs, mode: 'manual', aggressiveness: 5 });
  // The HA state as the failover loop saves it: h1 recovering one VM, one VM in error.
  haRoutes(app, deps, {
    store: {
      loadState: async () => ({
        machine: {
          seq: 2,
          hosts: {
            h1: {
              ...{ phase: 'recovering', since: 5, health: 'fenced', downSince: 1, vms: ['vm1'] },
              ...{ attempt: 1, fenceStartedAt: null, nextFenceAt: null, pending: [] },
              ...{ inFlight: { vm1: 'h2' }, failedOn: {}, nextPlanAt: null },
            },
          },
          vms: { off1: { phase: 'error', host: 'h1', restarts: [1, 2, 3], relocated: true } },
        },
        jobs: {},
      }),
      pause: async (p) => {
        pause = p;
      },
      resume: async () => {
        const was = pause !== null;
        pause = null;
        return was;
      },
      paused: async () => pause,
      requestClear: async () => undefined,
    },
    placement: { ...jobDeps.placement, haPriorityOf: () => 0, tierRankOf: () => 0 },
    toleratedHostFailures: 0,
  });
  failoverRoutes(app, {
    store: {
      list: async (o) => [failoverFixture()].filter((r) => !o?.host || r.host === o.host),
      get: async (id) => (id === FO_ID ? failoverFixture() : null),
    },
  });
  await app.ready();
  return app;
}
