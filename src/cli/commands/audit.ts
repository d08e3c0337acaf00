import type { Command } from 'commander';
import { CliError, EXIT } from '../client.ts';
import { clientFrom, jsonFlag } from '../context.ts';
import { emit, table } from '../output.ts';

interface Entry {
  time: string;
  actor: string;
  actorName: string;
  action: string;
  target: string | null;
  outcome: string;
  status: number | null;
  message: string | null;
}

/** `15m`, `2h`, `7d` ago, or an ISO time, as epoch ms. */
export function parseSince(s: string, now = Date.now()): number {
  const m = /^(\d+)([smhd])$/.exec(s);
  if (m) return now - Number(m[1]) * { s: 1e3, m: 6e4, h: 3.6e6, d: 8.64e7 }[m[2] as 's' | 'm' | 'h' | 'd'];
  const t = Date.parse(s);
  if (Number.isNaN(t)) throw new CliError(`--since "${s}": expected 15m, 2h, 7d or an ISO time`, EXIT.usage);
  return t;
}

export function auditCommands(program: Command): void {
  program
    .command('audit')
    .description('the audit log, newest first (admin)')
    .option('--since <when>', 'entries after: 15m, 2h, 7d or an ISO time')
    .option('--actor <id>', 'token id, anonymous or controller')
    .option('--action <action>', 'e.g. vm.migrate')
    .option('--target <name>', 'VM, host or token the action was on')
    .option('--outcome <outcome>', 'received, succeeded, failed, denied or rejected')
    .option('--limit <n>', 'at most this many', '50')
    .action(async (o: Record<string, string | undefined>, cmd: Command) => {
      const q = new URLSearchParams();
      if (o.since) q.set('since', String(parseSince(o.since)));
      for (const k of ['actor', 'action', 'target', 'outcome', 'limit'] as const) if (o[k]) q.set(k, o[k]!);
      const { entries } = await clientFrom(cmd).call<{ entries: Entry[] }>('GET', `/v1/audit?${q}`);
      emit({ json: jsonFlag(cmd) }, { entries }, () =>
        table(
          ['TIME', 'ACTOR', 'ACTION', 'TARGET', 'OUTCOME', 'STATUS', 'MESSAGE'],
          entries.map((e) => [e.time, e.actorName, e.action, e.target, e.outcome, e.status, e.message]),
        ),
      );
    });
}
