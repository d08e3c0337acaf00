import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import { type Aggressiveness, simulate } from '../../core/drs/index.ts';
import { readTrace, TraceError } from '../../drs/traces.ts';
import { CliError, EXIT } from '../client.ts';
import { clientFrom, enc, jsonFlag } from '../context.ts';
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

interface MoveScore {
  vm: string;
  from: string;
  to: string;
  gainVcpus: number;
  thresholdVcpus: number;
  contentionRemovedVcpus: number;
  imbalanceRemovedVcpus: number;
  costVcpus: number;
  expectedDowntimeMs: number;
  reversal: boolean;
}
interface Recommendations {
  mode: string;
  aggressiveness: number;
  plannedAt: number | null;
  imbalance: number | null;
  contentionVcpus: number | null;
  recommendations: { id: string; vm: string; from: string; to: string; reason: string; score: MoveScore }[];
}
interface Explanation {
  vm: string;
  host: string;
  mode: string;
  explanation: {
    verdict: string;
    reasons: string[];
    contentionVcpus: number;
    demand: { vcpus: number; short: number; long: number; planned: number; burst: boolean };
    best: MoveScore | null;
  } | null;
  hosts: {
    host: string;
    feasible: boolean;
    rejectedBy: { code: string; reason: string }[];
    scores: Record<string, number>;
    score: number;
  }[];
}

const at = (ms: number | null) => (ms === null ? 'never' : new Date(ms).toISOString());

export function formatRecommendations(r: Recommendations): string {
  const head = `mode ${r.mode}, aggressiveness ${r.aggressiveness}; last plan ${at(r.plannedAt)}, imbalance ${r.imbalance ?? '-'}, contention ${r.contentionVcpus ?? '-'} vCPUs\n`;
  if (r.recommendations.length === 0) return `${head}no recommendations\n`;
  return `${head}${table(
    ['ID', 'VM', 'FROM', 'TO', 'GAIN', 'NEEDS', 'WHY'],
    r.recommendations.map((x) => [
      x.id,
      x.vm,
      x.from,
      x.to,
      x.score.gainVcpus.toFixed(2),
      x.score.thresholdVcpus.toFixed(2),
      x.reason,
    ]),
  )}`;
}

export function formatExplanation(e: Explanation): string {
  const out = [`${e.vm} on ${e.host}, DRS mode ${e.mode}`];
  const x = e.explanation;
  if (!x) out.push('  DRS did not look at it: its host is under target');
  else {
    const d = x.demand;
    out.push(
      `  demand: ${d.planned} of ${d.vcpus} vCPUs (short ${d.short}, long ${d.long}${d.burst ? ', bursting' : ''}); contention ${x.contentionVcpus}`,
    );
    out.push(`  verdict: ${x.verdict}`);
    for (const r of x.reasons) out.push(`    ${r}`);
    if (x.best)
      out.push(
        `  best move: -> ${x.best.to}, gain ${x.best.gainVcpus} (contention ${x.best.contentionRemovedVcpus} + imbalance ${x.best.imbalanceRemovedVcpus} - cost ${x.best.costVcpus}), needs ${x.best.thresholdVcpus}${x.best.reversal ? ', reverses a recent move' : ''}`,
      );
  }
  out.push('  other hosts:');
  const rows = e.hosts.map((h) =>
    h.feasible
      ? [
          h.host,
          'feasible',
          h.score.toFixed(2),
          Object.entries(h.scores)
            .map(([k, v]) => `${k} ${v.toFixed(2)}`)
            .join(', '),
        ]
      : [h.host, 'rejected', '-', h.rejectedBy.map((f) => `${f.code}: ${f.reason}`).join('; ')],
  );
  out.push(
    table(['HOST', 'VERDICT', 'SCORE', 'WHY NOT, OR SCORES'], rows)
      .trimEnd()
      .split('\n')
      .map((l) => `    ${l}`)
      .join('\n'),
  );
  return `${out.join('\n')}\n`;
}

export function drsCommands(program: Command): void {
  const drs = program.command('drs').description('DRS: load rebalancing (docs/drs.md)');
  drs
    .command('recommendations')
    .description('the moves DRS recommends for VMs in manual mode')
    .action(async (_o: unknown, cmd: Command) => {
      const r = await clientFrom(cmd).call<Recommendations>('GET', '/v1/drs/recommendations');
      emit({ json: jsonFlag(cmd) }, r, () => formatRecommendations(r));
    });
  drs
    .command('apply <id>')
    .description('run a recommended move now (operator or admin); prints its job')
    .action(async (id: string, _o: unknown, cmd: Command) => {
      const job = await clientFrom(cmd).call<{ id: string; vm: string; from: string; to: string }>(
        'POST',
        `/v1/drs/recommendations/${enc(id)}/apply`,
      );
      emit({ json: jsonFlag(cmd) }, job, () => `job ${job.id}: ${job.vm} ${job.from} -> ${job.to} queued\n`);
    });
  drs
    .command('explain <vm>')
    .description(
      "why DRS moves the VM or leaves it: demand, the best move's score, every other host's verdict",
    )
    .action(async (vm: string, _o: unknown, cmd: Command) => {
      const e = await clientFrom(cmd).call<Explanation>('GET', `/v1/drs/explain/${enc(vm)}`);
      emit({ json: jsonFlag(cmd) }, e, () => formatExplanation(e));
    });
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
      const summary = Object.fromEntries(
        results.map(({ moves: _m, hostContentionMinutes: _h, ...r }) => [r.strategy, r]),
      );
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
