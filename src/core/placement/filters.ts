import type { HostSnapshot, VmSnapshot } from '../model.ts';
import type { FilterVerdict } from '../plan.ts';
import { againstHostGroup, hardHostGroupRule, type Pass, rulesIn } from './context.ts';
import type { ProfileName } from './profiles.ts';

// Filter plugins: may this VM go to this host? Each is small and named, answers null (yes) or a
// verdict with a stable code (the API and tests match on it) and a sentence for people. Every
// filter runs on every candidate, so a refusal lists all that is wrong with a host.

export interface FilterPlugin {
  name: string;
  filter(pass: Pass, vm: VmSnapshot, host: HostSnapshot, profile: ProfileName): FilterVerdict | null;
}

export const Code = {
  SameHost: 'SameHost',
  OtherSite: 'OtherSite',
  HostNotUp: 'HostNotUp',
  HostInMaintenance: 'HostInMaintenance',
  InsufficientMemory: 'InsufficientMemory',
  InsufficientCpu: 'InsufficientCpu',
  AntiAffinity: 'AntiAffinity',
  Affinity: 'Affinity',
  HostGroup: 'HostGroup',
} as const;
export type Code = (typeof Code)[keyof typeof Code];

const mib = (kib: number) => `${Math.round(kib / 1024)} MiB`;
const rejects =
  (plugin: string, code: Code) =>
  (reason: string): FilterVerdict => ({ plugin, code, reason });

/** A filter that also says cheaply whether a host is a candidate at all (no verdict built). */
export interface ScopeFilter extends FilterPlugin {
  admits(pass: Pass, vm: VmSnapshot, host: HostSnapshot): boolean;
}

export const SAME_HOST = 'same-host';
const sameHost: ScopeFilter = {
  name: SAME_HOST,
  admits: (_p, vm, host) => host.name !== vm.host,
  filter: (p, vm, host) =>
    sameHost.admits(p, vm, host)
      ? null
      : rejects(SAME_HOST, Code.SameHost)(`${vm.name} already runs on ${host.name}`),
};

export const SITE = 'site';
const site: ScopeFilter = {
  name: SITE,
  admits: (p, _vm, host) => p.sites === undefined || p.sites.includes(host.site),
  filter: (p, vm, host) =>
    site.admits(p, vm, host)
      ? null
      : rejects(
          SITE,
          Code.OtherSite,
        )(`host ${host.name} is in site ${host.site}, not ${p.sites!.join(' or ')}`),
};

export const HOST_HEALTH = 'host-health';
/** Only an `up` host takes a VM: suspect, partitioned, unknown... may not even run what it has. */
const hostHealth: FilterPlugin = {
  name: HOST_HEALTH,
  filter: (_p, _vm, host) =>
    host.health === 'up' ? null : rejects(HOST_HEALTH, Code.HostNotUp)(`host ${host.name} is ${host.health}`),
};

export const MAINTENANCE = 'maintenance';
const maintenance: FilterPlugin = {
  name: MAINTENANCE,
  filter: (_p, _vm, host) =>
    host.maintenance
      ? rejects(MAINTENANCE, Code.HostInMaintenance)(`host ${host.name} is in maintenance`)
      : null,
};

export const CAPACITY_MEMORY = 'capacity-memory';
/** Guest memory is not overcommitted: what is committed stays within memoryFraction of the host. */
const capacityMemory: FilterPlugin = {
  name: CAPACITY_MEMORY,
  filter: (p, vm, host) => {
    const cap = host.memoryKiB * p.ctx.memoryFraction;
    const used = p.c.memoryKiB.get(host.name) ?? 0;
    if (used + vm.memoryKiB <= cap) return null;
    return rejects(
      CAPACITY_MEMORY,
      Code.InsufficientMemory,
    )(
      `host ${host.name} has ${mib(Math.max(0, cap - used))} of guest memory free, ${vm.name} needs ${mib(vm.memoryKiB)}`,
    );
  },
};

export const CAPACITY_CPU = 'capacity-cpu';
const capacityCpu: FilterPlugin = {
  name: CAPACITY_CPU,
  filter: (p, vm, host) => {
    const cap = host.cpus * p.ctx.cpuOvercommit;
    const after = (p.c.vcpus.get(host.name) ?? 0) + vm.vcpus;
    if (after <= cap) return null;
    return rejects(
      CAPACITY_CPU,
      Code.InsufficientCpu,
    )(`host ${host.name} would have ${after} vCPUs committed on ${host.cpus} CPUs (limit ${cap})`);
  },
};

export const ANTI_AFFINITY = 'anti-affinity';
const antiAffinity: FilterPlugin = {
  name: ANTI_AFFINITY,
  filter: (p, vm, host) => {
    const g = p.groups();
    const group = rulesIn(g, vm.name).antiAffinityGroup;
    if (!group) return null;
    const clash = [...(g.antiOnHost.get(host.name)?.get(group) ?? [])].filter((n) => n !== vm.name);
    if (clash.length === 0) return null;
    return rejects(
      ANTI_AFFINITY,
      Code.AntiAffinity,
    )(`anti-affinity group "${group}": ${clash.sort().join(', ')} already on ${host.name}`);
  },
};

export const AFFINITY = 'affinity';
/**
 * Binding only when the group has other active members and none of them is on this host.
 * Members on a host being emptied do not count: they leave too, and follow the first to go.
 */
const affinity: FilterPlugin = {
  name: AFFINITY,
  filter: (p, vm, host) => {
    const g = p.groups();
    const group = rulesIn(g, vm.name).affinityGroup;
    if (!group) return null;
    const where: string[] = [];
    for (const [h, members] of g.affinityHosts.get(group) ?? []) {
      const others = members.size - (members.has(vm.name) ? 1 : 0);
      if (others === 0 || h === p.leaving) continue;
      if (h === host.name) return null;
      where.push(h);
    }
    if (where.length === 0) return null;
    return rejects(AFFINITY, Code.Affinity)(`affinity group "${group}" runs on ${where.sort().join(', ')}`);
  },
};

export const HOST_GROUP = 'host-group';
/**
 * A VM-host rule: `must` keeps the VM on its group's hosts and `must-not` off them, whatever
 * moves it (migrate, evacuate, restart, DRS); `should` keeps DRS from moving it off them and
 * `should-not` from moving it onto them (a rebalance is optional), while an evacuation or a
 * restart may place it against the rule when no other host fits (the ranking puts the hosts the
 * rule prefers first).
 */
const hostGroup: FilterPlugin = {
  name: HOST_GROUP,
  filter: (p, vm, host, profile) => {
    const g = rulesIn(p.groups(), vm.name).hostGroup;
    if (!g || !againstHostGroup(g, host.name) || (!hardHostGroupRule(g) && profile !== 'drs')) return null;
    const rule = g.rule.replace('-', ' ');
    return rejects(
      HOST_GROUP,
      Code.HostGroup,
    )(
      g.rule === 'must' || g.rule === 'should'
        ? `host ${host.name} is not in host group "${g.name}" (${rule} run on ${g.hosts.join(', ')})`
        : `host ${host.name} is in host group "${g.name}" (${rule} run on ${g.hosts.join(', ')})`,
    );
  },
};

/** Which hosts are candidates at all (the rest are not listed unless asked for). */
export const SCOPE_FILTERS: readonly ScopeFilter[] = [sameHost, site];

/** Cheap checks first, the group filters last; the order is the order of the reasons. */
export const FEASIBILITY_FILTERS: readonly FilterPlugin[] = [
  hostHealth,
  maintenance,
  capacityMemory,
  capacityCpu,
  antiAffinity,
  affinity,
  hostGroup,
];

export const FILTERS: Readonly<Record<string, FilterPlugin>> = Object.fromEntries(
  [...SCOPE_FILTERS, ...FEASIBILITY_FILTERS].map((f) => [f.name, f]),
);
