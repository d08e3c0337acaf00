import type { Job } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { MigrationConfig } from '../../../src/config/index.ts';
import type { MigrationRequest, MigrationResult } from '../../../src/jobs/migrate.ts';
import { MIGRATE_QUEUE, type MigrationJobDeps, runMigrationJob } from '../../../src/jobs/migration-job.ts';
import { Slots } from '../../../src/jobs/slots.ts';
import { VmLocks } from '../../../src/jobs/vm-lock.ts';
import type { AuditInput, AuditLog } from '../../../src/store/audit.ts';
import { startRedis } from '../../support/redis.ts';
import { type FakeMove, fakeMove, movePorts, moveRequest, policy } from './fake-move.ts';

const P = 'kz:mruns:';
const BULL = `${P}bull`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A migration job's runs against a real redis-server, with a fake BullMQ job (a re-run is the
 * same job id run again, as BullMQ's stalled checker does) and a fake libvirt.
 */
describe('migration job runs (F15, F16, F20)', () => {
  let server: Awaited<ReturnType<typeof startRedis>>;
  let redis: Redis;
  let audit: AuditInput[];
  let locks: VmLocks;

  beforeAll(async () => {
    server = await startRedis();
    redis = new Redis(server.url);
  });
  afterAll(async () => {
    redis?.disconnect();
    await server?.stop();
  });
  beforeEach(async () => {
    await redis.flushdb();
    audit = [];
    locks = new VmLocks(redis, P, BULL, 30_000);
  });

  const deps = (
    f: FakeMove,
    p: MigrationConfig = policy(),
    slots = new Slots(redis, P),
  ): MigrationJobDeps => ({
    redis,
    prefix: P,
    ports: movePorts(f, p),
    audit: { record: async (e: AuditInput) => void audit.push(e) } as unknown as AuditLog,
    locks,
    slots,
  });
  /** The job as the submit path leaves it: its lock taken, its BullMQ hash unfinished. */
  const submitted = async (id: string, req: MigrationRequest = moveRequest) => {
    expect(await locks.take([{ vm: req.vm, job: id, queue: MIGRATE_QUEUE }])).toEqual({ ok: true });
    await redis.hset(`${BULL}:${MIGRATE_QUEUE}:${id}`, 'name', 'migrate');
    return { id, data: req, updateProgress: async () => undefined } as unknown as Job;
  };
  const finishes = () => audit.filter((e) => e.action === 'migration.finish');

  it('F15: a stalled run that resumes after its re-run moved the VM never migrates, and leaves the winner its lock, slots and attempt marker', async () => {
    const f = fakeMove();
    let resume!: () => void;
    f.gate = new Promise((r) => (resume = r));
    const d = deps(f, policy({ perHostConcurrency: 2 }));
    const job = await submitted('mig-1');
    // Run 1 stalls in its pre-checks (libvirtChecks waits on the gate)...
    const stalled = runMigrationJob(d, job);
    await sleep(100);
    // ...its lock lapses and the stalled checker runs the job again: run 2 takes over.
    f.gate = null;
    const rerun = runMigrationJob(d, job);
    for (let i = 0; i < 100 && f.calls.length === 0; i++) await sleep(20);
    expect(f.calls).toEqual(['migrate on h1']);
    resume();
    const first: MigrationResult = await stalled;
    expect(first).toMatchObject({ outcome: 'refused', host: 'h1' });
    expect(first.reason).toBe('a re-run of this job has taken over the VM; this run did not move it');
    // The winner's state is all still there.
    expect(await redis.hget(`${P}vm:vm1:job`, 'gen')).toBe('2');
    expect(await redis.exists(`${P}job:mig-1:attempt`)).toBe(1);
    for (const s of ['host:h1', 'host:h2', 'cluster'])
      expect(await new Slots(redis, P).holders(s)).toEqual(['mig-1:2']);
    expect(finishes()).toHaveLength(0);
    f.complete();
    expect(await rerun).toMatchObject({ outcome: 'succeeded', host: 'h2' });
    expect(f.calls).toEqual(['migrate on h1']);
    expect(finishes()).toHaveLength(1);
  });

  it("F16: a re-run aborts an orphaned move past the move's own timeout (not the config's), and the VM stays on the source", async () => {
    const f = fakeMove();
    f.jobType = 'unbounded';
    const req = { ...moveRequest, policy: { timeoutMs: 1_000 } };
    const job = await submitted('mig-2', req);
    // The dead run had asked libvirt to move the VM 1.5 s ago.
    await redis.set(`${P}job:mig-2:attempt`, JSON.stringify({ startedAt: Date.now() - 1_500 }));
    const result = await runMigrationJob(deps(f, policy({ timeoutMs: 600_000 })), job);
    expect(f.calls).toEqual(['abort on h1']);
    expect(result).toMatchObject({ outcome: 'aborted', host: 'h1', reconciled: true });
    expect(result.reason).toBe(
      'keizokud restarted during the move; aborted after its timeout of 1000 ms and vm1 runs on h1',
    );
  });

  it('F16: a domain paused on the destination while the source is unreachable is not a finished move', async () => {
    const f = fakeMove();
    f.state.set('h2', 'paused');
    f.unreachable.add('h1');
    const req = { ...moveRequest, policy: { timeoutMs: 1_000 } };
    const job = await submitted('mig-3', req);
    await redis.set(`${P}job:mig-3:attempt`, JSON.stringify({ startedAt: Date.now() - 62_000 }));
    const result = await runMigrationJob(deps(f), job);
    expect(result.outcome).toBe('failed');
    expect(result.host).toBeNull();
    expect(result.reason).toBe(
      'keizokud restarted during the move; vm1 runs on no host; paused on h2: the incoming move has not finished',
    );
  });

  it('F20: slots are refreshed during slow pre-checks: a claim outlives its time to live, and a second move waits', async () => {
    const f = fakeMove();
    let resume!: () => void;
    f.gate = new Promise((r) => (resume = r));
    const slots = new Slots(redis, P, 150);
    const d = deps(f, policy(), slots);
    const run = runMigrationJob(d, await submitted('mig-4'));
    await sleep(500); // three times the claim's time to live, in the pre-checks
    expect(await slots.acquire('other', [{ name: 'host:h1', limit: 1 }])).toBe(false);
    resume();
    for (let i = 0; i < 100 && f.calls.length === 0; i++) await sleep(20);
    f.complete();
    expect((await run).outcome).toBe('succeeded');
  });

  it('F20: a claim that lapsed and was taken meanwhile stops the move before libvirt is asked', async () => {
    const slots = new Slots(redis, P, 150);
    expect(await slots.acquire('a', [{ name: 'host:h1', limit: 1 }])).toBe(true);
    await sleep(200);
    // Lapsed and free: taken again by a refresh.
    expect(await slots.refresh('a', [{ name: 'host:h1', limit: 1 }])).toBe(true);
    await sleep(200);
    expect(await slots.acquire('b', [{ name: 'host:h1', limit: 1 }])).toBe(true);
    // Lapsed and taken: lost.
    expect(await slots.refresh('a', [{ name: 'host:h1', limit: 1 }])).toBe(false);
    expect(await slots.holders('host:h1')).toEqual(['b']);

    const f = fakeMove();
    let resume!: () => void;
    f.gate = new Promise((r) => (resume = r));
    const slow = new Slots(redis, P, 60_000);
    await redis.flushdb();
    const run = runMigrationJob(deps(f, policy(), slow), await submitted('mig-5'));
    await sleep(100);
    // Its claim is gone (a long stall, or Redis lost it) and another move took the slot.
    await redis.del(`${P}slots:host:h1`);
    expect(await slow.acquire('other', [{ name: 'host:h1', limit: 1 }])).toBe(true);
    resume();
    const result = await run;
    expect(f.calls).toEqual([]);
    expect(result).toMatchObject({ outcome: 'refused', host: 'h1' });
    expect(result.reason).toBe(
      'its migration slot lapsed and was taken by another move; this run did not move it',
    );
  });
});
