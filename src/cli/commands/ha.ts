import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Command } from 'commander';
import { formatConfigError } from '../../config/errors.ts';
import { readErrorMessage } from '../../config/yaml-file.ts';
import { compareTimeline, parseScenario, simulate } from '../../core/ha/simulate.ts';
import { CliError, EXIT } from '../client.ts';
import { clientFrom, jsonFlag } from '../context.ts';
import { emit, table } from '../output.ts';
import { failoverCommands } from './failovers.ts';

/**
 * `keizoku ha`: automatic failover's state, the pause for planned network work, what a host
 * failure would restart where (through the API), and `simulate DIR`, a failover scenario in
 * virtual time run locally (no API).
 */

export interface HaPauseView {
  until: number;
  since: number;
  by: string;
  reason: string | null;
}
export interface HaStatus {
  pause: HaPauseView | null;
  toleratedHostFailures: number;
  hosts: {
    name: string;
    health: string;
    phase: string | null;
    since: number | null;
    fenceAttempt: number;
    pending: string[];
    restarting: { vm: string; to: string }[];
  }[];
  vmsInError: { vm: string; host: string; restarts: number; relocated: boolean }[];
}
export interface HaWhatIf {
  fail: string[];
  reason: string;
  ok: boolean;
  order: string[];
  actions: { vm: string; from: string; to: string; tier: string | null; priority: number }[];
  refused: { vm: string; reasons: string[] }[];
  notRestarted: string[];
}

const MAX_PAUSE_S = 86_400;
const UNIT_S: Record<string, number> = { s: 1, m: 60, h: 3600 };

/** `90s`, `30m`, `2h` -> seconds (1 s to 24 h); anything else is a usage error naming --for. */
export function parseDuration(text: string): number {
  const m = /^(\d+)([smh])$/.exec(text.trim());
  if (!m)
    throw new CliError(
      `--for "${text}": expected a whole number with s, m or h, e.g. 90s, 30m, 2h`,
      EXIT.usage,
    );
  const seconds = Number(m[1]) * UNIT_S[m[2]!]!;
  if (seconds < 1 || seconds > MAX_PAUSE_S)
    throw new CliError(`--for "${text}": a pause lasts 1s to 24h`, EXIT.usage);
  return seconds;
}

const iso = (ms: number) => new Date(ms).toISOString();

/** One line on the pause, for every status that shows it. */
export function pauseLine(p: HaPauseView | null): string {
  if (!p) return 'failover: active (not paused)';
  return `failover: PAUSED until ${iso(p.until)} by ${p.by}${p.reason ? ` (${p.reason})` : ''}`;
}

export function formatStatus(s: HaStatus): string {
  const out = [pauseLine(s.pause)];
  out.push(
    `admission: ${s.toleratedHostFailures > 0 ? `${s.toleratedHostFailures} host failure(s) tolerated` : 'off (ha.toleratedHostFailures 0)'}`,
  );
  out.push(
    table(
      ['HOST', 'HEALTH', 'PHASE', 'SINCE', 'FENCES', 'PENDING', 'RESTARTING'],
      s.hosts.map((h) => [
        h.name,
        h.health,
        h.phase ?? 'not seen yet',
        h.since === null ? null : iso(h.since),
        h.fenceAttempt,
        h.pending.join(', '),
        h.restarting.map((r) => `${r.vm} -> ${r.to}`).join(', '),
      ]),
    ).trimEnd(),
  );
  if (s.vmsInError.length === 0) out.push('no VM in error');
  else
    out.push(
      `VMs in error (an operator must clear them):\n${table(
        ['VM', 'HOST', 'RESTARTS/H', 'RELOCATED'],
        s.vmsInError.map((v) => [v.vm, v.host, v.restarts, v.relocated ? 'yes' : 'no']),
      ).trimEnd()}`,
    );
  return `${out.join('\n')}\n`;
}

export function formatWhatIf(w: HaWhatIf): string {
  const out = [
    `${w.reason}: ${w.actions.length} restart(s)${w.refused.length ? `, ${w.refused.length} VM(s) fit nowhere` : ''}`,
  ];
  if (w.actions.length > 0)
    out.push(
      table(
        ['#', 'VM', 'FROM', 'TO', 'TIER', 'PRIORITY'],
        w.actions.map((a, i) => [i + 1, a.vm, a.from, a.to, a.tier, a.priority]),
      ).trimEnd(),
    );
  else out.push('no HA VM to restart');
  if (w.refused.length > 0) {
    out.push('refused (would wait for room, no rule broken):');
    for (const r of w.refused) out.push(`  ${r.vm}: ${r.reasons.join('; ')}`);
  }
  if (w.notRestarted.length > 0)
    out.push(`not restarted (their tier has no failover): ${w.notRestarted.join(', ')}`);
  return `${out.join('\n')}\n`;
}

const collect = (v: string, prev: string[]) => [...prev, v];

export interface ScenarioRun {
  dir: string;
  lines: string[];
  violations: string[];
  /** Diff against expected.log (null: equal, or no expected.log when `missingExpected`). */
  diff: string | null;
  missingExpected: boolean;
}

export async function runScenarioDir(dir: string): Promise<ScenarioRun> {
  const file = join(dir, 'scenario.yaml');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new CliError(`${file}: ${readErrorMessage(e)}`, EXIT.usage);
  }
  let scenario: ReturnType<typeof parseScenario>;
  try {
    scenario = parseScenario(text, file);
  } catch (e) {
    throw new CliError(formatConfigError(e), EXIT.usage);
  }
  const { lines, violations } = simulate(scenario);
  let expected: string | null = null;
  try {
    expected = await readFile(join(dir, 'expected.log'), 'utf8');
  } catch {
    expected = null;
  }
  return {
    dir,
    lines,
    violations,
    diff: expected === null ? null : compareTimeline(lines, expected.split('\n')),
    missingExpected: expected === null,
  };
}

export function haCommands(program: Command): void {
  const ha = program
    .command('ha')
    .description('automatic failover: state, pause, what-if plans, scenarios in virtual time (docs/ha.md)');
  ha.command('status')
    .description("the pause, each host's failover phase, VMs in error")
    .action(async (_o: unknown, cmd: Command) => {
      const s = await clientFrom(cmd).call<HaStatus>('GET', '/v1/ha');
      emit({ json: jsonFlag(cmd) }, s, () => formatStatus(s));
    });
  ha.command('pause')
    .description(
      'pause failover for planned network work: no host is declared down or fenced (operator, admin)',
    )
    .requiredOption('--for <duration>', 'how long: 90s, 30m, 2h (at most 24h); it ends by itself')
    .option('--reason <text>', 'why (kept with the pause and in the audit log)')
    .action(async (o: { for: string; reason?: string }, cmd: Command) => {
      const forSeconds = parseDuration(o.for);
      const p = await clientFrom(cmd).call<HaPauseView>('POST', '/v1/ha/pause', {
        forSeconds,
        ...(o.reason ? { reason: o.reason } : {}),
      });
      emit({ json: jsonFlag(cmd) }, p, () => `${pauseLine(p)}\n`);
    });
  ha.command('resume')
    .description('end the failover pause now (operator, admin)')
    .action(async (_o: unknown, cmd: Command) => {
      const r = await clientFrom(cmd).call<{ resumed: boolean; pause: HaPauseView | null }>(
        'DELETE',
        '/v1/ha/pause',
      );
      emit({ json: jsonFlag(cmd) }, r, () =>
        r.resumed ? `failover resumed (the pause by ${r.pause?.by} ended)\n` : 'failover was not paused\n',
      );
    });
  ha.command('clear')
    .description(
      'clear a VM from failover error: it is restarted where it died, with a fresh limit (operator, admin)',
    )
    .argument('<vm>', 'the VM in error (ha status lists them)')
    .action(async (vm: string, _o: unknown, cmd: Command) => {
      const r = await clientFrom(cmd).call<{ vm: string; host: string; restarts: number }>(
        'POST',
        `/v1/ha/vms/${encodeURIComponent(vm)}/clear`,
      );
      emit({ json: jsonFlag(cmd) }, r, () => `${r.vm} cleared: the leader restarts it on ${r.host}\n`);
    });
  ha.command('whatif')
    .description('the restarts a failure of these hosts would run now, in order, and what fits nowhere')
    .option('--fail <host>', 'a host that fails (repeat for more; at least one)', collect, [])
    .action(async (o: { fail: string[] }, cmd: Command) => {
      if (o.fail.length === 0) throw new CliError('ha whatif: give at least one --fail HOST', EXIT.usage);
      const w = await clientFrom(cmd).call<HaWhatIf>('POST', '/v1/ha/whatif', { fail: o.fail });
      emit({ json: jsonFlag(cmd) }, w, () => formatWhatIf(w));
    });
  failoverCommands(ha);
  ha.command('simulate')
    .description('run DIR/scenario.yaml and compare its timeline with DIR/expected.log (docs/ha.md)')
    .argument('<dir>', 'scenario directory')
    .action(async (dir: string, _o, cmd: Command) => {
      const r = await runScenarioDir(dir);
      const ok = r.violations.length === 0 && r.diff === null && !r.missingExpected;
      emit({ json: jsonFlag(cmd) }, { ok, ...r }, () =>
        [
          ...r.lines,
          r.missingExpected ? `${join(dir, 'expected.log')}: file not found` : '',
          r.diff ? `timeline differs from expected.log (- expected, + actual):\n${r.diff}` : '',
        ]
          .filter((l) => l !== '')
          .join('\n'),
      );
      if (!ok) process.exitCode = EXIT.failed;
    });
}
