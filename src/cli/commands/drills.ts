import { writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { CliError, EXIT } from '../client.ts';
import { clientFrom, enc, jsonFlag } from '../context.ts';
import { emit, table } from '../output.ts';

interface DrillRecord {
  id: string;
  scenario: string;
  vm: string;
  count: number;
  status: string;
  createdAt: number;
  movesDone: number;
  error: string | null;
  summary?: { status: string; reason: string } | null;
  report?: { summary: { overall: { status: string; reason: string } } } | null;
}

const DONE = (s: string) => s !== 'queued' && s !== 'running';

export function drillCommands(program: Command): void {
  const drill = program
    .command('drill')
    .description('BCP drills measured by the probes and judged against tiers');
  drill
    .command('run <scenario>')
    .description(
      'live-migration (back and forth within the site) or site-migration (to another site and back)',
    )
    .requiredOption('--vm <vm>', 'the VM to move')
    .option('--count <n>', 'moves to make (default 10; host-failure: 1)')
    .option('--to <host>', 'the other host (default: the best one)')
    .option('--pause <ms>', 'pause between moves', '1000')
    .option('--wait', 'follow the drill and print its table; exit code 0 only when it passes')
    .action(async (scenario: string, o: Record<string, string | boolean | undefined>, cmd: Command) => {
      const count = o.count === undefined ? undefined : Number(o.count);
      const pauseMs = Number(o.pause);
      if (count !== undefined && (!Number.isInteger(count) || count < 1))
        throw new CliError(`--count "${o.count}": expected a whole number`, EXIT.usage);
      if (!Number.isInteger(pauseMs) || pauseMs < 0)
        throw new CliError(`--pause "${o.pause}": expected milliseconds`, EXIT.usage);
      const api = clientFrom(cmd);
      const rec = await api.call<DrillRecord>('POST', '/v1/drills', {
        scenario,
        vm: o.vm,
        ...(count !== undefined ? { count } : {}),
        pauseMs,
        ...(o.to ? { to: o.to } : {}),
      });
      if (!o.wait)
        return emit(
          { json: jsonFlag(cmd) },
          rec,
          () => `drill ${rec.id} queued: ${scenario} of ${rec.vm}, ${count} moves\n`,
        );
      let d = rec;
      let shown = -1;
      while (!DONE(d.status)) {
        await new Promise((r) => setTimeout(r, 1000));
        d = await api.call<DrillRecord>('GET', `/v1/drills/${enc(rec.id)}`);
        if (!jsonFlag(cmd) && d.movesDone !== shown) {
          process.stderr.write(`drill ${d.id}: ${d.status}, ${d.movesDone}/${d.count} moves\n`);
          shown = d.movesDone;
        }
      }
      if (jsonFlag(cmd)) process.stdout.write(`${JSON.stringify(d, null, 2)}\n`);
      else if (d.report)
        process.stdout.write(await api.call<string>('GET', `/v1/drills/${enc(d.id)}?format=md`));
      else process.stdout.write(`drill ${d.id} ${d.status}: ${d.error}\n`);
      process.exitCode = d.status === 'passed' ? EXIT.ok : EXIT.failed;
    });
  drill.command('list').action(async (_o, cmd: Command) => {
    const { drills } = await clientFrom(cmd).call<{ drills: DrillRecord[] }>('GET', '/v1/drills');
    emit({ json: jsonFlag(cmd) }, { drills }, () =>
      table(
        ['DRILL', 'CREATED', 'SCENARIO', 'VM', 'MOVES', 'STATUS', 'WHY'],
        drills.map((d) => [
          d.id,
          new Date(d.createdAt).toISOString(),
          d.scenario,
          d.vm,
          `${d.movesDone}/${d.count}`,
          d.status,
          d.error ?? d.summary?.reason,
        ]),
      ),
    );
  });
  drill
    .command('show <id>')
    .option('--format <format>', 'md, html or json', 'md')
    .option('--out <file>', 'write the report to this file')
    .action(async (id: string, o: { format: string; out?: string }, cmd: Command) => {
      if (!['md', 'html', 'json'].includes(o.format))
        throw new CliError(`--format "${o.format}": expected md, html or json`, EXIT.usage);
      const body = await clientFrom(cmd).call<unknown>('GET', `/v1/drills/${enc(id)}?format=${o.format}`);
      const text = typeof body === 'string' ? body : `${JSON.stringify(body, null, 2)}\n`;
      if (o.out) {
        writeFileSync(o.out, text);
        process.stderr.write(`wrote ${o.out}\n`);
      } else process.stdout.write(text);
    });
}
