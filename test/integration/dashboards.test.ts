import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createVm, freePort, type LabState, readState } from '../../lab/index.ts';
import { type RunningKeizokud, startKeizokud } from '../support/keizokud.ts';
import { sharedLab } from '../support/lab-fixture.ts';
import { recordChild } from '../support/process.ts';
import { startRedis } from '../support/redis.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const DASHBOARD = resolve('dashboards/keizoku-overview.json');
const RULES = resolve('dashboards/alerts.yml');

interface Panel {
  type: string;
  title: string;
  /** Absent on a row. */
  targets?: { expr: string }[];
}

/** The dashboards and alert rules against a real Prometheus scraping a real keizokud. */
describe('dashboards and alert rules in Prometheus', () => {
  let lab: LabState;
  let kz: RunningKeizokud;
  let redis: Awaited<ReturnType<typeof startRedis>>;
  let prom: ChildProcess;
  let promUrl: string;
  let dir: string;

  const query = async (expr: string) => {
    const r = await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(expr)}`);
    return (await r.json()) as { status: string; error?: string; data?: { result: unknown[] } };
  };

  beforeAll(async () => {
    redis = await startRedis();
    lab = sharedLab();
    await createVm(lab.id, { name: 'db1', host: 'h1' });
    lab = readState(lab.id)!;
    kz = await startKeizokud(lab, redis.url, {
      vms: [{ match: { name: 'db1' }, tier: 'frontend', limits: 'standard' }],
      // DRS plans (and publishes its gauges) but moves nothing without an operator.
      drs: { mode: 'manual', intervalSec: 2 },
    });
    dir = mkdtempSync(join(tmpdir(), 'kz-prom-'));
    const port = await freePort();
    promUrl = `http://127.0.0.1:${port}`;
    writeFileSync(
      join(dir, 'prometheus.yml'),
      `global: { scrape_interval: 1s, evaluation_interval: 1s }
rule_files: ['${RULES}']
scrape_configs:
  - job_name: keizokud
    static_configs: [{ targets: ['${new URL(kz.metricsUrl).host}'] }]
`,
    );
    prom = spawn(
      'prometheus',
      [
        `--config.file=${join(dir, 'prometheus.yml')}`,
        `--storage.tsdb.path=${join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
      ],
      { stdio: 'ignore' },
    );
    recordChild(prom.pid, 'prometheus');
    for (let i = 0; i < 150; i++) {
      if (
        (await fetch(`${promUrl}/-/ready`).then(
          (r) => r.ok,
          () => false,
        )) === true
      )
        break;
      await sleep(200);
    }
    // One migration, so that the migration panels have data.
    const token = await kz.token('admin');
    for (let i = 0; i < 100 && (await kz.request('GET', '/v1/vms/db1', token)).body.state !== 'running'; i++)
      await sleep(200);
    const job = await kz.request('POST', '/v1/vms/db1/migrate', token, { to: 'h2' });
    expect(job.status, JSON.stringify(job.body)).toBe(202);
    for (let i = 0; i < 200; i++) {
      const j = await kz.request('GET', `/v1/jobs/${job.body.id}`, token);
      if (j.body.state !== 'waiting' && j.body.state !== 'active') break;
      await sleep(250);
    }
    // Several scrapes after the move: rate() and increase() need two samples of each series.
    for (let i = 0; i < 120; i++) {
      const r = await query(
        'count_over_time(keizoku_migrations_total[5m]) >= 3 and on() count_over_time(keizoku_leader[5m]) >= 3',
      );
      if ((r.data?.result.length ?? 0) > 0) break;
      await sleep(500);
    }
  }, 180_000);

  afterAll(async () => {
    if (prom && prom.exitCode === null) {
      const exited = new Promise((r) => prom.once('exit', r));
      prom.kill('SIGTERM');
      await exited;
    }
    await kz?.stop();
    await redis?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('has alert rules promtool accepts and Prometheus loads', async () => {
    const check = spawnSync('promtool', ['check', 'rules', RULES], { encoding: 'utf8' });
    expect(check.status, check.stdout + check.stderr).toBe(0);
    const r = (await (await fetch(`${promUrl}/api/v1/rules`)).json()) as {
      data: { groups: { rules: { name: string; health: string; lastError?: string }[] }[] };
    };
    const rules = r.data.groups.flatMap((g) => g.rules);
    // Every rule of alerts.yml is loaded (counted in the file, not here).
    expect(rules.length).toBe((readFileSync(RULES, 'utf8').match(/^\s+- alert: /gm) ?? []).length);
    for (const rule of rules) expect(rule.health, `${rule.name}: ${rule.lastError}`).toBe('ok');
  });

  it('has a valid query behind every panel, and data behind the panels this lab feeds', async () => {
    const dash = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as { panels: Panel[] };
    const empty: string[] = [];
    for (const p of dash.panels)
      for (const t of p.targets ?? []) {
        const r = await query(t.expr);
        expect(r.status, `${p.title}: ${t.expr}: ${r.error}`).toBe('success');
        if ((r.data?.result.length ?? 0) === 0) empty.push(p.title);
      }
    // A healthy lab has no failed limits, no libvirt errors, no fence, no failover and (idle
    // guests, manual mode) no DRS move or cap raise; every other panel shows data. The DRS moves'
    // series are checked where DRS moves (test/integration/drs.test.ts), the raises' where it
    // raises a cap (test/integration/drs-burst.test.ts).
    expect([...new Set(empty)]).toEqual([
      'Resource limits not applied',
      'libvirt errors',
      'Fences by outcome (per hour)',
      'Failover RTO per VM p50 / p95 (failure to first reply)',
      'DRS moves by outcome (per hour)',
      'DRS migrations by outcome (per hour)',
      'DRS CPU cap raises (per hour)',
    ]);
    const hosts = await query('keizoku_host_up');
    expect(hosts.data!.result).toHaveLength(3);
  });

  it("has a DRS row whose gauges are DRS's last plan", async () => {
    const dash = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as {
      panels: (Panel & { gridPos: { y: number } })[];
    };
    const row = dash.panels.find((p) => p.type === 'row' && p.title === 'DRS');
    expect(row).toBeDefined();
    const below = dash.panels.filter((p) => p.gridPos.y > row!.gridPos.y);
    expect(below.length).toBeGreaterThanOrEqual(4);
    for (const p of below)
      for (const t of p.targets ?? []) expect(t.expr, p.title).toMatch(/keizoku_drs_|reason="drs"/);
    // The loop has planned, and Prometheus holds what that plan measured.
    const token = await kz.token('admin');
    let state = await kz.request('GET', '/v1/drs/recommendations', token);
    for (let i = 0; i < 60 && typeof state.body.plannedAt !== 'number'; i++) {
      await sleep(500);
      state = await kz.request('GET', '/v1/drs/recommendations', token);
    }
    expect(state.body.mode).toBe('manual');
    expect(typeof state.body.plannedAt).toBe('number');
    // prom-client shows a gauge never set as 0; a plan of a cluster with a running guest on one
    // of three hosts measures an imbalance above 0.
    const seen = (await query('max_over_time(keizoku_drs_imbalance_ratio[1m])')).data!.result as {
      value: [number, string];
    }[];
    expect(seen).toHaveLength(1);
    expect(Number(seen[0]!.value[1])).toBeGreaterThan(0);
    const waiting = (await query('max(keizoku_drs_recommendations)')).data!.result as {
      value: [number, string];
    }[];
    expect(Number(waiting[0]!.value[1])).toBe(state.body.recommendations.length);
  });
});
