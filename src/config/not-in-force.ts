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
  haIntervalMs: 'there is no HA failover loop yet',
  maintenanceIntervalMs: 'maintenance runs as jobs, not on an interval',
  schedulesIntervalMs: 'schedules fire at their cron times',
};

/** Fence methods in force today; ipmi, redfish and ssh fence (src/fence) but no failover loop calls them yet. */
const BUILT_FENCE_METHODS = new Set(['none', 'lab']);

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
  config.hosts.forEach((h, i) => {
    if (!BUILT_FENCE_METHODS.has(h.fence.method))
      out.push({
        file,
        path: ['hosts', i, 'fence', 'method'],
        message: `accepted but not in force: ${h.fence.method} fencing is built but no failover loop fences host "${h.name}" yet (host-failure drills can use lab, ipmi or redfish)`,
      });
  });
  config.vms.forEach((vm, i) => {
    if (vm.dataClass !== undefined)
      out.push({
        file,
        path: ['vms', i, 'dataClass'],
        message:
          'accepted but not in force: there is no cross-site replication yet, so a data class changes nothing',
      });
  });
  return out;
}
