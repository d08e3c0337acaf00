// The cluster as the decision core sees it: an immutable snapshot built from observations.
// No I/O and no clock here; time comes in as data.

export type HostHealth = 'up' | 'unreachable' | 'unknown';

export interface HostSnapshot {
  name: string;
  site: string;
  health: HostHealth;
  /** Logical CPUs and memory the host offers (config overrides win over libvirt's figures). */
  cpus: number;
  memoryKiB: number;
  /** Fraction 0..1 of all CPUs busy between the last two observations; null until two exist. */
  cpuUtilisation: number | null;
  memoryUsedKiB: number | null;
  maintenance: boolean;
  /** When the host was last observed successfully (ms since the epoch). */
  observedAt: number | null;
  vms: string[];
}

export interface VmSnapshot {
  name: string;
  uuid: string;
  host: string;
  state: string;
  vcpus: number;
  memoryKiB: number;
  /** vCPUs' worth of CPU used between the last two observations (1.0 = one vCPU busy); null until two exist. */
  cpuUsage: number | null;
  /** Guest-visible memory in use (balloon) when the guest reports it. */
  memoryUsedKiB: number | null;
}

export interface ClusterSnapshot {
  takenAt: number;
  sites: string[];
  hosts: ReadonlyMap<string, HostSnapshot>;
  vms: ReadonlyMap<string, VmSnapshot>;
}

/** What one inventory pass read from one host. */
export interface HostObservation {
  host: string;
  observedAt: number;
  reachable: boolean;
  cpus?: number;
  memoryKiB?: number;
  /** Host CPU time counters in ns, summed over CPUs (user, kernel, idle, iowait). */
  cpuTimes?: Record<string, number>;
  /** Host memory in KiB (total, free, buffers, cached). */
  memory?: Record<string, number>;
  domains?: DomainObservation[];
}

export interface DomainObservation {
  name: string;
  uuid: string;
  state: string;
  /** Raw libvirt bulk stats of the domain (cpu.time, vcpu.current, balloon.*). */
  stats: Record<string, number | string | boolean>;
}

export interface HostConfigView {
  name: string;
  site: string;
  capacity?: { cpus?: number; memoryMiB?: number };
}
