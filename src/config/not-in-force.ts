import type { ConfigIssue } from './errors.ts';
import type { KeizokuConfig, LoopsConfig } from './schema.ts';

/**
 * Fields the schema accepts ahead of the code that acts on them. Setting one changes nothing
 * yet, so loading a config that sets one warns, naming the field (`--check-config` prints
 * them). When the code lands, its entry goes (test/unit/config/not-in-force.test.ts checks
 * that each reserved interval is still unread and every other one is read).
 */
export const RESERVED_LOOP_INTERVALS: Readonly<Partial<Record<keyof LoopsConfig, string>>> = {
  drsIntervalMs: 'DRS plans every drs.intervalSec',
  maintenanceIntervalMs: 'maintenance runs as jobs, not on an interval',
  schedulesIntervalMs: 'schedules fire at their cron times',
};

const has = (o: unknown, key: string): boolean =>
  o !== null && typeof o === 'object' && Object.hasOwn(o, key);

/**
 * `raw` is the file as read (defaults are not "set"); `config` the same after validation.
 * Only fields the operator wrote are reported.
 */
export function notInForce(raw: unknown, config: KeizokuConfig, file: string): ConfigIssue[] {
  const out: ConfigIssue[] = [];
  const rawLoops = has(raw, 'loops') ? (raw as { loops: unknown }).loops : undefined;
  for (const [field, why] of Object.entries(RESERVED_LOOP_INTERVALS))
    if (has(rawLoops, field))
      out.push({ file, path: ['loops', field], message: `accepted but not in force: ${why}` });
  config.vms.forEach((vm, i) => {
    if (vm.dataClass !== undefined)
      out.push({
        file,
        path: ['vms', i, 'dataClass'],
        message:
          'accepted but not in force: no loop replicates by data class yet (class ア mirrors run only as submitted actions), so a data class changes nothing',
      });
  });
  return out;
}
