import type { DataClassId } from '../config/index.ts';
import type { HostHealth } from './model.ts';

/**
 * Replication to the recovery site by data class (RPO). Pure: which disks of which VMs need a
 * mirror and where it goes, and the achieved RPO of each. Class ア (a) is a continuous mirror
 * with synchronous writes into an NBD export on a host of the VM's recovery site; the other
 * classes have no mechanism yet and are reported as such.
 */

/** The replica of one disk on a recovery host, served over NBD while the mirror runs. */
export interface ReplicaTarget {
  vm: string;
  /** The disk's target dev (vda). */
  disk: string;
  /** The recovery host holding the replica. */
  host: string;
  /** Where the VM's host reaches the export and keizokud reaches the recovery host (its management address). */
  address: string;
  port: number;
  /** The NBD export name. */
  name: string;
  /** The replica file on the recovery host. */
  path: string;
  sizeBytes: number;
}

export interface ReplicationVm {
  name: string;
  host: string;
  state: string;
  /** The VM's data class (tier default or vms[].dataClass); null without a tier. */
  dataClass: DataClassId | null;
  recoverySite: string | null;
  /** Disks on the host's own storage (shared-storage disks survive the host, not the site). */
  localDisks: { disk: string; sizeBytes: number }[];
}

export interface ReplicationHost {
  name: string;
  site: string;
  health: HostHealth;
  maintenance: boolean;
  managementAddress: string;
}

/** A mirror as observed on the VM's host (block job of the disk) and as keizoku started it. */
export interface MirrorObservation {
  vm: string;
  disk: string;
  /** The copy job exists and is in its mirroring phase. */
  ready: boolean;
  /** Started by keizoku with synchronous writes. */
  synchronous: boolean;
  /** When the mirror was last seen ready (ms since the epoch), null if never. */
  lastReadyAt: number | null;
}

export interface ReplicationSettings {
  /** First TCP port of the exports on each recovery host. */
  portBase: number;
  portCount: number;
  /** Directory of the replica files on recovery hosts. */
  directory: string;
}

export interface ReplicationInput {
  vms: readonly ReplicationVm[];
  hosts: readonly ReplicationHost[];
  /** Replicas recorded before (kept where they are: their data is there). */
  replicas: readonly ReplicaTarget[];
  mirrors: readonly MirrorObservation[];
  settings: ReplicationSettings;
}

export type MirrorDecision =
  | { vm: string; disk: string; verdict: 'start'; target: ReplicaTarget; reason: string }
  | { vm: string; disk: string; verdict: 'mirroring'; target: ReplicaTarget; reason: string }
  | { vm: string; disk: string | null; verdict: 'cannot'; reason: string };

const key = (vm: string, disk: string) => `${vm}/${disk}`;
const canHold = (h: ReplicationHost) => h.health === 'up' && !h.maintenance;

/** Every class-ア VM's local disks: mirrored already, to start (with where), or why not. */
export function planMirrors(input: ReplicationInput): MirrorDecision[] {
  const out: MirrorDecision[] = [];
  const recorded = new Map(input.replicas.map((r) => [key(r.vm, r.disk), r]));
  const mirrors = new Map(input.mirrors.map((m) => [key(m.vm, m.disk), m]));
  // Ports and load per recovery host, including targets chosen earlier in this plan.
  const used = new Map<string, Set<number>>();
  const note = (t: ReplicaTarget) => used.set(t.host, (used.get(t.host) ?? new Set()).add(t.port));
  for (const r of input.replicas) note(r);
  const hosts = new Map(input.hosts.map((h) => [h.name, h]));
  for (const vm of [...input.vms].sort((a, b) => a.name.localeCompare(b.name))) {
    if (vm.dataClass !== 'a') continue;
    const home = hosts.get(vm.host);
    const cannot = (reason: string, disk: string | null = null) =>
      out.push({ vm: vm.name, disk, verdict: 'cannot', reason });
    if (!vm.recoverySite) {
      cannot(`${vm.name} is class ア but has no recovery site (vms[].recoverySite)`);
      continue;
    }
    if (home?.site === vm.recoverySite) {
      cannot(`${vm.name} runs at its recovery site ${vm.recoverySite}: there is no other site to mirror to`);
      continue;
    }
    if (vm.state !== 'running') {
      cannot(`${vm.name} is ${vm.state}: only a running VM's disk can be mirrored`);
      continue;
    }
    for (const d of vm.localDisks) {
      const m = mirrors.get(key(vm.name, d.disk));
      const prior = recorded.get(key(vm.name, d.disk));
      const priorHost = prior ? hosts.get(prior.host) : undefined;
      if (prior && m?.ready && m.synchronous) {
        out.push({
          ...ids(vm, d),
          verdict: 'mirroring',
          target: prior,
          reason: `mirrors to ${prior.host} with synchronous writes`,
        });
        continue;
      }
      const target =
        prior && priorHost && canHold(priorHost) && priorHost.site === vm.recoverySite
          ? prior
          : chooseTarget(vm, d, input, used);
      if (typeof target === 'string') {
        cannot(target, d.disk);
        continue;
      }
      note(target);
      const why =
        prior === target
          ? `restarts the mirror into its replica on ${target.host}`
          : `starts a mirror into a new replica on ${target.host}`;
      out.push({ ...ids(vm, d), verdict: 'start', target, reason: `${vm.name} is class ア: ${why}` });
    }
  }
  return out;
}

const ids = (vm: ReplicationVm, d: { disk: string }) => ({ vm: vm.name, disk: d.disk });

/** The recovery-site host with the fewest replicas (then by name), and its lowest free port; or why none. */
function chooseTarget(
  vm: ReplicationVm,
  d: { disk: string; sizeBytes: number },
  input: ReplicationInput,
  used: Map<string, Set<number>>,
): ReplicaTarget | string {
  const s = input.settings;
  const candidates = input.hosts
    .filter((h) => h.site === vm.recoverySite && canHold(h))
    .sort(
      (a, b) => (used.get(a.name)?.size ?? 0) - (used.get(b.name)?.size ?? 0) || a.name.localeCompare(b.name),
    );
  if (candidates.length === 0)
    return `no host of ${vm.recoverySite} is up and out of maintenance to hold ${vm.name}'s replica`;
  for (const h of candidates) {
    const taken = used.get(h.name) ?? new Set<number>();
    for (let port = s.portBase; port < s.portBase + s.portCount; port++) {
      if (taken.has(port)) continue;
      const name = `${vm.name}-${d.disk}`;
      return {
        vm: vm.name,
        disk: d.disk,
        host: h.name,
        address: h.managementAddress,
        port,
        name,
        path: `${s.directory}/${name}.replica.qcow2`,
        sizeBytes: d.sizeBytes,
      };
    }
  }
  return `every NBD port ${s.portBase}-${s.portBase + s.portCount - 1} of ${vm.recoverySite}'s hosts is taken`;
}

/**
 * The achieved RPO of a class-ア disk: 0 while its mirror is ready and synchronous (every
 * acknowledged write is at the recovery site), else the time since it was last so (the
 * replica holds the disk as of then); null when it never was (no consistent replica).
 */
export function achievedRpoMs(m: MirrorObservation | undefined, now: number): number | null {
  if (m?.ready && m.synchronous) return 0;
  if (!m || m.lastReadyAt === null) return null;
  return Math.max(0, now - m.lastReadyAt);
}

/** Whether an achieved RPO meets the class's (rpoHours of the data class); no replica never does. */
export function withinRpo(rpoMs: number | null, rpoHours: number): boolean {
  return rpoMs !== null && rpoMs <= rpoHours * 3_600_000;
}
