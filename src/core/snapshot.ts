import type {
  ClusterSnapshot,
  DomainObservation,
  HostConfigView,
  HostObservation,
  HostSnapshot,
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

/**
 * Builds the snapshot the decision core works on. A VM seen running on two hosts (the instant
 * of a migration's switch-over) is placed where it runs; one seen nowhere is absent: the
 * store, not the snapshot, remembers VMs whose host is gone.
 */
export function buildSnapshot(input: SnapshotInput): ClusterSnapshot {
  const hosts = new Map<string, HostSnapshot>();
  const vms = new Map<string, VmSnapshot>();
  for (const hc of input.hosts) {
    const cur = input.current.get(hc.name);
    const prev = input.previous.get(hc.name);
    const health = !cur ? 'unknown' : cur.reachable ? 'up' : 'unreachable';
    const memTotal = num(cur?.memory?.total);
    const memFree = num(cur?.memory?.free);
    const host: HostSnapshot = {
      name: hc.name,
      site: hc.site,
      health,
      cpus: hc.capacity?.cpus ?? cur?.cpus ?? 0,
      memoryKiB: hc.capacity?.memoryMiB !== undefined ? hc.capacity.memoryMiB * 1024 : (cur?.memoryKiB ?? 0),
      cpuUtilisation: cur?.reachable ? hostCpuUtilisation(cur, prev) : null,
      memoryUsedKiB:
        memTotal !== null && memFree !== null
          ? memTotal - memFree - (cur?.memory?.buffers ?? 0) - (cur?.memory?.cached ?? 0)
          : null,
      maintenance: input.maintenance.has(hc.name),
      observedAt: cur?.reachable ? cur.observedAt : prev?.reachable ? prev.observedAt : null,
      vms: [],
    };
    hosts.set(hc.name, host);
    if (!cur?.reachable) continue;
    const prevDomains = new Map((prev?.domains ?? []).map((d) => [d.uuid, d]));
    const dtMs = prev ? cur.observedAt - prev.observedAt : 0;
    for (const d of cur.domains ?? []) {
      const existing = vms.get(d.name);
      if (existing && existing.state === 'running' && d.state !== 'running') continue;
      const vm: VmSnapshot = {
        name: d.name,
        uuid: d.uuid,
        host: hc.name,
        state: d.state,
        vcpus: num(d.stats['vcpu.current']) ?? 1,
        memoryKiB: num(d.stats['balloon.maximum']) ?? num(d.stats['balloon.current']) ?? 0,
        cpuUsage: vmCpuUsage(d, prevDomains.get(d.uuid), dtMs),
        memoryUsedKiB: vmMemoryUsed(d),
      };
      if (existing) hosts.get(existing.host)!.vms = hosts.get(existing.host)!.vms.filter((n) => n !== d.name);
      vms.set(d.name, vm);
      host.vms.push(d.name);
    }
  }
  return { takenAt: input.now, sites: [...input.sites], hosts, vms };
}
