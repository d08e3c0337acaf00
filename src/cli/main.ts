import { Command, CommanderError } from 'commander';
import { CliError, EXIT } from './client.ts';
import { auditCommands } from './commands/audit.ts';
import { drillCommands } from './commands/drills.ts';
import { drsCommands } from './commands/drs.ts';
import { haCommands } from './commands/ha.ts';
import { hostCommands } from './commands/hosts.ts';
import { jobCommands } from './commands/jobs.ts';
import { scheduleCommands } from './commands/schedules.ts';
import { tierCommands } from './commands/tiers.ts';
import { vmCommands } from './commands/vms.ts';

/** `keizoku`: the operator CLI. It talks to keizokud's API only. */
export function program(): Command {
  const p = new Command('keizoku')
    .description('Operate a keizoku cluster through keizokud’s API (docs/cli.md).')
    .option('--server <url>', 'keizokud API URL (env KEIZOKU_URL; default http://127.0.0.1:7480)')
    .option('--token <token>', 'API token (env KEIZOKU_TOKEN; prefer --token-file)')
    .option('--token-file <file>', 'file holding the API token')
    .option('--ca <file>', 'CA certificate of the API’s TLS certificate')
    .option('--json', 'JSON output for scripts')
    .showHelpAfterError()
    .exitOverride();
  hostCommands(p);
  vmCommands(p);
  jobCommands(p, p.commands.find((c) => c.name() === 'vm')!, p.commands.find((c) => c.name() === 'host')!);
  scheduleCommands(p);
  drillCommands(p);
  tierCommands(p);
  auditCommands(p);
  drsCommands(p);
  haCommands(p);
  for (const c of p.commands) {
    c.exitOverride();
    for (const sub of c.commands) sub.exitOverride();
  }
  return p;
}

export async function main(argv: string[]): Promise<number> {
  try {
    await program().parseAsync(argv, { from: 'user' });
    // Commands that follow a job set the exit code by its outcome.
    return typeof process.exitCode === 'number' ? process.exitCode : EXIT.ok;
  } catch (e) {
    if (e instanceof CommanderError) {
      // Help and version are successes; everything else commander rejects is usage.
      return e.code === 'commander.helpDisplayed' ||
        e.code === 'commander.help' ||
        e.code === 'commander.version'
        ? EXIT.ok
        : EXIT.usage;
    }
    if (e instanceof CliError) {
      process.stderr.write(`keizoku: ${e.message}\n`);
      return e.exitCode;
    }
    process.stderr.write(`keizoku: unexpected error: ${(e as Error).message}\n`);
    return EXIT.failed;
  }
}
