import type { Command } from 'commander';
import { clientFrom, enc, jsonFlag } from '../context.ts';
import { details, emit, table } from '../output.ts';
import { type HaPauseView, pauseLine } from './ha.ts';

interface Host {
  name: string;
  site: string;
  health: string;
  maintenance: boolean;
  cpus: number;
  memoryMiB: number;
  cpuUtilisation: number | null;
  memoryUsedMiB: number | null;
  vms: string[];
}

const pct = (f: number | null) => (f === null ? null : `${(f * 100).toFixed(0)}%`);

export function hostCommands(program: Command): void {
  const host = program.command('host').description('physical hosts');
  host
    .command('list')
    .description('every host with health, maintenance, load and VMs')
    .action(async (_o, cmd: Command) => {
      const { hosts, haPause } = await clientFrom(cmd).call<{ hosts: Host[]; haPause: HaPauseView | null }>(
        'GET',
        '/v1/hosts',
      );
      emit({ json: jsonFlag(cmd) }, { hosts, haPause }, () => {
        // The pause is the one thing here that changes what happens when a host is lost.
        const head = haPause ? `${pauseLine(haPause)}\n` : '';
        return `${head}${table(
          ['HOST', 'SITE', 'HEALTH', 'MAINT', 'CPUS', 'CPU', 'MEM MiB', 'USED MiB', 'VMS'],
          hosts.map((h) => [
            h.name,
            h.site,
            h.health,
            h.maintenance ? 'yes' : 'no',
            h.cpus,
            pct(h.cpuUtilisation),
            h.memoryMiB,
            h.memoryUsedMiB,
            h.vms.length,
          ]),
        )}`;
      });
    });
  host
    .command('show <host>')
    .description('one host')
    .action(async (name: string, _o, cmd: Command) => {
      const h = await clientFrom(cmd).call<Host>('GET', `/v1/hosts/${enc(name)}`);
      emit({ json: jsonFlag(cmd) }, h, () => details({ ...h, vms: h.vms.join(', ') }));
    });
  host
    .command('confirm-off <host>')
    .description(
      'confirm that a lost host is powered off (checked by hand), so that its HA VMs restart elsewhere',
    )
    .option('--evidence <text>', 'how it was checked (kept in the fence record and the audit log)')
    .requiredOption('--yes', 'you checked that the host is off: a running host would then run its VMs twice')
    .action(async (name: string, o: { evidence?: string }, cmd: Command) => {
      const r = await clientFrom(cmd).call<{ host: string; health: string; fencedAt: number }>(
        'POST',
        `/v1/hosts/${enc(name)}/confirm-off`,
        { confirm: true, ...(o.evidence ? { evidence: o.evidence } : {}) },
      );
      emit(
        { json: jsonFlag(cmd) },
        r,
        () => `host ${r.host} recorded as powered off; its HA VMs restart elsewhere`,
      );
    });
}
