import type { ClusterSnapshot, HostSnapshot, VmSnapshot } from '../../../../src/core/model.ts';
import type { PlacementContext } from '../../../../src/core/placement/index.ts';

export const MiB = 1024;

export const host = (
  name: string,
  site: string,
  memMiB: number,
  o: Partial<HostSnapshot> = {},
): HostSnapshot => ({
  name,
  site,
  health: 'up',
  cpus: 4,
  memoryKiB: memMiB * MiB,
  cpuUtilisation: 0.1,
  memoryUsedKiB: null,
  maintenance: false,
  observedAt: 0,
  vms: [],
  ...o,
});

export const vm = (name: string, h: string, memMiB = 100, o: Partial<VmSnapshot> = {}): VmSnapshot => ({
  name,
  uuid: name,
  host: h,
  state: 'running',
  vcpus: 1,
  memoryKiB: memMiB * MiB,
  cpuUsage: null,
  memoryUsedKiB: null,
  ...o,
});

export const snap = (hosts: HostSnapshot[], vms: VmSnapshot[]): ClusterSnapshot => ({
  takenAt: 0,
  sites: [...new Set(hosts.map((h) => h.site))],
  hosts: new Map(hosts.map((h) => [h.name, h])),
  vms: new Map(vms.map((v) => [v.name, v])),
});

export const placement: PlacementContext & { haPriorityOf(vm: string): number } = {
  rulesOf: () => ({ affinityGroup: null, antiAffinityGroup: null }),
  cpuOvercommit: 4,
  memoryFraction: 1,
  haPriorityOf: () => 0,
};

export const who = { id: 'dec-1', at: 5, ref: 'api', requestedBy: { id: 't1', name: 'ops' } };
