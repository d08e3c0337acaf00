import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Command } from 'commander';
import { formatConfigError } from '../../config/errors.ts';
import { readErrorMessage } from '../../config/yaml-file.ts';
import { compareTimeline, parseScenario, simulate } from '../../core/ha/simulate.ts';
import { CliError, EXIT } from '../client.ts';
import { jsonFlag } from '../context.ts';
import { emit } from '../output.ts';

/** `keizoku ha simulate DIR`: runs a failover scenario in virtual time, locally (no API). */

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
  const ha = program.command('ha').description('automatic failover: scenarios in virtual time');
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
