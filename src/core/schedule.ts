import { globToRegExp } from '../config/match.ts';
import type { ClusterSnapshot } from './model.ts';

/** Which VMs a scheduled stop or start applies to, and whether a day is a holiday. Pure. */

/** The calendar date (YYYY-MM-DD) of an instant in a time zone. */
export function localDate(at: Date, timeZone: string): string {
  return new Intl.DateTimeFormat('en-CA', {
    timeZone,
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
  }).format(at);
}

export function holidayOn(
  at: Date,
  timeZone: string,
  holidays: readonly { date: string; name: string }[],
): { date: string; name: string } | null {
  const d = localDate(at, timeZone);
  return holidays.find((h) => h.date === d) ?? null;
}

export interface ScheduledAction {
  action: 'stop' | 'start';
  vms: { name: string; host: string }[];
  /** Set when the whole action is skipped. */
  skipped: string | null;
}

/**
 * stop: the matching VMs that run; start: the matching VMs that are shut off and run nowhere
 * (a VM is never started twice). A start on a holiday is skipped when the schedule says so.
 */
export function planScheduledAction(
  snap: ClusterSnapshot,
  schedule: { vms: readonly string[]; skipHolidays: boolean },
  action: 'stop' | 'start',
  at: Date,
  timeZone: string,
  holidays: readonly { date: string; name: string }[],
): ScheduledAction {
  const patterns = schedule.vms.map(globToRegExp);
  const matching = [...snap.vms.values()].filter((v) => patterns.some((p) => p.test(v.name)));
  if (action === 'start' && schedule.skipHolidays) {
    const h = holidayOn(at, timeZone, holidays);
    if (h) return { action, vms: [], skipped: `${h.date} is a holiday (${h.name})` };
  }
  if (action === 'stop')
    return {
      action,
      vms: matching.filter((v) => v.state === 'running').map((v) => ({ name: v.name, host: v.host })),
      skipped: null,
    };
  const runningNames = new Set(
    [...snap.vms.values()].filter((v) => v.state === 'running' || v.state === 'paused').map((v) => v.name),
  );
  return {
    action,
    vms: matching
      .filter((v) => v.state === 'shutoff' && !runningNames.has(v.name))
      .map((v) => ({ name: v.name, host: v.host })),
    skipped: null,
  };
}
