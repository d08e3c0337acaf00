import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Job } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MigrationConfig } from '../../../src/config/index.ts';
import type { ClusterSnapshot, HostSnapshot } from '../../../src/core/model.ts';
import type { MigrationPorts, MigrationRequest } from '../../../src/jobs/migrate.ts';
import { runMigrationJob } from '../../../src/jobs/migration-job.ts';
import { Slots } from '../../../src/jobs/slots.ts';
import { VmLocks } from '../../../src/jobs/vm-lock.ts';
import type { LibvirtClient } from '../../../src/libvirt/client.ts';
import { AuditLog } from '../../../src/store/audit.ts';
import { startRedis } from '../../support/redis.ts';

const P = 'kz:mj:';
const host = (name: string): HostSnapshot => ({
  name,
  site: 'dc1',
  health: 'up',
  cpus: 4,
  memoryKiB: 8 << 20,
  cpuUtilisation: 0.1,
  memoryUsedKiB: null,
  maintenance: false,
  observedAt: 0,
  vms: [],
});
const snapshot: ClusterSnapshot = {
  takenAt: 0,
  sites: ['dc1'],
  hosts: new Map([
    ['h1', host('h1')],
    ['h2', host('h2')],
  ]),
  vms: new Map([
    [
      'vm1',
      {
        name: 'vm1',
        uuid: 'u',
        host: 'h1',
        state: 'running',
        vcpus: 1,
        memoryKiB: 1 << 20,
        cpuUsage: null,
        memoryUsedKiB: null,
      },
    ],
  ]),
};

const deferred = () => {
  let release!: () => void;
  const p = new Promise<void>((r) => (release = r));
  return { p, release };
};

/**
 * F15: a worker that stalls is re-run elsewhere under the same job id. The stalled run must
 * not move the VM a second time, and must not release the lock, slots or attempt of the run
 * that took over.
 */
describe('a migration job run superseded by a re-run of the same job', () => {
  let server: Awaited<ReturnType<typeof startRedis>>;
  let redis: Redis;
  let dir: string;

  beforeAll(async () => {
    server = await startRedis();
    redis = new Redis(server.url);
    dir = mkdtempSync(join(tmpdir(), 'kz-mj-'));
  });
  afterAll(async () => {
    redis?.disconnect();
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('moves the VM once, and leaves the winner its lock and attempt', async () => {
    const stalledPreCheck = deferred();
    const winnerMoving = deferred();
    const moves: string[] = [];
    let lookups = 0;
    const client = {
      lookupByName: async (name: string) => {
        // The first run stalls in its pre-checks (as an event-loop stall would).
        if (++lookups === 1) await stalledPreCheck.p;
        return { name, uuid: Buffer.alloc(16), id: 1 };
      },
      getXml: async () => "<domain type='kvm'><name>vm1</name></domain>",
      migrateSetMaxDowntime: async () => undefined,
      migrate: async () => {
        moves.push('migrate');
        await winnerMoving.p;
      },
      jobStats: async () => null,
      on: () => undefined,
      off: () => undefined,
      getState: async () => ({ state: 'shutoff', reason: 0 }),
    } as unknown as LibvirtClient;
    const policy = {
      maxDowntimeMs: 300,
      maxDowntimeSteps: [],
      bandwidthMiBs: 0,
      autoConverge: true,
      postCopyAfterIterations: 0,
      postCopyAfterMs: 0,
      timeoutMs: 60_000,
      perHostConcurrency: 2,
      clusterConcurrency: 4,
      progressIntervalMs: 20,
      compression: [],
      parallelConnections: 0,
      crossSite: [],
      sessionCheckPort: 0,
    } as MigrationConfig;
    const ports: MigrationPorts = {
      snapshot: () => snapshot,
      clientFor: () => client,
      migrationUriOf: (h) => `qemu+tcp://${h}/system`,
      placement: {
        rulesOf: () => ({ affinityGroup: null, antiAffinityGroup: null }),
        cpuOvercommit: 4,
        memoryFraction: 0.9,
      },
      policy,
      addressesOf: () => [],
      probeWindow: async () => [],
      log: { info: () => undefined, warn: () => undefined },
    };
    const locks = new VmLocks(redis, P, `${P}bull`);
    const deps = {
      redis,
      prefix: P,
      ports,
      audit: new AuditLog(redis, P, { dir, retentionDays: 1, streamMaxEntries: 100, timeZone: 'UTC' }),
      locks,
      slots: new Slots(redis, P),
    };
    const id = 'mig-00000000-0000-4000-8000-00000000000f';
    const req: MigrationRequest = {
      vm: 'vm1',
      from: 'h1',
      to: 'h2',
      copyStorage: false,
      requestedBy: { id: 't', name: 't' },
      reason: 'api',
    };
    const job = { id, data: req, updateProgress: async () => undefined } as unknown as Job;
    expect((await locks.take([{ vm: 'vm1', job: id, queue: 'migrate' }])).ok).toBe(true);

    const stalled = runMigrationJob(deps, job);
    await new Promise((r) => setTimeout(r, 100));
    const winner = runMigrationJob(deps, job);
    for (let i = 0; i < 100 && moves.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(moves).toEqual(['migrate']);
    const attempt = await redis.get(`${P}job:${id}:attempt`);
    expect(attempt).not.toBeNull();

    // The stalled run wakes up while the winner moves the VM.
    stalledPreCheck.release();
    const late = await stalled;
    expect(late.outcome).toBe('refused');
    expect(late.reason).toBe('a re-run of this job has taken over the VM; this run did not move it');
    expect(moves).toEqual(['migrate']);
    expect(await redis.hgetall(`${P}vm:vm1:job`)).toMatchObject({ job: id, gen: '2' });
    expect(await redis.get(`${P}job:${id}:attempt`)).toBe(attempt);
    expect(await new Slots(redis, P).holders('cluster')).toEqual([`${id}:2`]);

    winnerMoving.release();
    const won = await winner;
    expect(won.outcome).toBe('succeeded');
    expect(await redis.exists(`${P}vm:vm1:job`, `${P}job:${id}:attempt`)).toBe(0);
    expect(await new Slots(redis, P).holders('cluster')).toEqual([]);
  }, 20_000);
});
