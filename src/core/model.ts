// The cluster as the decision core sees it: an immutable snapshot built from observations.
// No I/O and no clock here; time comes in as data.

/**
 * A host as the controller judges it (core/health.ts):
 * - `unknown`: not observed yet (the first seconds after keizokud starts);
 * - `up`: libvirt connected and its calls answer fresh;
 * - `suspect`: connected, but calls have not answered for a while (hung storage, overload);
 * - `unreachable`: the controller's libvirt link is down, nothing else known;
 * - `partitioned`: unreachable by the controller, but the host or its VMs answer elsewhere;
 * - `down`: the controller and the witnesses agree it is gone;
 * - `fenced`: powered off by a fence (its VMs cannot be running).
 */
export type HostHealth = 'up' | 'suspect' | 'unreachable' | 'partitioned' | 'down' | 'fenced' | 'unknown';

/** What a host's health was judged from. */
export interface HealthEvidence {
  /** The libvirt connection is open. */
  connected: boolean;
  /** Ms since the last successful libvirt call (null: never). */
  lastCallAgeMs: number | null;
  /** ICMP to the management address: true answered, false lost, null not probed. */
  icmp: boolean | null;
  /** Probe witnesses that see the host's VMs answer / not answer (failover fills these in). */
  witnessesUp?: number;
  witnessesDown?: number;
  fenced?: boolean;
}

export interface HostSnapshot {
  name: string;
  site: string;
  health: HostHealth;
  /** Since when the host has had this health (ms since the epoch; null while unknown). */
  healthSince?: number | null;
  /** What the health was judged from. */
  evidence?: HealthEvidence;
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
  /**
   * For a host that is not `up`: the VMs its last successful observation listed (any state).
   * They may still run there, so nothing may start them elsewhere (never run a VM twice).
   */
  lastKnownVms?: string[];
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
  /** Shut off because its QEMU died or the guest crashed: VM-level HA restarts it (core/ha/machine.ts). */
  crashed?: boolean;
}

/** A VM seen active (running, paused, ...) on more than one host at once. */
export interface VmConflict {
  vm: string;
  /** Each host with the state the VM has there. */
  copies: { host: string; state: string }[];
  /** A copy is paused by a live migration: the switch-over of a move rather than split-brain. */
  migration?: boolean;
}

export interface ClusterSnapshot {
  takenAt: number;
  sites: string[];
  hosts: ReadonlyMap<string, HostSnapshot>;
  vms: ReadonlyMap<string, VmSnapshot>;
  /** VMs active on two hosts: never merged silently (split-brain, or a move's switch-over). */
  conflicts?: readonly VmConflict[];
  /** Increases whenever the observations behind the snapshot change (cache key). */
  revision?: number;
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
  /** Paused by a live migration (the incoming side of a move, or the source at switch-over). */
  migrating?: boolean;
  /** Shut off because its QEMU died or the guest crashed (libvirt's reason `crashed`), not by a shutdown. */
  crashed?: boolean;
  /** Raw libvirt bulk stats of the domain (cpu.time, vcpu.current, balloon.*). */
  stats: Record<string, number | string | boolean>;
}

export interface HostConfigView {
  name: string;
  site: string;
  capacity?: { cpus?: number; memoryMiB?: number };
}
