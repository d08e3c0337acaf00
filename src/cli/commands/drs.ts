import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import { type Aggressiveness, simulate } from '../../core/drs/index.ts';
import { readTrace, TraceError } from '../../drs/traces.ts';
import { CliError, EXIT } from '../client.ts';
import { jsonFlag } from '../context.ts';
import { emit, table } from '../output.ts';

const positive = (flag: string, v: string | undefined, integer = true): number => {
  const n = Number(v);
  if (v === undefined || !Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n)))
    throw new CliError(
      `${flag} must be a positive ${integer ? 'integer' : 'number'}, not "${v}"`,
      EXIT.usage,
    );
  return n;
};

export function drsCommands(program: Command): void {
  const drs = program.command('drs').description('DRS: load rebalancing (docs/drs.md)');
  drs
    .command('simulate')
    .description('replay a utilisation trace through DRS, a greedy baseline and no DRS (local, no API)')
    .requiredOption(
      '--trace <dir|file>',
      'PlanetLab directory (one file per VM) or CSV (time s, vm, cpu %, memory MiB)',
    )
    .requiredOption('--hosts <n>', 'hosts in the simulated cluster')
    .requiredOption('--host-cpus <n>', 'CPUs per host')
    .requiredOption('--host-memory-mib <n>', 'memory per host, MiB')
    .option('--vm-vcpus <n>', 'vCPUs per VM (trace percentages are of these)', '1')
    .option(
      '--vm-memory-mib <list>',
      'VM sizes when the trace has none, comma separated',
      '512,1024,2048,4096',
    )
    .option('--aggressiveness <1-5>', 'DRS aggressiveness', '3')
    .option('--bandwidth-mibps <n>', 'migration bandwidth, MiB/s', '1024')
    .option('--seed <n>', 'seed of VM sizes and initial placement', '1')
    .action((o: Record<string, string>, cmd: Command) => {
      if (!existsSync(o.trace!))
        throw new CliError(`--trace: no such file or directory: ${o.trace}`, EXIT.usage);
      const aggressiveness = Number(o.aggressiveness);
      if (![1, 2, 3, 4, 5].includes(aggressiveness))
        throw new CliError(`--aggressiveness must be 1-5, not "${o.aggressiveness}"`, EXIT.usage);
      let trace: ReturnType<typeof readTrace>;
      try {
        trace = readTrace(o.trace!);
      } catch (e) {
        if (e instanceof TraceError) throw new CliError(e.message, EXIT.usage);
        throw e;
      }
      const cluster = {
        hosts: positive('--hosts', o.hosts),
        hostCpus: positive('--host-cpus', o.hostCpus),
        hostMemoryMiB: positive('--host-memory-mib', o.hostMemoryMib),
        vmVcpus: positive('--vm-vcpus', o.vmVcpus),
        vmMemoryMiB: (o.vmMemoryMib ?? '').split(',').map((s) => positive('--vm-memory-mib', s.trim())),
        seed: Number(o.seed) || 0,
        aggressiveness: aggressiveness as Aggressiveness,
        bandwidthMiBps: positive('--bandwidth-mibps', o.bandwidthMibps, false),
        dirtyMiBpsPerVcpu: 50,
      };
      const results = (['keizoku', 'greedy', 'none'] as const).map((s) => simulate(trace, cluster, s));
      const summary = Object.fromEntries(results.map(({ moves: _m, ...r }) => [r.strategy, r]));
      emit({ json: jsonFlag(cmd) }, { vms: trace.vms.length, ...summary, moves: results[0]!.moves }, () =>
        [
          table(
            ['MIN', 'VM', 'FROM', 'TO', 'WHY'],
            results[0]!.moves.map((m) => [Math.round(m.at / 60_000), m.vm, m.from, m.to, m.reason]),
          ),
          table(
            [
              'STRATEGY',
              'VM-CONTENTION-MIN',
              'OVERLOAD-FRACTION',
              'MIGRATIONS',
              'MAX/VM',
              'GIB',
              'IMBALANCE',
            ],
            results.map((r) => [
              r.strategy,
              r.vm_contention_minutes,
              r.overload_host_time_fraction,
              r.migrations,
              r.max_moves_per_vm,
              r.gib_moved,
              r.imbalance_mean,
            ]),
          ),
        ].join('\n'),
      );
    });
}
