import { describe, expect, it } from 'vitest';
import {
  burstAllowance,
  DEFAULT_CPU_SHARES,
  desiredTuning,
  MEMORY_UNLIMITED_KIB,
  raiseHolding,
  tuningDrift,
} from '../../../src/core/limits.ts';

const devices = { hostBlockDevices: ['/dev/vda'], interfaceMacs: ['52:54:00:64:01:0a'] };

describe('desiredTuning', () => {
  it('turns a CPU cap in percent into a quota of the period, and leaves memory unlimited', () => {
    const t = desiredTuning({ cpu: { quotaPercent: 50 } }, devices);
    expect(t.scheduler).toEqual({ cpu_shares: DEFAULT_CPU_SHARES, vcpu_period: 100_000, vcpu_quota: 50_000 });
    expect(t.memory).toEqual({ hard_limit: MEMORY_UNLIMITED_KIB, soft_limit: MEMORY_UNLIMITED_KIB });
    expect(t.blkio).toEqual({});
    expect(t.interfaces).toEqual({});
  });

  it('removes a cap when the profile has none (switching profiles undoes the old one)', () => {
    expect(desiredTuning({}, devices).scheduler.vcpu_quota).toBe(-1);
  });

  it('maps memory, disk and network limits to libvirt fields and units', () => {
    const t = desiredTuning(
      {
        memory: { hardLimitMiB: 512, softLimitMiB: 256 },
        disk: { weight: 200, perDevice: { readIops: 2000, writeBytesSec: 1048576 } },
        network: { inbound: { averageKiBs: 1000, peakKiBs: 2000, burstKiB: 64 } },
      },
      devices,
    );
    expect(t.memory).toEqual({ hard_limit: 512 * 1024, soft_limit: 256 * 1024 });
    expect(t.blkio).toEqual({
      weight: 200,
      device_read_iops_sec: '/dev/vda,2000',
      device_write_bytes_sec: '/dev/vda,1048576',
    });
    expect(t.interfaces).toEqual({
      '52:54:00:64:01:0a': { 'inbound.average': 1000, 'inbound.peak': 2000, 'inbound.burst': 64 },
    });
  });
});

describe('tuningDrift', () => {
  const desired = desiredTuning({ cpu: { shares: 512, quotaPercent: 50 }, disk: { weight: 300 } }, devices);
  const inCompliance = {
    scheduler: { cpu_shares: 512, vcpu_period: 100_000, vcpu_quota: 50_000, emulator_period: 100_000 },
    memory: {
      hard_limit: MEMORY_UNLIMITED_KIB,
      soft_limit: MEMORY_UNLIMITED_KIB,
      swap_hard_limit: MEMORY_UNLIMITED_KIB,
    },
    blkio: { weight: 300 },
    interfaces: {},
  };

  it('finds nothing when the host reports what the profile wants', () => {
    expect(tuningDrift(desired, inCompliance)).toEqual([]);
  });

  it('names each drifted field with desired and observed values', () => {
    const drifted = {
      ...inCompliance,
      scheduler: { ...inCompliance.scheduler, vcpu_quota: -1 },
      blkio: { weight: 500 },
    };
    expect(tuningDrift(desired, drifted)).toEqual([
      { group: 'scheduler', field: 'vcpu_quota', desired: 50_000, observed: -1 },
      { group: 'blkio', field: 'weight', desired: 300, observed: 500 },
    ]);
  });

  it('treats the two spellings of "no CPU cap" alike and compares device lists as sets', () => {
    const uncapped = desiredTuning({}, devices);
    expect(
      tuningDrift(uncapped, {
        ...inCompliance,
        scheduler: { cpu_shares: 1024, vcpu_period: 100_000, vcpu_quota: 17592186044415 },
      }),
    ).toEqual([]);
    const two = desiredTuning(
      { disk: { perDevice: { readIops: 10 } } },
      { ...devices, hostBlockDevices: ['/dev/vda', '/dev/vdb'] },
    );
    expect(
      tuningDrift(two, {
        ...inCompliance,
        blkio: { device_read_iops_sec: '/dev/vdb,10,/dev/vda,10' },
      }).filter((d) => d.group === 'blkio'),
    ).toEqual([]);
  });
});

describe('burst allowance', () => {
  it('is the cap and how far a burst may raise it, with the hold (default 60 s)', () => {
    expect(burstAllowance({ cpu: { quotaPercent: 50, burstQuotaPercent: 90 } })).toEqual({
      capPercent: 50,
      burstPercent: 90,
      periodUs: 100_000,
      holdMs: 60_000,
    });
    expect(
      burstAllowance({
        cpu: { quotaUs: 25_000, periodUs: 50_000, burstQuotaPercent: 80, burstHoldSeconds: 30 },
      }),
    ).toEqual({ capPercent: 50, burstPercent: 80, periodUs: 50_000, holdMs: 30_000 });
    expect(burstAllowance({ cpu: { quotaPercent: 50 } })).toBeNull();
    expect(burstAllowance({})).toBeNull();
  });

  it('a raise that holds replaces the cap, within the allowance only', () => {
    const p = { cpu: { quotaPercent: 50, burstQuotaPercent: 90 } };
    expect(desiredTuning(p, devices, { quotaPercent: 70, until: 1 }).scheduler.vcpu_quota).toBe(70_000);
    expect(desiredTuning(p, devices, { quotaPercent: 100, until: 1 }).scheduler.vcpu_quota).toBe(90_000);
    expect(desiredTuning(p, devices, null).scheduler.vcpu_quota).toBe(50_000);
    // A profile without an allowance ignores a raise.
    expect(
      desiredTuning({ cpu: { quotaPercent: 50 } }, devices, { quotaPercent: 70, until: 1 }).scheduler
        .vcpu_quota,
    ).toBe(50_000);
    expect(raiseHolding({ quotaPercent: 70, until: 10 }, 9)).not.toBeNull();
    expect(raiseHolding({ quotaPercent: 70, until: 10 }, 10)).toBeNull();
  });
});
