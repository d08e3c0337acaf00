import type { Command } from 'commander';
import { clientFrom, jsonFlag } from '../context.ts';
import { emit, table } from '../output.ts';

interface Compliance {
  vm: string;
  tier: string | null;
  compliant: boolean;
  checks: { mechanism?: string; requirement?: string; ok: boolean; reason: string }[];
}
interface AvailabilityReply {
  month: string;
  vms: { vm: string; tier: string; availability: { percent: number }; outageMs: number; outages: number }[];
  tiers: {
    tier: string;
    targetPercent: number | null;
    vms: number;
    meanPercent: number | null;
    minVm: string | null;
    meetsTarget: boolean | null;
  }[];
}

const pct = (p: number | null) => (p === null ? null : `${p.toFixed(4)} %`);

export function tierCommands(program: Command): void {
  const tier = program.command('tier').description('BCP tiers: compliance and monthly availability (稼働率)');
  tier
    .command('compliance')
    .description('does each VM have every mechanism its tier needs?')
    .action(async (_o, cmd: Command) => {
      const r = await clientFrom(cmd).call<{ vms: Compliance[] }>('GET', '/v1/tiers/compliance');
      emit({ json: jsonFlag(cmd) }, r, () =>
        table(
          ['VM', 'TIER', 'COMPLIANT', 'MISSING'],
          r.vms.map((c) => [
            c.vm,
            c.tier,
            c.compliant ? 'yes' : 'no',
            c.checks
              .filter((x) => !x.ok)
              .map((x) => x.reason)
              .join(' '),
          ]),
        ),
      );
    });
  tier
    .command('availability')
    .description('availability per VM and per tier from the probes, for a month')
    .option('--month <YYYY-MM>', 'default: this month so far')
    .action(async (o: { month?: string }, cmd: Command) => {
      const r = await clientFrom(cmd).call<AvailabilityReply>(
        'GET',
        `/v1/tiers/availability${o.month ? `?month=${o.month}` : ''}`,
      );
      emit(
        { json: jsonFlag(cmd) },
        r,
        () =>
          `${r.month}\n${table(
            ['VM', 'TIER', 'AVAILABILITY', 'OUTAGE ms', 'OUTAGES'],
            r.vms.map((v) => [v.vm, v.tier, pct(v.availability.percent), v.outageMs, v.outages]),
          )}\n${table(
            ['TIER', 'TARGET', 'VMS', 'MEAN', 'LOWEST', 'MEETS'],
            r.tiers.map((t) => [
              t.tier,
              pct(t.targetPercent),
              t.vms,
              pct(t.meanPercent),
              t.minVm,
              t.meetsTarget === null ? null : t.meetsTarget ? 'yes' : 'no',
            ]),
          )}`,
      );
    });
}
