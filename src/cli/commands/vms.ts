import type { Command } from 'commander';
import { CliError, EXIT } from '../client.ts';
import { clientFrom, enc, jsonFlag } from '../context.ts';
import { details, emit, table } from '../output.ts';
import { whyCommand } from './why.ts';

interface Vm {
  name: string;
  host: string;
  site: string | null;
  state: string;
  vcpus: number;
  memoryMiB: number;
  cpuUsage: number | null;
  addresses: string[];
  policy: { tier: string; limits: string | null; haPriority: number; source: string } | null;
  history?: {
    at: number;
    kind: string;
    from: string | null;
    to: string | null;
    jobId?: string | null;
    decisionId?: string | null;
  }[];
}

function lifecycle(vm: Command, verb: 'start' | 'shutdown' | 'destroy', description: string): void {
  const c = vm.command(`${verb} <vm>`).description(description);
  if (verb === 'destroy') c.option('--yes', 'really power it off at once');
  c.action(async (name: string, o: { yes?: boolean }, cmd: Command) => {
    if (verb === 'destroy' && !o.yes)
      throw new CliError(
        `destroy powers "${name}" off without a clean shutdown: add --yes to confirm`,
        EXIT.usage,
      );
    const r = await clientFrom(cmd).call<{ vm: string; host: string; job?: string; state?: string }>(
      'POST',
      `/v1/vms/${enc(name)}/${verb}`,
      verb === 'destroy' ? { confirm: true } : undefined,
    );
    emit({ json: jsonFlag(cmd) }, r, () =>
      r.state === 'succeeded'
        ? `${verb} of ${r.vm} on ${r.host} done (job ${r.job})\n`
        : `${verb} of ${r.vm} on ${r.host} requested${r.job ? ` (job ${r.job}, ${r.state})` : ''}\n`,
    );
  });
}

export function vmCommands(program: Command): void {
  const vm = program.command('vm').description('virtual machines');
  vm.command('list')
    .description('every VM you may see, with host, state and policy')
    .action(async (_o, cmd: Command) => {
      const { vms } = await clientFrom(cmd).call<{ vms: Vm[] }>('GET', '/v1/vms');
      emit({ json: jsonFlag(cmd) }, { vms }, () =>
        table(
          ['VM', 'HOST', 'SITE', 'STATE', 'VCPUS', 'MEM MiB', 'CPU', 'TIER', 'LIMITS', 'ADDRESSES'],
          vms.map((v) => [
            v.name,
            v.host,
            v.site,
            v.state,
            v.vcpus,
            v.memoryMiB,
            v.cpuUsage,
            v.policy?.tier,
            v.policy?.limits,
            v.addresses.join(','),
          ]),
        ),
      );
    });
  vm.command('show <vm>')
    .description('one VM with its policy and recent moves')
    .action(async (name: string, _o, cmd: Command) => {
      const v = await clientFrom(cmd).call<Vm>('GET', `/v1/vms/${enc(name)}`);
      emit({ json: jsonFlag(cmd) }, v, () => {
        const { history, ...rest } = v;
        const moves = (history ?? []).map((h) => [
          new Date(h.at).toISOString(),
          h.kind,
          h.from,
          h.to,
          h.jobId,
          h.decisionId,
        ]);
        return `${details(rest)}\n${table(['AT', 'EVENT', 'FROM', 'TO', 'JOB', 'DECISION'], moves)}`;
      });
    });
  whyCommand(vm);
  lifecycle(vm, 'start', 'start a VM that is shut off (refused while it runs anywhere)');
  lifecycle(vm, 'shutdown', 'ask the guest to shut down (ACPI)');
  lifecycle(vm, 'destroy', 'power the VM off at once; needs --yes');
  const policy = vm.command('policy').description("override a VM's tier, limits profile or HA priority");
  policy
    .command('set <vm>')
    .option('--tier <tier>', 'BCP tier id')
    .option('--limits <profile>', 'limits profile, or "none"')
    .option('--ha-priority <n>', '0-1000, higher restarts first')
    .action(
      async (name: string, o: { tier?: string; limits?: string; haPriority?: string }, cmd: Command) => {
        const body: Record<string, unknown> = {};
        if (o.tier) body.tier = o.tier;
        if (o.limits) body.limits = o.limits === 'none' ? null : o.limits;
        if (o.haPriority !== undefined) {
          const n = Number(o.haPriority);
          if (!Number.isInteger(n))
            throw new CliError(`--ha-priority "${o.haPriority}": expected an integer`, EXIT.usage);
          body.haPriority = n;
        }
        if (Object.keys(body).length === 0)
          throw new CliError('give --tier, --limits or --ha-priority', EXIT.usage);
        const r = await clientFrom(cmd).call('PUT', `/v1/vms/${enc(name)}/policy`, body);
        emit({ json: jsonFlag(cmd) }, r, () => details(r as Record<string, unknown>));
      },
    );
  policy
    .command('clear <vm>')
    .description('back to what the config says')
    .action(async (name: string, _o, cmd: Command) => {
      const r = await clientFrom(cmd).call('PUT', `/v1/vms/${enc(name)}/policy`, {});
      emit({ json: jsonFlag(cmd) }, r, () => details(r as Record<string, unknown>));
    });
}
