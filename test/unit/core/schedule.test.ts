import { describe, expect, it } from 'vitest';
import type { ClusterSnapshot, VmSnapshot } from '../../../src/core/model.ts';
import { holidayOn, localDate, planScheduledAction } from '../../../src/core/schedule.ts';

const vm = (name: string, state: string, host = 'h1'): VmSnapshot => ({
  name,
  uuid: name,
  host,
  state,
  vcpus: 1,
  memoryKiB: 1024,
  cpuUsage: null,
  memoryUsedKiB: null,
});
const snap = (vms: VmSnapshot[]): ClusterSnapshot => ({
  takenAt: 0,
  sites: ['dc1'],
  hosts: new Map(),
  vms: new Map(vms.map((v) => [v.name, v])),
});
const holidays = [{ date: '2026-11-23', name: '勤労感謝の日' }];
const TZ = 'Asia/Tokyo';

describe('scheduled actions', () => {
  const s = snap([
    vm('batch-1', 'running'),
    vm('batch-2', 'shutoff', 'h2'),
    vm('web1', 'running'),
    vm('batch-3', 'paused'),
  ]);
  const schedule = { vms: ['batch-*'], skipHolidays: true };

  it('stops the matching VMs that run and starts the matching ones that are off', () => {
    const at = new Date('2026-11-24T23:00:00Z'); // 2026-11-25 08:00 in Tokyo, a Wednesday
    expect(planScheduledAction(s, schedule, 'stop', at, TZ, holidays).vms).toEqual([
      { name: 'batch-1', host: 'h1' },
    ]);
    expect(planScheduledAction(s, schedule, 'start', at, TZ, holidays).vms).toEqual([
      { name: 'batch-2', host: 'h2' },
    ]);
  });

  it('skips starts on a holiday of the calendar, in the schedule time zone', () => {
    // 2026-11-22T23:30Z is 2026-11-23 08:30 in Tokyo (勤労感謝の日) but still the 22nd in UTC.
    const at = new Date('2026-11-22T23:30:00Z');
    expect(localDate(at, TZ)).toBe('2026-11-23');
    expect(holidayOn(at, 'UTC', holidays)).toBeNull();
    expect(planScheduledAction(s, schedule, 'start', at, TZ, holidays)).toEqual({
      action: 'start',
      vms: [],
      skipped: '2026-11-23 is a holiday (勤労感謝の日)',
    });
    expect(
      planScheduledAction(s, { ...schedule, skipHolidays: false }, 'start', at, TZ, holidays).vms,
    ).toHaveLength(1);
    expect(planScheduledAction(s, schedule, 'stop', at, TZ, holidays).vms).toHaveLength(1);
  });

  it('never starts a VM that already runs somewhere', () => {
    const dup = snap([vm('batch-1', 'running', 'h1')]);
    const off = { ...dup, vms: new Map([...dup.vms, ['batch-1-copy', vm('batch-1-copy', 'shutoff')]]) };
    expect(
      planScheduledAction(off, { vms: ['batch-1'], skipHolidays: false }, 'start', new Date(), TZ, []).vms,
    ).toEqual([]);
  });
});
