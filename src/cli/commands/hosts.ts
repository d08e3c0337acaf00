import type { Command } from 'commander';
import { clientFrom, enc, jsonFlag } from '../context.ts';
import { details, emit, table } from '../output.ts';

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
      const { hosts } = await clientFrom(cmd).call<{ hosts: Host[] }>('GET', '/v1/hosts');
      emit({ json: jsonFlag(cmd) }, { hosts }, () =>
        table(
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
        ),
      );
    });
  host
    .command('show <host>')
    .description('one host')
    .action(async (name: string, _o, cmd: Command) => {
      const h = await clientFrom(cmd).call<Host>('GET', `/v1/hosts/${enc(name)}`);
      emit({ json: jsonFlag(cmd) }, h, () => details({ ...h, vms: h.vms.join(', ') }));
    });
}
