import { EventEmitter } from 'node:events';
import type { MigrationConfig } from '../../../src/config/index.ts';
import type { ClusterSnapshot, HostSnapshot } from '../../../src/core/model.ts';
import type { MigrationPorts } from '../../../src/jobs/migrate.ts';
import type { LibvirtClient, MigrationOptions } from '../../../src/libvirt/client.ts';

/**
 * A two-host cluster (h1, h2) and a fake libvirt that moves vm1 from h1 to h2 under test
 * control: the move runs until `complete()` or until keizokud aborts it, and records every
 * call. Shared by the job tests (supervision, stalled re-runs, reconcile, slots) and the
 * migrate API tests.
 */

/** A dc1 host with 8 CPUs and 16 GiB. */
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

/** Hosts h1 and h2 in dc1, each VM (1 vCPU, 1 GiB) running on the host `vms` names for it. */
export function twoHosts(vms: Record<string, string>): ClusterSnapshot {
  return {
    takenAt: 0,
    sites: ['dc1'],
    hosts: new Map([
      ['h1', host('h1')],
      ['h2', host('h2')],
    ]),
    vms: new Map(
      Object.entries(vms).map(([name, on]) => [
        name,
        {
          name,
          uuid: name,
          host: on,
          state: 'running',
          vcpus: 1,
          memoryKiB: 1024 * 1024,
          cpuUsage: null,
          memoryUsedKiB: null,
        },
      ]),
    ),
  };
}

export const snapshot: ClusterSnapshot = twoHosts({ vm1: 'h1' });

export const moveRequest = {
  vm: 'vm1',
  from: 'h1',
  to: 'h2',
  copyStorage: false,
  requestedBy: { id: 'x', name: 'x' },
  reason: 'api',
} as const;

export interface FakeMove {
  calls: string[];
  /** Where vm1 is, by host: running, paused or shutoff (absent: not defined). */
  state: Map<string, string>;
  /** libvirt's job on the source: 'unbounded' while moving. */
  jobType: string;
  /** Resolves the running migrate call: vm1 now runs on h2. */
  complete(): void;
  /** Pre-checks wait on this before reading the XML (a slow or stalled pre-check). */
  gate: Promise<void> | null;
  clientFor(h: string): LibvirtClient | null;
  /** Hosts keizokud cannot reach. */
  unreachable: Set<string>;
  /** The host of every job-stats read, in order. */
  statsReads: string[];
  /** Each host's libvirt events (`domain-event`), as its client emits them. */
  events: Map<string, EventEmitter>;
  /** What keizokud asked libvirt for: the migrate call's options, the max downtime set. */
  migrateOptions: MigrationOptions | null;
  maxDowntimeMs: number | null;
  /** Every max downtime set, in order. */
  maxDowntimeSets: number[];
  /** The pre-copy iteration the source's job stats report. */
  iteration: number;
}

export function fakeMove(): FakeMove {
  let settle: ((err?: Error) => void) | null = null;
  const f: FakeMove = {
    calls: [],
    state: new Map([['h1', 'running']]),
    jobType: 'none',
    gate: null,
    unreachable: new Set(),
    statsReads: [],
    migrateOptions: null,
    maxDowntimeMs: null,
    maxDowntimeSets: [],
    iteration: 1,
    events: new Map([
      ['h1', new EventEmitter()],
      ['h2', new EventEmitter()],
    ]),
    complete: () => {
      f.state.set('h2', 'running');
      f.state.delete('h1');
      f.jobType = 'completed';
      settle?.();
    },
    clientFor: (h) => (f.unreachable.has(h) ? null : client(h)),
  };
  const client = (h: string) =>
    ({
      lookupByName: async (name: string) => {
        if (!f.state.has(h)) throw new Error(`no domain ${name} on ${h}`);
        return { name, uuid: Buffer.alloc(16), id: 1 };
      },
      getXml: async () => {
        if (f.gate) await f.gate;
        return "<domain type='kvm'><name>vm1</name></domain>";
      },
      getState: async () => ({ state: f.state.get(h) ?? 'shutoff', reason: 0 }),
      migrateSetMaxDowntime: async (_dom: unknown, ms: number) => {
        f.maxDowntimeMs = ms;
        f.maxDowntimeSets.push(ms);
      },
      migrate: (_dom: unknown, o: MigrationOptions) => {
        f.calls.push(`migrate on ${h}`);
        f.migrateOptions = o;
        f.jobType = 'unbounded';
        return new Promise<void>((resolve, reject) => {
          settle = (err) => (err ? reject(err) : resolve());
        });
      },
      on: (name: string, fn: (...a: unknown[]) => void) => f.events.get(h)!.on(name, fn),
      off: (name: string, fn: (...a: unknown[]) => void) => f.events.get(h)!.off(name, fn),
      jobStats: async () => {
        f.statsReads.push(h);
        return h === 'h1'
          ? {
              type: f.jobType,
              stats: {
                data_total: 100,
                data_remaining: 50,
                memory_iteration: f.iteration,
                memory_processed: 10,
              },
            }
          : null;
      },
      abortJob: async () => {
        f.calls.push(`abort on ${h}`);
        f.jobType = 'cancelled';
        settle?.(new Error('operation aborted: migration out job: canceled by client'));
      },
      migrateStartPostCopy: async () => void f.calls.push(`post-copy on ${h}`),
      undefine: async () => {
        f.calls.push(`undefine on ${h}`);
        f.state.delete(h);
      },
    }) as unknown as LibvirtClient;
  return f;
}

export function policy(o: Partial<MigrationConfig> = {}): MigrationConfig {
  return {
    maxDowntimeMs: 300,
    maxDowntimeSteps: [],
    bandwidthMiBs: 0,
    autoConverge: true,
    postCopyAfterIterations: 0,
    postCopyAfterMs: 0,
    timeoutMs: 60_000,
    perHostConcurrency: 1,
    clusterConcurrency: 4,
    progressIntervalMs: 20,
    compression: [],
    parallelConnections: 0,
    crossSite: [],
    ...o,
  };
}

export function movePorts(
  f: FakeMove,
  p: MigrationConfig = policy(),
  snap: ClusterSnapshot = snapshot,
): MigrationPorts {
  return {
    snapshot: () => snap,
    clientFor: (h) => f.clientFor(h),
    migrationUriOf: (h) => `qemu+tcp://${h}/system`,
    placement: {
      rulesOf: () => ({ affinityGroup: null, antiAffinityGroup: null }),
      cpuOvercommit: 4,
      memoryFraction: 0.9,
    },
    policy: p,
    addressesOf: () => [],
    probeWindow: async () => [],
    log: { info: () => undefined, warn: () => undefined },
  };
}

/** A promise that never settles: a Redis call while Redis is paused. */
export const never = <T>() => new Promise<T>(() => undefined);
