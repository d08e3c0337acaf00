import type { ClusterSnapshot, HostSnapshot, VmSnapshot } from '../../../../src/core/model.ts';
import type { PlacementContext, VmRules } from '../../../../src/core/placement/index.ts';

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
  cpus: 2,
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
  sites: [...new Set(hosts.map((h) => h.site))].sort(),
  hosts: new Map(hosts.map((h) => [h.name, h])),
  vms: new Map(vms.map((v) => [v.name, v])),
});

export const NO_RULES: VmRules = { affinityGroup: null, antiAffinityGroup: null };

/** A placement context from a table of rules (VMs not in it have none). */
export const context = (
  rules: Record<string, Partial<VmRules>> = {},
  o: Partial<PlacementContext> & { haPriority?: Record<string, number> } = {},
): PlacementContext & { haPriorityOf(vm: string): number } => ({
  rulesOf: (n) => ({ ...NO_RULES, ...rules[n] }),
  cpuOvercommit: o.cpuOvercommit ?? 4,
  memoryFraction: o.memoryFraction ?? 1,
  haPriorityOf: (n) => o.haPriority?.[n] ?? 0,
});
