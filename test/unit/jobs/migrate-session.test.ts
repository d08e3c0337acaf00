import { describe, expect, it } from 'vitest';
import type { MigrationConfig } from '../../../src/config/index.ts';
import { type MigrationPorts, runMigration } from '../../../src/jobs/migrate.ts';
import type { LibvirtClient } from '../../../src/libvirt/client.ts';
import { guest } from '../probe/echo-guest.ts';
import { snapshot } from './fake-move.ts';

/** A libvirt whose migration never ends; the pre-checks pass. */
let abort: (() => void) | null = null;
const client = {
  lookupByName: async (name: string) => ({ name, uuid: Buffer.alloc(16), id: 1 }),
  getXml: async () => "<domain type='kvm'><name>vm1</name></domain>",
  getState: async () => ({ state: 'running', reason: 1 }),
  migrateSetMaxDowntime: async () => undefined,
  migrate: () => new Promise((_, reject) => (abort = () => reject(new Error('migration aborted')))),
  jobStats: async () => null,
  on: () => undefined,
  off: () => undefined,
  abortJob: async () => abort?.(),
} as unknown as LibvirtClient;

function ports(sessionCheckPort: number, timeoutMs = 60_000): MigrationPorts {
  const policy: MigrationConfig = {
    maxDowntimeMs: 300,
    maxDowntimeSteps: [],
    bandwidthMiBs: 0,
    autoConverge: true,
    postCopyAfterIterations: 0,
    postCopyAfterMs: 0,
    timeoutMs,
    perHostConcurrency: 2,
    clusterConcurrency: 4,
    progressIntervalMs: 20,
    compression: [],
    parallelConnections: 0,
    crossSite: [],
    sessionCheckPort,
  };
  return {
    snapshot: () => snapshot,
    clientFor: () => client,
    migrationUriOf: (h) => `qemu+tcp://${h}/system`,
    placement: {
      rulesOf: () => ({ affinityGroup: null, antiAffinityGroup: null }),
      cpuOvercommit: 4,
      memoryFraction: 0.9,
    },
    policy,
    addressesOf: () => ['127.0.0.1'],
    probeWindow: async () => [],
    log: { info: () => undefined, warn: () => undefined },
  };
}

const req = {
  vm: 'vm1',
  from: 'h1',
  to: 'h2',
  copyStorage: false,
  requestedBy: { id: 'x', name: 'x' },
  reason: 'api',
} as const;

const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

describe('the session check in a migration (F8)', () => {
  it('F8: a throwing onStart leaves no timer or socket of the session check', async () => {
    const g = await guest((s) => s.pipe(s));
    try {
      const before = timers();
      const job = {
        id: 'j',
        progress: async () => undefined,
        cancelled: async () => false,
        heartbeat: async () => undefined,
      };
      await expect(
        runMigration(req, job, ports(g.port), async () => {
          throw new Error('audit log not writable');
        }),
      ).rejects.toThrow('audit log not writable');
      expect(await g.connectionsReaching(1)).toBe(1);
      expect(await g.allClosed()).toBe(true);
      expect(timers()).toBe(before);
    } finally {
      await g.close();
    }
  });

  it('F8: a throwing heartbeat mid-move leaves no timer or socket of the session check once the move ends', async () => {
    const g = await guest((s) => s.pipe(s));
    try {
      const before = timers();
      const job = {
        id: 'j',
        progress: async () => undefined,
        cancelled: async () => false,
        heartbeat: async () => {
          throw new Error('redis gone');
        },
      };
      // The heartbeat's failure does not end the watch (F14): the move runs to its timeout.
      const result = await runMigration(req, job, ports(g.port, 300), async () => true);
      expect(result.outcome).toBe('aborted');
      expect(await g.allClosed()).toBe(true);
      expect(timers()).toBeLessThanOrEqual(before);
    } finally {
      await g.close();
    }
  });
});
