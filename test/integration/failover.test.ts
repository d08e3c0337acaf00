import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createVm, type LabState, ping, readState, virsh, waitForPing } from '../../lab/index.ts';
import { type RunningKeizokud, startKeizokud } from '../support/keizokud.ts';
import { labCli, sharedLab } from '../support/lab-fixture.ts';
import { qemuCopies } from '../support/qemu.ts';
import { startRedis } from '../support/redis.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Restart after a confirmed power off, against the lab: an HA VM on the site's shared storage
 * is lost with its host; keizokud refuses to restart it while the host is only out of sight,
 * and restarts it on another host of the site once an operator confirms the host is off.
 */
describe('failover restart of a fenced host HA VM (lab)', () => {
  let lab: LabState;
  let kz: RunningKeizokud;
  let redis: Awaited<ReturnType<typeof startRedis>>;
  let admin: string;
  let viewer: string;
  let fenced = false;

  const labHost = (name: string) => lab.layout.hosts.find((h) => h.name === name)!;
  const health = async (h: string) =>
    (await kz.request('GET', `/v1/hosts/${h}`, admin)).body.health as string;

  beforeAll(async () => {
    redis = await startRedis();
    lab = sharedLab();
    await createVm(lab.id, { name: 'fo1', host: 'h1', disk: 'shared' });
    lab = readState(lab.id)!;
    kz = await startKeizokud(lab, redis.url, {}, (config) => {
      const lv = config.libvirt as Record<string, unknown>;
      lv.keepaliveIntervalSec = 1;
      lv.keepaliveCount = 2;
      config.vms = [{ match: { name: 'fo1' }, tier: 'frontend' }];
    });
    admin = await kz.token('admin');
    viewer = await kz.token('viewer');
    await kz.until('fo1 seen running on h1', 30_000, async () => {
      const v = (await kz.request('GET', '/v1/vms/fo1', admin)).body;
      return v.state === 'running' && v.host === 'h1';
    });
  }, 180_000);

  afterAll(async () => {
    if (fenced) labCli(['heal', 'h1', '--lab', String(lab.id)]);
    if (lab)
      for (const h of ['h1', 'h2']) {
        await virsh(labHost(h), ['destroy', 'fo1']).catch(() => undefined);
        await virsh(labHost(h), ['undefine', 'fo1']).catch(() => undefined);
      }
    await kz?.stop();
    await redis?.stop();
  }, 120_000);

  it('restarts nothing while h1 is only lost, and restarts fo1 on h2 once h1 is confirmed off', async () => {
    expect(await ping(lab.vms.find((v) => v.name === 'fo1')!.address)).toBe(true);
    // Up hosts cannot be confirmed off.
    const early = await kz.request('POST', '/v1/hosts/h1/confirm-off', admin, { confirm: true });
    expect(early.status).toBe(409);
    expect(early.body.error.message).toMatch(/host h1 is up/);

    fenced = true;
    expect(labCli(['fence', 'h1', '--lab', String(lab.id)]).code).toBe(0);
    await kz.until('h1 seen lost', 60_000, async () => ['unreachable', 'down'].includes(await health('h1')));
    // Lost is not off: nothing restarts on its own evidence alone (no fence confirmed).
    await sleep(3_000);
    expect(qemuCopies('fo1')).toBe(0);
    expect((await kz.request('GET', '/v1/hosts/h1', admin)).body.lastKnownVms).toContain('fo1');

    // A viewer may not confirm; an admin may, and the restart follows.
    expect((await kz.request('POST', '/v1/hosts/h1/confirm-off', viewer, { confirm: true })).status).toBe(
      403,
    );
    const ok = await kz.request('POST', '/v1/hosts/h1/confirm-off', admin, {
      confirm: true,
      evidence: 'lab power switch off',
    });
    expect(ok.status, JSON.stringify(ok.body)).toBe(202);
    expect(await health('h1')).toBe('fenced');
    await waitForPing(lab.vms.find((v) => v.name === 'fo1')!.address, 60_000);
    await kz.until('fo1 seen running on h2', 30_000, async () => {
      const v = (await kz.request('GET', '/v1/vms/fo1', admin)).body;
      return v.state === 'running' && v.host === 'h2';
    });
    expect(qemuCopies('fo1')).toBe(1);

    // The decision says why: planner failover, restart-elsewhere h1 -> h2.
    const why = await kz.request('GET', '/v1/vms/fo1/decisions', admin);
    const d = (
      why.body.decisions as { planner: string; actions: { kind: string; from: string; to: string }[] }[]
    ).find((x) => x.planner === 'failover');
    expect(d?.actions).toEqual([{ kind: 'restart-elsewhere', vm: 'fo1', from: 'h1', to: 'h2' }]);
    // Both requests were audited, the refused ones too.
    const audit = await kz.request('GET', '/v1/audit?action=host.confirm-off', admin);
    expect(audit.body.entries.map((e: { outcome: string }) => e.outcome)).toEqual(
      expect.arrayContaining(['succeeded', 'denied', 'rejected']),
    );
  });
});
