import { DEFAULT_HEALTH_THRESHOLDS, type HealthInput, type HealthThresholds, judgeHealth } from './health.ts';
import type {
  ClusterSnapshot,
  DomainObservation,
  HostConfigView,
  HostObservation,
  HostSnapshot,
  VmConflict,
  VmSnapshot,
} from './model.ts';

export interface SnapshotInput {
  now: number;
  sites: readonly string[];
  hosts: readonly HostConfigView[];
  maintenance: ReadonlySet<string>;
  /** Latest observation per host, and the one before it (for rates). */
  current: ReadonlyMap<string, HostObservation>;
  previous: ReadonlyMap<string, HostObservation>;
  /** Per host, what its health is judged from (with its previous health); see core/health.ts. */
  health?: ReadonlyMap<string, HealthInput>;
  thresholds?: HealthThresholds;
  /** The observations' revision, passed through to the snapshot (cache key). */
  revision?: number;
}

const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

function hostCpuUtilisation(cur: HostObservation, prev: HostObservation | undefined): number | null {
  if (!prev?.cpuTimes || !cur.cpuTimes) return null;
  const busy = (t: Record<string, number>) => (t.user ?? 0) + (t.kernel ?? 0);
  const total = (t: Record<string, number>) => busy(t) + (t.idle ?? 0) + (t.iowait ?? 0);
  const dt = total(cur.cpuTimes) - total(prev.cpuTimes);
  if (dt <= 0) return null;
  return Math.min(1, Math.max(0, (busy(cur.cpuTimes) - busy(prev.cpuTimes)) / dt));
}

function vmCpuUsage(
  cur: DomainObservation,
  prev: DomainObservation | undefined,
  dtMs: number,
): number | null {
  const a = num(prev?.stats['cpu.time']);
  const b = num(cur.stats['cpu.time']);
  if (a === null || b === null || dtMs <= 0 || b < a) return null;
  return (b - a) / 1e6 / dtMs;
}

function vmMemoryUsed(d: DomainObservation): number | null {
  const avail = num(d.stats['balloon.available']);
  const unused = num(d.stats['balloon.unused']);
  if (avail !== null && unused !== null) return avail - unused;
  return null;
}

/** Merge order of a VM's copies on several hosts: running, then paused-like, then the rest. */
export function stateRank(state: string): number {
  if (state === 'running') return 2;
  if (state === 'paused' || state === 'blocked' || state === 'pmsuspended') return 1;
  return 0;
}

/** A QEMU exists for the domain: it may be running guest code, or resume any moment. */
export const isActiveState = (state: string): boolean =>
  state !== 'shutoff' && state !== 'crashed' && state !== 'nostate' && state !== 'unknown';

/** The host's health inputs when the caller gave none: from its observations alone. */
function observedHealth(cur: HostObservation | undefined, prev: HostObservation | undefined): HealthInput {
  if (!cur) return { connected: false, lastSuccessAt: null, lastAttemptAt: null };
  return {
    connected: cur.reachable,
    lastSuccessAt: cur.reachable ? cur.observedAt : prev?.reachable ? prev.observedAt : null,
    lastAttemptAt: cur.observedAt,
  };
}

interface Copy {
  host: string;
  d: DomainObservation;
  cur: HostObservation;
  prev: HostObservation | undefined;
}

/**
 * Builds the snapshot the decision core works on.
 * - Each host's health comes from core/health.ts (`input.health`, or its observations alone).
 * - Only `up` hosts contribute VMs. A host that is not up lists, as `lastKnownVms`, the VMs of
 *   its last successful observation: they may still run there.
 * - A VM seen on several hosts is placed on one copy by state (running, then paused, blocked,
 *   pmsuspended, then the rest), then host name; when two or more copies are active it is also
 *   listed in `conflicts` (split-brain, or a move's switch-over), never merged silently.
 */
export function buildSnapshot(input: SnapshotInput): ClusterSnapshot {
  const hosts = new Map<string, HostSnapshot>();
  const copies = new Map<string, Copy[]>();
  for (const hc of input.hosts) {
    const cur = input.current.get(hc.name);
    const prev = input.previous.get(hc.name);
    const judged = judgeHealth(
      input.health?.get(hc.name) ?? observedHealth(cur, prev),
      input.now,
      input.thresholds ?? DEFAULT_HEALTH_THRESHOLDS,
    );
    const up = judged.health === 'up';
    // The last observation that read the host in full (a stale one stays while calls hang).
    const good = cur?.reachable ? cur : prev?.reachable ? prev : undefined;
    const memTotal = num(good?.memory?.total);
    const memFree = num(good?.memory?.free);
    const host: HostSnapshot = {
      name: hc.name,
      site: hc.site,
      health: judged.health,
      healthSince: judged.since,
      evidence: judged.evidence,
      cpus: hc.capacity?.cpus ?? good?.cpus ?? 0,
      memoryKiB: hc.capacity?.memoryMiB !== undefined ? hc.capacity.memoryMiB * 1024 : (good?.memoryKiB ?? 0),
      cpuUtilisation: up && cur?.reachable ? hostCpuUtilisation(cur, prev) : null,
      memoryUsedKiB:
        up && memTotal !== null && memFree !== null
          ? memTotal - memFree - (good?.memory?.buffers ?? 0) - (good?.memory?.cached ?? 0)
          : null,
      maintenance: input.maintenance.has(hc.name),
      observedAt: good?.observedAt ?? null,
      vms: [],
    };
    hosts.set(hc.name, host);
    if (!up || !cur?.reachable) {
      host.lastKnownVms = (good?.domains ?? []).map((d) => d.name);
      continue;
    }
    for (const d of cur.domains ?? []) {
      const list = copies.get(d.name) ?? [];
      list.push({ host: hc.name, d, cur, prev });
      copies.set(d.name, list);
    }
  }
  const vms = new Map<string, VmSnapshot>();
  const conflicts: VmConflict[] = [];
  for (const [name, list] of copies) {
    const [c] = [...list].sort(
      (a, b) => stateRank(b.d.state) - stateRank(a.d.state) || a.host.localeCompare(b.host),
    ) as [Copy];
    const prevDomain = c.prev?.domains?.find((x) => x.uuid === c.d.uuid);
    vms.set(name, {
      name,
      uuid: c.d.uuid,
      host: c.host,
      state: c.d.state,
      vcpus: num(c.d.stats['vcpu.current']) ?? 1,
      memoryKiB: num(c.d.stats['balloon.maximum']) ?? num(c.d.stats['balloon.current']) ?? 0,
      cpuUsage: vmCpuUsage(c.d, prevDomain, c.prev ? c.cur.observedAt - c.prev.observedAt : 0),
      memoryUsedKiB: vmMemoryUsed(c.d),
      ...(c.d.crashed ? { crashed: true } : {}),
    });
    const active = list.filter((x) => isActiveState(x.d.state));
    if (active.length > 1)
      conflicts.push({
        vm: name,
        copies: active
          .map((x) => ({ host: x.host, state: x.d.state }))
          .sort((a, b) => a.host.localeCompare(b.host)),
        ...(active.some((x) => x.d.migrating) ? { migration: true } : {}),
      });
  }
  // Each host lists the VMs placed on it, in the order it reported them.
  for (const [name, list] of copies)
    for (const x of list) if (vms.get(name)!.host === x.host) hosts.get(x.host)!.vms.push(name);
  for (const h of hosts.values()) {
    const order = new Map((input.current.get(h.name)?.domains ?? []).map((d, i) => [d.name, i]));
    h.vms.sort((a, b) => order.get(a)! - order.get(b)!);
  }
  return {
    takenAt: input.now,
    sites: [...input.sites],
    hosts,
    vms,
    conflicts: conflicts.sort((a, b) => a.vm.localeCompare(b.vm)),
    revision: input.revision ?? 0,
  };
}
