import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

/**
 * The alert rules' unit tests (dashboards/alerts.test.yml) pass under `promtool test rules`,
 * and they cover every rule: each alert is seen firing and seen quiet.
 */
const DASHBOARDS = fileURLToPath(new URL('../../../dashboards/', import.meta.url));
const promtool = ['/usr/bin/promtool', '/usr/local/bin/promtool'].find((p) => existsSync(p));
if (!promtool)
  console.warn('skipping promtool test rules: promtool is missing (scripts/setup.sh installs prometheus)');

interface RuleTest {
  alert_rule_test?: { alertname: string; exp_alerts: unknown[] }[];
}

describe('dashboards/alerts.yml', () => {
  it.skipIf(!promtool)('passes promtool test rules dashboards/alerts.test.yml', () => {
    const r = spawnSync(promtool!, ['test', 'rules', 'alerts.test.yml'], {
      cwd: DASHBOARDS,
      encoding: 'utf8',
    });
    expect(r.stdout + r.stderr).toContain('SUCCESS');
    expect(r.status, r.stdout + r.stderr).toBe(0);
  });

  it('has a test where each alert fires and one where it stays quiet', () => {
    const rules = parse(readFileSync(`${DASHBOARDS}alerts.yml`, 'utf8')) as {
      groups: { rules: { alert?: string }[] }[];
    };
    const alerts = rules.groups.flatMap((g) => g.rules.flatMap((r) => (r.alert ? [r.alert] : [])));
    const tests = parse(readFileSync(`${DASHBOARDS}alerts.test.yml`, 'utf8')) as { tests: RuleTest[] };
    const evals = tests.tests.flatMap((t) => t.alert_rule_test ?? []);
    expect(alerts.length).toBeGreaterThan(0);
    for (const a of alerts) {
      const mine = evals.filter((e) => e.alertname === a);
      expect(
        mine.some((e) => e.exp_alerts.length > 0),
        `${a} is never tested firing`,
      ).toBe(true);
      expect(
        mine.some((e) => e.exp_alerts.length === 0),
        `${a} is never tested quiet`,
      ).toBe(true);
    }
  });
});
