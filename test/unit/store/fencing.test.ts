import { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { ClusterSnapshot, VmSnapshot } from '../../../src/core/model.ts';
import type { LibvirtClient } from '../../../src/libvirt/index.ts';
import { LimitsLoop } from '../../../src/loops/limits.ts';
import { SchedulesLoop } from '../../../src/loops/schedules.ts';
import { createMetrics } from '../../../src/metrics/registry.ts';
import type { AuditLog } from '../../../src/store/audit.ts';
import { FencedError, LeaderLease } from '../../../src/store/lease.ts';
import { Store } from '../../../src/store/store.ts';
import { startRedis } from '../../support/redis.ts';

/**
 * F21: leadership ends in the middle of a pass (another replica takes the lease while the old
 * leader is still acting). Every libvirt action and every history append checks the fencing
 * token right before it happens, against a real redis-server.
 */
let server: Awaited<ReturnType<typeof startRedis>>;
let redis: Redis;
let n = 0;
let prefix = '';
let lease: LeaderLease;

beforeAll(async () => {
  server = await startRedis();
  redis = new Redis(server.url);
});
afterAll(async () => {
  redis.disconnect();
  await server.stop();
});
beforeEach(async () => {
  prefix = `kz-f${++n}:`;
  lease = new LeaderLease(redis, { prefix, replicaId: 'old', leaseMs: 10_000, renewMs: 1_000 });
  const elected = new Promise((r) => lease.once('elected', r));
  lease.start();
  await elected;
  await lease.stop(false);
});

/** Another replica becomes leader (the old one's lease lapsed while it was paused): a newer token. */
async function takeOver(): Promise<void> {
  await redis.del(`${prefix}leader`);
  const other = new LeaderLease(redis, { prefix, replicaId: 'new', leaseMs: 10_000, renewMs: 1_000 });
  const elected = new Promise((r) => other.once('elected', r));
  other.start();
  await elected;
  await other.stop(false);
}

const running = (name: string): VmSnapshot =>
  ({ name, host: 'h1', state: 'running', vcpus: 1, memoryKiB: 1 << 20 }) as VmSnapshot;
const snapshot = (...names: string[]): ClusterSnapshot => ({
  takenAt: 0,
  sites: ['dc1'],
  hosts: new Map(),
  vms: new Map(names.map((v) => [v, running(v)])),
});

describe('fencing right before each action (F21)', () => {
  it('F21: a limits pass deposed after its first VM changes no further host', async () => {
    const sets: string[] = [];
    const client = {
      lookupByName: async (name: string) => ({ name }),
      getXml: async () => '<domain><devices></devices></domain>',
      getSchedulerParameters: async () => ({ cpu_shares: 1024, vcpu_period: 100_000, vcpu_quota: -1 }),
      getMemoryParameters: async () => ({}),
      getBlkioParameters: async () => ({}),
      getInterfaceParameters: async () => ({}),
      setSchedulerParameters: async (d: { name: string }) => {
        sets.push(d.name);
        // While vm-a is being changed, another replica takes over.
        await takeOver();
      },
    } as unknown as LibvirtClient;
    const loop = new LimitsLoop({
      snapshot: () => snapshot('vm-a', 'vm-b'),
      clientFor: () => client,
      limitsProfileOf: () => 'capped-50',
      limits: { profiles: { 'capped-50': { cpu: { quotaPercent: 50 } } } } as never,
      intervalMs: 1_000,
      metrics: createMetrics(),
      log: { info() {}, warn() {} },
      fence: () => lease.fence(),
    });
    await expect(loop.pass(1_000)).rejects.toThrow(FencedError);
    expect(sets).toEqual(['vm-a']);
    expect(lease.isLeader).toBe(false);
  });

  it('F21: a schedule run deposed after its first VM starts no further VM', async () => {
    const started: string[] = [];
    const loop = new SchedulesLoop({
      schedules: [],
      windows: [],
      timeZone: 'UTC',
      holidays: [],
      isLeader: () => true,
      fence: () => lease.fence(),
      snapshot: () => ({
        ...snapshot(),
        vms: new Map(['vm-a', 'vm-b'].map((v) => [v, { ...running(v), state: 'shutoff' }])),
      }),
      power: async (_kind, vm) => {
        started.push(vm);
        await takeOver();
        return { ok: false, why: 'refused', reason: 'fake', job: null };
      },
      maintenance: async () => ({ jobs: [] }),
      audit: { record: async () => undefined } as unknown as AuditLog,
      redis,
      prefix,
      log: { info() {}, warn() {} },
    });
    const run = await loop.fire(
      { name: 'office', start: '0 8 * * *', vms: ['vm-a', 'vm-b'] } as never,
      'start',
      new Date('2026-12-02T08:00:00Z'),
    );
    expect(started).toEqual(['vm-a']);
    expect(run?.refused).toContainEqual({ vm: 'vm-b', reason: 'this replica is no longer the leader' });
  });

  it("F21: a deposed leader's history append is refused and not written", async () => {
    const store = new Store(redis, prefix, lease);
    await store.appendHistory('vm-a', { at: 1, kind: 'placed', from: null, to: 'h1', detail: '' });
    expect(await redis.xlen(`${prefix}vm:vm-a:history`)).toBe(1);
    await takeOver();
    await expect(
      store.appendHistory('vm-a', { at: 2, kind: 'moved', from: 'h1', to: 'h2', detail: '' }),
    ).rejects.toThrow(FencedError);
    expect(await redis.xlen(`${prefix}vm:vm-a:history`)).toBe(1);
  });
});
