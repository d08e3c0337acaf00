import type { LimitsProfile } from '../config/index.ts';

/**
 * Resource limits as libvirt tuning parameters, and the comparison of what a profile wants with
 * what a host reports. Pure: the limits loop reads, calls these, and applies the result.
 */

/** libvirt's "unlimited" for memory parameters (KiB). */
export const MEMORY_UNLIMITED_KIB = 9007199254740991;
export const DEFAULT_CPU_SHARES = 1024;
export const DEFAULT_PERIOD_US = 100_000;

export interface TuningGroups {
  scheduler: Record<string, number>;
  memory: Record<string, number>;
  blkio: Record<string, number | string>;
  /** Per interface (MAC address): inbound./outbound. average, peak, burst. */
  interfaces: Record<string, Record<string, number>>;
}

export interface VmDevices {
  /** Host block devices backing the VM's disks, for per-device throttles (e.g. /dev/vda). */
  hostBlockDevices: string[];
  interfaceMacs: string[];
}

/** A CPU cap raised by DRS within the profile's burst allowance, until `until` (ms). */
export interface CpuRaise {
  /** The raised cap per vCPU, % of one physical CPU. */
  quotaPercent: number;
  until: number;
}

/** A profile's CPU cap and how far a burst may raise it, per vCPU in % of one physical CPU. */
export interface BurstAllowance {
  capPercent: number;
  burstPercent: number;
  periodUs: number;
  holdMs: number;
}

export const DEFAULT_BURST_HOLD_S = 60;

/** The profile's burst allowance, null when it has no cap or no allowance. */
export function burstAllowance(profile: LimitsProfile | undefined): BurstAllowance | null {
  const cpu = profile?.cpu;
  if (cpu?.burstQuotaPercent === undefined) return null;
  const periodUs = cpu.periodUs ?? DEFAULT_PERIOD_US;
  const capPercent = cpu.quotaPercent ?? (cpu.quotaUs !== undefined ? (100 * cpu.quotaUs) / periodUs : null);
  if (capPercent === null || capPercent >= cpu.burstQuotaPercent) return null;
  return {
    capPercent,
    burstPercent: cpu.burstQuotaPercent,
    periodUs,
    holdMs: (cpu.burstHoldSeconds ?? DEFAULT_BURST_HOLD_S) * 1000,
  };
}

/** A raise that still holds at `now` (null when there is none, or it has lapsed). */
export const raiseHolding = (raise: CpuRaise | null | undefined, now: number): CpuRaise | null =>
  raise && raise.until > now ? raise : null;

/**
 * What a profile asks of libvirt. CPU and memory are always managed (a profile without them
 * means "no cap", so switching profiles removes an old cap); disk and network only when the
 * profile sets them.
 */
export function desiredTuning(
  profile: LimitsProfile,
  devices: VmDevices,
  raise?: CpuRaise | null,
): TuningGroups {
  const period = profile.cpu?.periodUs ?? DEFAULT_PERIOD_US;
  // A raise that holds replaces the profile's cap (it never goes beyond the burst allowance).
  const allowance = burstAllowance(profile);
  const raised = raise && allowance ? Math.min(raise.quotaPercent, allowance.burstPercent) : null;
  const quota =
    raised !== null
      ? Math.round((period * raised) / 100)
      : (profile.cpu?.quotaUs ??
        (profile.cpu?.quotaPercent !== undefined
          ? Math.round((period * profile.cpu.quotaPercent) / 100)
          : -1));
  const scheduler = {
    cpu_shares: profile.cpu?.shares ?? DEFAULT_CPU_SHARES,
    vcpu_period: period,
    vcpu_quota: quota,
  };
  const mib = (v: number | undefined) => (v === undefined ? MEMORY_UNLIMITED_KIB : v * 1024);
  const memory = {
    hard_limit: mib(profile.memory?.hardLimitMiB),
    soft_limit: mib(profile.memory?.softLimitMiB),
  };
  const blkio: Record<string, number | string> = {};
  if (profile.disk?.weight !== undefined) blkio.weight = profile.disk.weight;
  const per = profile.disk?.perDevice;
  const perDev = (v: number | undefined) => devices.hostBlockDevices.map((d) => `${d},${v}`).join(',');
  if (per && devices.hostBlockDevices.length) {
    if (per.readIops !== undefined) blkio.device_read_iops_sec = perDev(per.readIops);
    if (per.writeIops !== undefined) blkio.device_write_iops_sec = perDev(per.writeIops);
    if (per.readBytesSec !== undefined) blkio.device_read_bytes_sec = perDev(per.readBytesSec);
    if (per.writeBytesSec !== undefined) blkio.device_write_bytes_sec = perDev(per.writeBytesSec);
  }
  const interfaces: Record<string, Record<string, number>> = {};
  const net = profile.network;
  if (net?.inbound || net?.outbound) {
    for (const mac of devices.interfaceMacs) {
      const p: Record<string, number> = {};
      for (const [dir, b] of [
        ['inbound', net.inbound],
        ['outbound', net.outbound],
      ] as const) {
        if (!b) continue;
        p[`${dir}.average`] = b.averageKiBs;
        if (b.peakKiBs !== undefined) p[`${dir}.peak`] = b.peakKiBs;
        if (b.burstKiB !== undefined) p[`${dir}.burst`] = b.burstKiB;
      }
      interfaces[mac] = p;
    }
  }
  return { scheduler, memory, blkio, interfaces };
}

export interface Drift {
  group: 'scheduler' | 'memory' | 'blkio' | `interface ${string}`;
  field: string;
  desired: number | string;
  observed: number | string | boolean | undefined;
}

/** Fields whose observed value differs from the desired one (memory compared to the KiB). */
export function tuningDrift(
  desired: TuningGroups,
  observed: {
    scheduler: Record<string, unknown>;
    memory: Record<string, unknown>;
    blkio: Record<string, unknown>;
    interfaces: Record<string, Record<string, unknown>>;
  },
): Drift[] {
  const out: Drift[] = [];
  const cmp = (
    group: Drift['group'],
    want: Record<string, number | string>,
    have: Record<string, unknown>,
  ) => {
    for (const [field, value] of Object.entries(want)) {
      const seen = have[field];
      if (normalise(field, seen) !== normalise(field, value)) {
        out.push({ group, field, desired: value, observed: seen as Drift['observed'] });
      }
    }
  };
  cmp('scheduler', desired.scheduler, observed.scheduler);
  cmp('memory', desired.memory, observed.memory);
  cmp('blkio', desired.blkio, observed.blkio);
  for (const [mac, want] of Object.entries(desired.interfaces))
    cmp(`interface ${mac}`, want, observed.interfaces[mac] ?? {});
  return out;
}

function normalise(field: string, v: unknown): string {
  // Device lists come back in libvirt's order and spelling: compare as sorted pairs.
  if (typeof v === 'string' && field.startsWith('device_')) {
    const parts = v.split(',');
    const pairs: string[] = [];
    for (let i = 0; i + 1 < parts.length; i += 2) pairs.push(`${parts[i]},${parts[i + 1]}`);
    return pairs.sort().join(',');
  }
  // An uncapped vCPU reads back as -1 or as a huge quota depending on the host: both mean none.
  if (field === 'vcpu_quota' && typeof v === 'number' && (v < 0 || v >= 17592186044415)) return '-1';
  return String(v);
}
