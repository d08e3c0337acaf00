import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createVm, type LabState, readState, virsh } from '../../lab/index.ts';
import { type RunningKeizokud, startKeizokud } from '../support/keizokud.ts';
import { sharedLab } from '../support/lab-fixture.ts';
import { startRedis } from '../support/redis.ts';

/**
 * Operating failover on a real keizokud over the lab and a real Redis: the pause (who may,
 * what is audited, where it shows, the metric), the failover loop's state as the API reads
 * it, and the what-if of losing h1 through the CLI, for an HA VM running there.
 */
describe('failover pause, status and what-if (lab)', () => {
  let lab: LabState;
  let kz: RunningKeizokud;
  let redis: Awaited<ReturnType<typeof startRedis>>;
  let admin: string;
  let operator: string;
  let viewer: string;

  const pausedMetric = async () => {
    const text = await (await fetch(kz.metricsUrl)).text();
    return /^keizoku_ha_paused (\S+)$/m.exec(text)?.[1] ?? null;
  };
  const cli = (token: string, ...args: string[]) => {
    const r = spawnSync('node', ['bin/keizoku.mjs', ...args], {
      encoding: 'utf8',
      env: { ...process.env, KEIZOKU_URL: kz.url, KEIZOKU_TOKEN: token, KEIZOKU_CONFIG: '' },
    });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  };

  beforeAll(async () => {
    redis = await startRedis();
    lab = sharedLab();
    await createVm(lab.id, { name: 'hq1', host: 'h1', disk: 'none' });
    lab = readState(lab.id)!;
    kz = await startKeizokud(lab, redis.url, {}, (config) => {
      (config.loops as Record<string, unknown>).haIntervalMs = 500;
      // hq1's tier has failover; every other VM of the shared lab has no tier.
      config.vms = [{ match: { name: 'hq1' }, tier: 'frontend', haPriority: 7 }];
    });
    [admin, operator, viewer] = await Promise.all([
      kz.token('admin'),
      kz.token('operator'),
      kz.token('viewer'),
    ]);
    await kz.until('hq1 seen running on h1', 30_000, async () => {
      const v = (await kz.request('GET', '/v1/vms/hq1', admin)).body;
      return v.state === 'running' && v.host === 'h1';
    });
  }, 180_000);

  afterAll(async () => {
    if (lab) {
      const h1 = lab.layout.hosts.find((h) => h.name === 'h1')!;
      await virsh(h1, ['destroy', 'hq1']).catch(() => undefined);
      await virsh(h1, ['undefine', 'hq1']).catch(() => undefined);
    }
    await kz?.stop();
    await redis?.stop();
  }, 120_000);

  it("shows every host's phase from the failover loop's state", async () => {
    await kz.until('the failover loop saw every host up', 20_000, async () => {
      const r = await kz.request('GET', '/v1/ha', viewer);
      return (
        r.body.hosts.length === lab.layout.hosts.length &&
        r.body.hosts.every((h: { phase: string }) => h.phase === 'ok')
      );
    });
    const r = await kz.request('GET', '/v1/ha', viewer);
    expect(r.body).toMatchObject({ pause: null, toleratedHostFailures: 0, vmsInError: [] });
    expect(r.body.hosts.map((h: { name: string; health: string }) => [h.name, h.health])).toEqual(
      lab.layout.hosts.map((h) => [h.name, 'up']),
    );
    expect(await pausedMetric()).toBe('0');
  });

  it('an operator pauses (audited); a viewer is refused (403, audited as denied); status, hosts and the metric show it; resume ends it', async () => {
    const p = await kz.request('POST', '/v1/ha/pause', operator, {
      forSeconds: 1800,
      reason: 'switch reboot',
    });
    expect(p.status, JSON.stringify(p.body)).toBe(200);
    expect(p.body).toMatchObject({ by: 'operator', reason: 'switch reboot' });
    expect(p.body.until - p.body.since).toBe(1_800_000);

    const denied = await kz.request('POST', '/v1/ha/pause', viewer, { forSeconds: 60 });
    expect(denied.status).toBe(403);
    expect(denied.body.error.message).toBe('role viewer may not ha.pause');

    expect((await kz.request('GET', '/v1/ha', viewer)).body.pause).toEqual(p.body);
    expect((await kz.request('GET', '/v1/hosts', viewer)).body.haPause).toEqual(p.body);
    const status = cli(viewer, 'ha', 'status');
    expect(status.status, status.stderr).toBe(0);
    expect(status.stdout.split('\n')[0]).toMatch(
      /^failover: PAUSED until \S+ by operator \(switch reboot\)$/,
    );
    await kz.until('keizoku_ha_paused is 1', 10_000, async () => (await pausedMetric()) === '1');

    const audit = await kz.request('GET', '/v1/audit?action=ha.pause', admin);
    const outcomes = audit.body.entries
      .filter((e: { outcome: string }) => e.outcome !== 'received')
      .map((e: { actorName: string; outcome: string; status: number }) => [e.actorName, e.outcome, e.status]);
    expect(outcomes).toEqual([
      ['viewer', 'denied', 403],
      ['operator', 'succeeded', 200],
    ]);

    const resumed = cli(operator, '--json', 'ha', 'resume');
    expect(resumed.status, resumed.stderr).toBe(0);
    expect(JSON.parse(resumed.stdout)).toEqual({ resumed: true, pause: p.body });
    expect((await kz.request('GET', '/v1/ha', viewer)).body.pause).toBeNull();
    await kz.until('keizoku_ha_paused is 0', 10_000, async () => (await pausedMetric()) === '0');
    const resumes = (await kz.request('GET', '/v1/audit?action=ha.resume&outcome=succeeded', admin)).body;
    expect(resumes.entries.map((e: { actorName: string }) => e.actorName)).toEqual(['operator']);
  });

  it('ha whatif --fail h1 restarts hq1 (tier frontend, priority 7) on h2, the other host of its site', () => {
    const json = cli(viewer, '--json', 'ha', 'whatif', '--fail', 'h1');
    expect(json.status, json.stderr).toBe(0);
    const plan = JSON.parse(json.stdout);
    expect(plan.fail).toEqual(['h1']);
    expect(plan.actions).toContainEqual({ vm: 'hq1', from: 'h1', to: 'h2', tier: 'frontend', priority: 7 });
    // Only VMs whose tier has failover are restarted; any others on h1 are named as left down.
    expect(plan.actions.map((a: { vm: string }) => a.vm)).toEqual(['hq1']);
    expect(plan.refused).toEqual([]);
    const table = cli(viewer, 'ha', 'whatif', '--fail', 'h1');
    expect(table.stdout).toMatch(/^#\s+VM\s+FROM\s+TO\s+TIER\s+PRIORITY$/m);
    expect(table.stdout).toMatch(/^1\s+hq1\s+h1\s+h2\s+frontend\s+7$/m);
    // Nothing was done: hq1 still runs on h1.
    expect(cli(viewer, '--json', 'vm', 'show', 'hq1').stdout).toMatch(/"host": "h1"/);
  });
});
