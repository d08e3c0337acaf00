import { describe, expect, it } from 'vitest';
import type { MigrationConfig } from '../../../src/config/index.ts';
import type { ClusterSnapshot, HostSnapshot } from '../../../src/core/model.ts';
import { domainRequirements } from '../../../src/jobs/domain-requirements.ts';
import { libvirtChecks, type MigrationPorts, runMigration } from '../../../src/jobs/migrate.ts';
import { type DiskLocation, decideDisk, storageCopy } from '../../../src/jobs/storage.ts';
import type { LibvirtClient, MigrationOptions } from '../../../src/libvirt/client.ts';

/** A domain with one disk of each kind libvirt has for a VM's storage. */
const XML = `<domain type='kvm'><name>vm1</name>
  <devices>
    <disk type='file' device='disk'><driver name='qemu' type='qcow2'/>
      <source file='/var/lib/libvirt/images/vm1.qcow2'/><target dev='vda' bus='virtio'/></disk>
    <disk type='block' device='disk'><driver name='qemu' type='raw' cache='none'/>
      <source dev='/dev/vg0/vm1-data'/><target dev='vdb' bus='virtio'/></disk>
    <disk type="volume" device="disk"><source pool="ceph" volume="vm1-logs"/><target dev="vdc"/></disk>
    <disk type='network' device='disk'><source protocol='rbd' name='rbd/vm1-db'/><target dev='vdd'/></disk>
    <disk type='file' device='cdrom'><target dev='sda' bus='sata'/><readonly/></disk>
  </devices></domain>`;

/** Where each path or pool/volume lives on a fake host: a pool type, or absent. */
interface FakeStorage {
  pathPools: Record<string, string>;
  namedPools: Record<string, { type: string; volumes: string[] }>;
  /** Paths the host has a volume at (in some pool). */
  volumes?: string[];
}

function fakeClient(xml: string, s: FakeStorage, migrations: MigrationOptions[] = []): LibvirtClient {
  return {
    lookupByName: async (name: string) => ({ name, uuid: Buffer.alloc(16), id: 1 }),
    getXml: async () => xml,
    storagePoolTypeOf: async (path: string) => s.pathPools[path] ?? null,
    hasVolumePath: async (path: string) => (s.volumes ?? Object.keys(s.pathPools)).includes(path),
    storagePoolTypeByName: async (name: string) => s.namedPools[name]?.type ?? null,
    hasVolume: async (pool: string, vol: string) => s.namedPools[pool]?.volumes.includes(vol) ?? false,
    networkActive: async () => true,
    migrateSetMaxDowntime: async () => undefined,
    migrate: async (_dom: unknown, o: MigrationOptions) => {
      migrations.push(o);
    },
    jobStats: async () => null,
    on: () => undefined,
    off: () => undefined,
    getState: async () => ({ state: 'running' }),
  } as unknown as LibvirtClient;
}

const req = (copyStorage: boolean | 'auto') => ({
  vm: 'vm1',
  from: 'h1',
  to: 'h2',
  copyStorage,
  requestedBy: { id: 't', name: 't' },
  reason: 'api',
});

const LOCAL: FakeStorage = {
  pathPools: { '/var/lib/libvirt/images/vm1.qcow2': 'dir', '/dev/vg0/vm1-data': 'logical' },
  namedPools: { ceph: { type: 'rbd', volumes: ['vm1-logs'] } },
};

describe('storage of a move (F18)', () => {
  it('F18: block and volume disks are read from the XML with their target, source and pool', () => {
    const { disks } = domainRequirements(XML);
    expect(disks).toEqual([
      expect.objectContaining({ type: 'file', target: 'vda', path: '/var/lib/libvirt/images/vm1.qcow2' }),
      expect.objectContaining({ type: 'block', target: 'vdb', path: '/dev/vg0/vm1-data' }),
      expect.objectContaining({
        type: 'volume',
        target: 'vdc',
        pool: 'ceph',
        volume: 'vm1-logs',
        path: null,
      }),
      expect.objectContaining({ type: 'network', target: 'vdd', protocol: 'rbd', path: null }),
      expect.objectContaining({ type: 'file', device: 'cdrom', target: 'sda', path: null, readonly: true }),
    ]);
  });

  it('F18: a host-local block device (an LV in a logical pool) is copied like a local file', async () => {
    const c = fakeClient(XML, LOCAL);
    const checks = await libvirtChecks(req('auto'), c, c, await c.lookupByName('vm1'));
    const lv = checks.find((x) => x.disk === 'vdb')!;
    expect(lv).toMatchObject({ check: 'storage', ok: true, copy: true });
    expect(lv.detail).toContain('/dev/vg0/vm1-data (logical, local to h1)');
  });

  it('F18: with copy off, the move of a VM on a host-local LV is refused with the reason', async () => {
    const c = fakeClient(XML, LOCAL);
    const checks = await libvirtChecks(req(false), c, c, await c.lookupByName('vm1'));
    const lv = checks.find((x) => x.disk === 'vdb')!;
    expect(lv).toMatchObject({ ok: false, copy: false });
    expect(lv.detail).toBe(
      '/dev/vg0/vm1-data (block) is local to h1 (logical pool): it must be copied; request a storage copy',
    );
  });

  it('F18: a volume disk in a shared pool must be in that pool on the destination, and is not copied', async () => {
    const src = fakeClient(XML, LOCAL);
    const missing = fakeClient(XML, { ...LOCAL, namedPools: { ceph: { type: 'rbd', volumes: [] } } });
    const dom = await src.lookupByName('vm1');
    const seen = (await libvirtChecks(req(true), src, src, dom)).find((x) => x.disk === 'vdc')!;
    expect(seen).toMatchObject({ ok: true, copy: false });
    const unseen = (await libvirtChecks(req(true), src, missing, dom)).find((x) => x.disk === 'vdc')!;
    expect(unseen).toMatchObject({ ok: false, copy: false });
    expect(unseen.detail).toBe('ceph/vm1-logs (volume, rbd pool) is shared storage but not seen by h2');
  });

  it('F18: a disk on shared storage is never mirrored onto itself: only the local disks are copied', async () => {
    const xml = `<domain type='kvm'><name>vm1</name><devices>
      <disk type='file' device='disk'><source file='/var/lib/libvirt/images/vm1.qcow2'/><target dev='vda'/></disk>
      <disk type='file' device='disk'><source file='/mnt/nfs/vm1-data.qcow2'/><target dev='vdb'/></disk>
    </devices></domain>`;
    const s: FakeStorage = {
      pathPools: { '/var/lib/libvirt/images/vm1.qcow2': 'dir', '/mnt/nfs/vm1-data.qcow2': 'netfs' },
      namedPools: {},
    };
    const c = fakeClient(xml, s);
    for (const copy of [true, 'auto'] as const) {
      const checks = await libvirtChecks(req(copy), c, c, await c.lookupByName('vm1'));
      expect(storageCopy(req(copy), checks)).toEqual({ copyStorage: 'all', migrateDisks: ['vda'] });
    }
    // Only shared disks: copy asked for, nothing to copy, so no storage copy at all.
    const shared = fakeClient(xml.replace(/<disk[\s\S]*?vda'\/><\/disk>/, ''), s);
    const checks = await libvirtChecks(req(true), shared, shared, await shared.lookupByName('vm1'));
    expect(checks.filter((x) => x.check === 'storage')).toHaveLength(1);
    expect(storageCopy(req(true), checks)).toEqual({});
  });

  it('F18: a file in no libvirt pool is copied only when a copy is asked for; auto refuses it, false trusts it is shared', () => {
    const disk = domainRequirements(
      `<domain><devices><disk type='file' device='disk'><source file='/srv/vm1.img'/><target dev='vda'/></disk></devices></domain>`,
    ).disks[0]!;
    const where: DiskLocation = { kind: 'no-pool' };
    const at = { from: 'h1', to: 'h2', visibleOnDest: false };
    expect(decideDisk(disk, where, 'auto', at)).toEqual({
      check: 'storage',
      disk: 'vda',
      ok: false,
      copy: false,
      detail:
        '/srv/vm1.img (file) is in no libvirt pool on h1: keizoku cannot tell host-local from shared storage; define a pool for it, or ask for a storage copy (copyStorage true) or for none (false)',
    });
    expect(decideDisk(disk, where, true, at)).toMatchObject({ ok: true, copy: true });
    expect(decideDisk(disk, where, false, at)).toMatchObject({ ok: true, copy: false });
  });

  it('F18: the copy decision reads the typed flag of each storage check, not its sentence', () => {
    const checks = [
      { check: 'storage', ok: true, detail: 'copied to h2 (but not really)', disk: 'vda', copy: false },
      { check: 'storage', ok: true, detail: 'anything', disk: 'vdb', copy: true },
    ];
    expect(storageCopy(req('auto'), checks)).toEqual({ copyStorage: 'all', migrateDisks: ['vdb'] });
    expect(storageCopy(req(false), checks)).toEqual({});
  });

  it('F18: the move passes libvirt the local disks to copy (migrate_disks), not every disk', async () => {
    const migrations: MigrationOptions[] = [];
    const c = fakeClient(XML, LOCAL, migrations);
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
    const vm = {
      name: 'vm1',
      uuid: 'vm1',
      host: 'h1',
      state: 'running' as const,
      vcpus: 1,
      memoryKiB: 1024 * 1024,
      cpuUsage: null,
      memoryUsedKiB: null,
    };
    const snapshot = {
      takenAt: 0,
      sites: ['dc1'],
      hosts: new Map([
        ['h1', host('h1')],
        ['h2', host('h2')],
      ]),
      vms: new Map([['vm1', vm]]),
    } as ClusterSnapshot;
    const ports: MigrationPorts = {
      snapshot: () => snapshot,
      clientFor: () => c,
      migrationUriOf: (h) => `qemu+tcp://${h}/system`,
      placement: {
        rulesOf: () => ({ affinityGroup: null, antiAffinityGroup: null }),
        cpuOvercommit: 4,
        memoryFraction: 0.9,
      },
      policy: {
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
      } as MigrationConfig,
      addressesOf: () => [],
      probeWindow: async () => [],
      log: { info: () => undefined, warn: () => undefined },
    };
    const handle = {
      id: 'j',
      progress: async () => undefined,
      cancelled: async () => false,
      heartbeat: async () => undefined,
    };
    const r = await runMigration(req('auto'), handle, ports, async () => true);
    expect(r.outcome, r.reason ?? '').toBe('succeeded');
    expect(migrations).toHaveLength(1);
    expect(migrations[0]).toMatchObject({ copyStorage: 'all', migrateDisks: ['vda', 'vdb'] });
  });
});
