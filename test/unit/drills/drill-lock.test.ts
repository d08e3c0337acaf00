import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClusterSnapshot, HostSnapshot } from '../../../src/core/model.ts';
import type { Tiers } from '../../../src/core/tiers.ts';
import { DrillSystem } from '../../../src/drills/runner.ts';
import { bullConnection } from '../../../src/jobs/connection.ts';
import type { JobSystem } from '../../../src/jobs/queue.ts';
import { VmLocks } from '../../../src/jobs/vm-lock.ts';
import type { LibvirtClient } from '../../../src/libvirt/client.ts';
import type { AuditLog } from '../../../src/store/audit.ts';
import type { HaPause } from '../../../src/store/ha.ts';
import { startRedis } from '../../support/redis.ts';
import { tiers } from './fixture.ts';

/** The drill's hold of vm:{vm}:job and one drill at a time, against a real redis-server. */
describe('drills and the VM lock in Redis (F9)', () => {
  let redis: Awaited<ReturnType<typeof startRedis>>;
  let r: Redis;
  beforeAll(async () => {
    redis = await startRedis();
    r = new Redis(redis.url);
  });
  afterAll(async () => {
    r?.disconnect();
    await redis?.stop();
  });

  it('F9a: while a host-failure drill holds vm:{vm}:job, a migration of the VM is refused; once its job has finished, it is not', async () => {
    const prefix = 'f9a:';
    const drills = new Queue('drill', { connection: bullConnection(redis.url), prefix: `${prefix}bull` });
    const locks = new VmLocks(r, prefix, `${prefix}bull`);
    const drill = await drills.add('drill', {}, { jobId: 'drill-1' });
    // The drill's hold, as DrillSystem takes it.
    expect(await locks.take([{ vm: 'vm1', job: 'drill-1', queue: 'drill' }])).toEqual({ ok: true });
    // A migration's take (the executor's submit) is refused, naming the drill.
    expect(await locks.take([{ vm: 'vm1', job: 'mig-1', queue: 'migrate' }])).toEqual({
      ok: false,
      conflicts: [{ vm: 'vm1', job: 'drill-1', queue: 'drill' }],
    });
    // A second drill of the same VM does not get it either.
    expect((await locks.take([{ vm: 'vm1', job: 'drill-2', queue: 'drill' }])).ok).toBe(false);
    // Once the drill's job has finished (or crashed and failed), the VM is free again.
    await r.hset(`${prefix}bull:drill:${drill.id}`, 'finishedOn', Date.now());
    expect(await locks.take([{ vm: 'vm1', job: 'mig-1', queue: 'migrate' }])).toEqual({ ok: true });
    await drills.close();
  });

  it('F9d: two replicas run one drill at a time cluster-wide', async () => {
    const prefix = 'f9d:';
    const host = (name: string): HostSnapshot => ({
      name,
      site: 'dc1',
      health: 'up',
      cpus: 8,
      memoryKiB: 16 * 1024 * 1024,
      cpuUtilisation: 0.1,
      memoryUsedKiB: null,
      maintenance: false,
      observedAt: 0,
      vms: [],
    });
    const vm = (name: string) => ({
      name,
      uuid: name,
      host: 'h1',
      state: 'running' as const,
      vcpus: 1,
      memoryKiB: 1024,
      cpuUsage: null,
      memoryUsedKiB: null,
    });
    const snapshot = {
      takenAt: 0,
      sites: ['dc1'],
      hosts: new Map(['h1', 'h2'].map((h) => [h, host(h)])),
      vms: new Map(['vm1', 'vm2'].map((v) => [v, vm(v)])),
    } as ClusterSnapshot;
    let fencing = 0;
    let most = 0;
    // h1 runs the VM (the re-read before the fence passes); the fence is not confirmed.
    const h1 = {
      lookupByName: async (name: string) => ({ name }),
      getState: async () => ({ state: 'running', reason: 0 }),
      getXml: async () => '<domain/>',
    } as unknown as LibvirtClient;
    const system = (o: { tiers?: Tiers; paused?: HaPause } = {}) =>
      new DrillSystem({
        redisUrlOptions: bullConnection(redis.url),
        redis: r,
        prefix,
        jobs: { locks: new VmLocks(r, prefix, `${prefix}bull`) } as unknown as JobSystem,
        snapshot: () => snapshot,
        placement: {
          rulesOf: () => ({ affinityGroup: null, antiAffinityGroup: null }),
          cpuOvercommit: 4,
          memoryFraction: 0.9,
        },
        tierOf: () => 'core',
        tiers: o.tiers ?? tiers,
        probes: {
          windows: async () => [
            {
              probe: 'p',
              site: 'dc1',
              sent: 6,
              lost: 0,
              lossRate: 0,
              rttMinMs: 1,
              rttMaxMs: 1,
              rttAvgMs: 1,
              outageMs: 0,
            },
          ],
          series: async () => ({ rtt: [], outages: [] }),
        },
        fencer: {
          canCycle: () => null,
          fence: async (host) => {
            fencing++;
            most = Math.max(most, fencing);
            await new Promise((res) => setTimeout(res, 400));
            fencing--;
            const at = Date.now();
            return {
              host,
              method: 'lab',
              ok: false,
              confirmedOff: false,
              startedAt: at,
              endedAt: at,
              error: 'lab 0 fence h1: no such lab',
              evidence: 'nothing was done',
            };
          },
          powerOn: async () => undefined,
        },
        fences: { record: async () => undefined },
        haPaused: async () => o.paused ?? null,
        clientFor: (h) => (h === 'h1' ? h1 : null),
        audit: { record: async () => ({}) } as unknown as AuditLog,
        dir: mkdtempSync(join(tmpdir(), 'kz-drills-')),
        timeZone: 'UTC',
        migrationTimeoutMs: 1_000,
        reconnectWaitMs: 0,
        log: { info: () => undefined, warn: () => undefined },
      });
    const a = system();
    const b = system();
    await a.startWorker();
    await b.startWorker();
    const one = {
      scenario: 'host-failure' as const,
      count: 1,
      pauseMs: 0,
      requestedBy: { id: 't', name: 't' },
    };
    const d1 = await a.enqueue({ ...one, vm: 'vm1' });
    const d2 = await a.enqueue({ ...one, vm: 'vm2' });
    const [r1, r2] = [await a.wait(d1.id, 20_000), await a.wait(d2.id, 20_000)];
    expect([r1?.status, r2?.status]).toEqual(['failed', 'failed']);
    expect(r1?.report?.parameters.stopped).toBe(
      'the fence of h1 was not confirmed (lab 0 fence h1: no such lab): the VM was not restarted',
    );
    expect(most).toBe(1);
    await a.close();
    await b.close();

    // A drill the failover would not complete is refused before it is queued, with the reason.
    const one1 = { ...one, vm: 'vm1' };
    const noFailover = system({
      tiers: {
        ...tiers,
        tiers: tiers.tiers.map((t) =>
          t.id === 'core' ? { ...t, mechanisms: t.mechanisms.filter((m) => m !== 'failover') } : t,
        ),
      },
    });
    await expect(noFailover.enqueue(one1)).rejects.toThrow(
      'tier core of vm1 has no failover mechanism: the failover would not restart it, so a host-failure drill would only take it down',
    );
    const until = Date.UTC(2026, 11, 2, 15, 0);
    const paused = system({ paused: { until, since: 0, by: 'ops', reason: 'switch reboot' } });
    await expect(paused.enqueue(one1)).rejects.toThrow(
      'HA is paused until 2026-12-02T15:00:00.000Z (by ops: switch reboot): the failover would not restart the VM',
    );
    await expect(paused.enqueue({ ...one1, to: 'h2' })).rejects.toThrow(
      'a host-failure drill lets the failover choose where the VM restarts: do not give `to`',
    );
    await Promise.all([noFailover.close(), paused.close()]);
  });
});
