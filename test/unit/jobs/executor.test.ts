import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import type { MigrationConfig } from '../../../src/config/index.ts';
import type { ClusterSnapshot, HostSnapshot, VmSnapshot } from '../../../src/core/model.ts';
import type { Decision } from '../../../src/core/plan.ts';
import { bullConnection } from '../../../src/jobs/connection.ts';
import type { MigrationPorts } from '../../../src/jobs/migrate.ts';
import type { PowerPorts } from '../../../src/jobs/power.ts';
import { JobConflict, JobSystem, SubmitRefused } from '../../../src/jobs/queue.ts';
import type { LibvirtClient } from '../../../src/libvirt/client.ts';
import { AuditLog } from '../../../src/store/audit.ts';
import { DecisionStore } from '../../../src/store/decisions.ts';
import { startRedis } from '../../support/redis.ts';

const P = 'kz:exec:';

const host = (name: string): HostSnapshot => ({
  name,
  site: 'dc1',
  health: 'up',
  cpus: 8,
  memoryKiB: 16 << 20,
  cpuUtilisation: 0.1,
  memoryUsedKiB: 0,
  maintenance: false,
  observedAt: 1,
  vms: [],
});
const vm = (name: string, on: string, state = 'running'): VmSnapshot => ({
  name,
  uuid: name,
  host: on,
  state,
  vcpus: 1,
  memoryKiB: 1 << 20,
  cpuUsage: 0,
  memoryUsedKiB: null,
});

function decision(actions: Decision['actions']): Decision {
  return {
    id: `dec-${Math.random().toString(16).slice(2)}`,
    planner: 'operator',
    at: 1,
    reason: 'test',
    ref: 'api',
    requestedBy: { id: 't', name: 'tester' },
    vms: actions.map((a) => (a.kind === 'fence' ? a.host : a.vm)),
    candidates: {},
    actions,
    ok: true,
    refused: [],
  };
}

/**
 * The executor against a real redis-server and BullMQ, with a recording fake in place of
 * libvirt: one submit is all or nothing, one job per VM, and power actions run under the lock.
 */
describe('executor (submit, VM locks, power jobs)', () => {
  let server: Awaited<ReturnType<typeof startRedis>>;
  let redis: Redis;
  let dir: string;
  let jobs: JobSystem;
  let snap: ClusterSnapshot;
  const calls: string[] = [];
  /** A start waits for this (to hold a job active). */
  let startGate: Promise<void> = Promise.resolve();

  const fakeClient = (h: string) =>
    ({
      lookupByName: async (name: string) => ({ name, uuid: Buffer.alloc(16), id: 1 }),
      start: async (d: { name: string }) => {
        await startGate;
        calls.push(`start ${d.name} on ${h}`);
        return d;
      },
      shutdown: async (d: { name: string }) => void calls.push(`shutdown ${d.name} on ${h}`),
      destroy: async (d: { name: string }) => void calls.push(`destroy ${d.name} on ${h}`),
      getState: async () => ({ state: 'shutoff', reason: 0 }),
    }) as unknown as LibvirtClient;

  beforeAll(async () => {
    server = await startRedis();
    redis = new Redis(server.url);
    dir = mkdtempSync(join(tmpdir(), 'kz-exec-'));
  });
  afterAll(async () => {
    redis?.disconnect();
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  beforeEach(async () => {
    await redis.flushdb();
    calls.length = 0;
    snap = {
      takenAt: 1,
      sites: ['dc1'],
      hosts: new Map(['h1', 'h2'].map((h) => [h, host(h)])),
      vms: new Map([
        ['vm1', vm('vm1', 'h1')],
        ['vm2', vm('vm2', 'h1')],
        ['vm3', vm('vm3', 'h1', 'shutoff')],
      ]),
    };
    const log = { info: () => undefined, warn: () => undefined };
    const ports = {
      snapshot: () => snap,
      clientFor: (h: string) => fakeClient(h),
      policy: { clusterConcurrency: 2, perHostConcurrency: 1 } as MigrationConfig,
      log,
    } as unknown as MigrationPorts;
    const power: PowerPorts = {
      clientFor: (h) => fakeClient(h),
      refusalsNow: async () => [],
      domainXmlOf: async () => null,
    };
    const audit = new AuditLog(redis, P, { dir, retentionDays: 1, streamMaxEntries: 1000, timeZone: 'UTC' });
    jobs = new JobSystem(server.url, P, ports, power, audit, redis, new DecisionStore(redis, P));
  });
  afterEach(async () => {
    vi.restoreAllMocks();
    startGate = Promise.resolve();
    await jobs.close();
  });

  const migrate = (v: string) => ({
    kind: 'migrate' as const,
    vm: v,
    from: 'h1',
    to: 'h2',
    copyStorage: false,
  });

  it('lets exactly one of two concurrent migrations win a VM whose lock a finished job left behind', async () => {
    const first = await jobs.enqueueMigration({
      ...migrate('vm1'),
      requestedBy: { id: 't', name: 't' },
      reason: 'api',
    });
    // The first job finishes without releasing (a crash after BullMQ marked it done).
    await redis.hset(`${P}bull:migrate:${first.id}`, 'finishedOn', String(Date.now()));
    const req = { ...migrate('vm1'), requestedBy: { id: 't', name: 't' }, reason: 'api' };
    const results = await Promise.allSettled([jobs.enqueueMigration(req), jobs.enqueueMigration(req)]);
    const won = results.filter((r) => r.status === 'fulfilled');
    const lost = results.filter((r) => r.status === 'rejected');
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(1);
    expect((lost[0] as PromiseRejectedResult).reason).toBeInstanceOf(JobConflict);
    const winner = (won[0] as PromiseFulfilledResult<{ id: string }>).value.id;
    expect((lost[0] as PromiseRejectedResult).reason.message).toMatch(
      new RegExp(`^vm1 already has job ${winner} `),
    );
    expect((await jobs.holderOf('vm1'))?.id).toBe(winner);
  });

  it('submits a plan all or nothing: one VM busy, no job, no lock, no decision for the others', async () => {
    await jobs.enqueueMigration({ ...migrate('vm2'), requestedBy: { id: 't', name: 't' }, reason: 'api' });
    const d = decision([migrate('vm1'), migrate('vm2')]);
    await expect(jobs.submit(d)).rejects.toThrow(/^vm2 already has job mig-[0-9a-f-]{36} \(waiting\)$/);
    expect(await jobs.holderOf('vm1')).toBeNull();
    expect(await new DecisionStore(redis, P).get(d.id)).toBeNull();
    expect((await jobs.list()).map((j) => j.vm)).toEqual(['vm2']);
  });

  it('refuses a plan that a fresh snapshot contradicts, or an action it cannot run, and changes nothing', async () => {
    (snap.hosts as Map<string, HostSnapshot>).set('h1', { ...host('h1'), health: 'unreachable' });
    await expect(jobs.submit(decision([migrate('vm1')]))).rejects.toThrow(SubmitRefused);
    await expect(jobs.submit(decision([migrate('vm1')]))).rejects.toThrow('vm1: host h1 is unreachable');
    (snap.hosts as Map<string, HostSnapshot>).set('h1', host('h1'));
    await expect(
      jobs.submit(decision([{ kind: 'restart-elsewhere', vm: 'vm1', from: 'h1', to: 'h2' }])),
    ).rejects.toThrow('vm1: VM "vm1" is already running on h1');
    expect(await jobs.list()).toEqual([]);
    expect(await jobs.holderOf('vm1')).toBeNull();
  });

  it('stores the decision with its job ids, and the jobs carry the decision', async () => {
    const d = decision([migrate('vm1'), migrate('vm2')]);
    const { jobs: views, decision: record } = await jobs.submit(d, { reason: 'maintenance:h1' });
    expect(views.map((v) => [v.kind, v.vm, v.reason, v.decisionId])).toEqual([
      ['migrate', 'vm1', 'maintenance:h1', d.id],
      ['migrate', 'vm2', 'maintenance:h1', d.id],
    ]);
    const stored = await new DecisionStore(redis, P).get(d.id);
    expect(stored?.jobs).toEqual(record.jobs);
    expect(stored?.jobs.map((j) => j.id)).toEqual(views.map((v) => v.id));
  });

  it('never reports a job finished without its result when it completes between the reads of a look-up', async () => {
    let open!: () => void;
    startGate = new Promise<void>((r) => (open = r));
    jobs.startWorker();
    const { jobs: views } = await jobs.submit(decision([{ kind: 'start', vm: 'vm3', host: 'h1' }]));
    const id = views[0]!.id;
    while ((await jobs.get(id))?.state !== 'active') await new Promise((r) => setTimeout(r, 20));
    // The next look-up reads the job while it is active, and the job completes right after.
    const getJob = Queue.prototype.getJob;
    let raced = false;
    vi.spyOn(Queue.prototype, 'getJob').mockImplementation(async function (this: Queue, jobId: string) {
      const job = await getJob.call(this, jobId);
      if (job && jobId === id && !raced) {
        raced = true;
        open();
        while (!(await redis.hget(`${P}bull:power:${id}`, 'finishedOn')))
          await new Promise((r) => setTimeout(r, 20));
      }
      return job;
    });
    const done = await jobs.wait(id, 10_000);
    expect(raced).toBe(true);
    expect(done).toMatchObject({ state: 'succeeded', result: { outcome: 'succeeded', vm: 'vm3' } });
  });

  it('runs a start as a job under the VM lock, then frees the lock', async () => {
    jobs.startWorker();
    const { jobs: views } = await jobs.submit(decision([{ kind: 'start', vm: 'vm3', host: 'h1' }]));
    const job = views[0]!;
    expect(job).toMatchObject({ kind: 'start', vm: 'vm3', host: 'h1', id: expect.stringMatching(/^start-/) });
    const done = await jobs.wait(job.id, 10_000);
    expect(done).toMatchObject({
      state: 'succeeded',
      result: { outcome: 'succeeded', vm: 'vm3', host: 'h1' },
    });
    expect(calls).toEqual(['start vm3 on h1']);
    expect(await jobs.holderOf('vm3')).toBeNull();
    expect(await redis.exists(`${P}vm:vm3:job`)).toBe(0);
  });

  it('F13: a list reads only what the caller needs: the newest few, or a narrow scope paged through', async () => {
    const q = new Queue('migrate', { connection: bullConnection(server.url), prefix: `${P}bull` });
    const data = (vm: string) => ({ ...migrate(vm), requestedBy: { id: 't', name: 't' }, reason: 'api' });
    // Five of vm1's jobs, the oldest, then 300 of other VMs.
    await q.addBulk(
      [...Array(5)].map((_, i) => ({ name: 'migrate', data: data('vm1'), opts: { jobId: `mig-own-${i}` } })),
    );
    await q.addBulk(
      [...Array(300)].map((_, i) => ({
        name: 'migrate',
        data: data(`vm-x${i}`),
        opts: { jobId: `mig-x-${i}` },
      })),
    );
    let loaded = 0;
    const getJobs = Queue.prototype.getJobs;
    Queue.prototype.getJobs = async function (this: Queue, ...a: Parameters<Queue['getJobs']>) {
      const r = await getJobs.apply(this, a);
      loaded += r.length;
      return r;
    };
    try {
      const newest = await jobs.list(10);
      expect(newest).toHaveLength(10);
      expect(loaded).toBeLessThanOrEqual(50);
      loaded = 0;
      const own = await jobs.list(10, (j) => j.vm === 'vm1');
      expect(own.map((j) => j.id).sort()).toEqual([0, 1, 2, 3, 4].map((i) => `mig-own-${i}`));
      expect(loaded).toBe(305);
    } finally {
      Queue.prototype.getJobs = getJobs;
      await q.close();
    }
  });
});
