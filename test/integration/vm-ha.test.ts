import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createVm, type LabState, readState, virsh, waitFor, waitForPing } from '../../lab/index.ts';
import { type RunningKeizokud, startKeizokud } from '../support/keizokud.ts';
import { sharedLab } from '../support/lab-fixture.ts';
import { qemuCopies, qemuPids } from '../support/qemu.ts';
import { startRedis } from '../support/redis.ts';

const VM = 'vh1';

/**
 * VM-level HA against the lab: the QEMU of an HA VM killed (-9) while its host stays up is
 * restarted in place by keizokud, up to ha.restartsPerHour (1 here), then relocated to the
 * site's other host, then held in error until an operator clears it. A VM an operator
 * destroyed is not a death. One QEMU process of the VM at every step, counted from outside.
 */
describe('VM-level HA (lab)', () => {
  let lab: LabState;
  let kz: RunningKeizokud;
  let redis: Awaited<ReturnType<typeof startRedis>>;
  let admin: string;

  const labHost = (name: string) => lab.layout.hosts.find((h) => h.name === name)!;
  const where = async () => {
    const v = (await kz.request('GET', `/v1/vms/${VM}`, admin)).body;
    return { host: v.host as string, state: v.state as string };
  };
  const runningOn = (h: string) => async () => {
    const w = await where();
    return w.state === 'running' && w.host === h;
  };
  const address = () => lab.vms.find((v) => v.name === VM)!.address;
  const killQemu = () => {
    const pids = qemuPids(VM);
    expect(pids).toHaveLength(1);
    process.kill(pids[0]!, 'SIGKILL');
    return pids[0]!;
  };
  const vmEvents = async () =>
    (
      (await kz.request('GET', '/v1/audit?action=ha.vm&limit=100', admin)).body.entries as {
        message: string;
      }[]
    )
      .map((e) => e.message)
      .reverse();
  const inError = async () =>
    ((await kz.request('GET', '/v1/ha', admin)).body.vmsInError as { vm: string }[]).map((v) => v.vm);
  /** Several ha and inventory passes: what keizokud does about a state, it has done by then. */
  const passes = () => new Promise((r) => setTimeout(r, 4_000));

  beforeAll(async () => {
    redis = await startRedis();
    lab = sharedLab();
    await createVm(lab.id, { name: VM, host: 'h1', disk: 'shared' });
    lab = readState(lab.id)!;
    kz = await startKeizokud(lab, redis.url, {}, (config) => {
      config.loops = { ...(config.loops as object), inventoryIntervalMs: 1_000, haIntervalMs: 500 };
      config.ha = { restartsPerHour: 1 };
      config.vms = [{ match: { name: VM }, tier: 'frontend', haPriority: 10 }];
    });
    admin = await kz.token('admin');
    await waitFor(`${VM} seen running on h1`, runningOn('h1'), 30_000, 250);
    await waitForPing(address(), 60_000);
  }, 240_000);

  afterAll(async () => {
    for (const h of ['h1', 'h2']) {
      await virsh(labHost(h), ['destroy', VM]).catch(() => undefined);
      await virsh(labHost(h), ['undefine', VM]).catch(() => undefined);
    }
    await kz?.stop();
    await redis?.stop();
  }, 120_000);

  it('leaves a VM an operator destroyed shut off: not a death', async () => {
    await virsh(labHost('h1'), ['destroy', VM]);
    await waitFor(`${VM} seen shut off`, async () => (await where()).state === 'shutoff', 30_000, 250);
    await passes();
    expect(await where()).toEqual({ host: 'h1', state: 'shutoff' });
    expect(qemuCopies(VM)).toBe(0);
    await virsh(labHost('h1'), ['start', VM]);
    await waitFor(`${VM} running on h1 again`, runningOn('h1'), 30_000, 250);
  }, 60_000);

  it('restarts a killed QEMU in place, then relocates past the limit, then holds it in error until cleared', async () => {
    /** Kills the VM's QEMU and waits for a new one running on `host`: one copy, answering. */
    const killAndAwaitOn = async (host: string, what: string) => {
      const killed = killQemu();
      await waitFor(
        `${VM} ${what}`,
        async () => qemuPids(VM).some((p) => p !== killed) && (await runningOn(host)()),
        60_000,
        250,
      );
      expect(qemuCopies(VM)).toBe(1);
      await waitForPing(address(), 60_000);
    };
    // First death: restarted in place, a new QEMU on h1.
    await killAndAwaitOn('h1', 'restarted on h1');
    // Second death within the hour, limit 1: relocated to h2, the site's other host.
    await killAndAwaitOn('h2', 'relocated to h2');
    // Defined in one place: the relocation removed h1's shut-off copy.
    await expect(virsh(labHost('h1'), ['dominfo', VM])).rejects.toThrow();

    // Third death: error; nothing restarts it.
    killQemu();
    await waitFor(`${VM} in failover error`, async () => (await inError()).includes(VM), 60_000, 250);
    await passes();
    expect(qemuCopies(VM)).toBe(0);
    expect((await where()).state).not.toBe('running');

    // Cleared by an operator: restarted where it died.
    const cleared = await kz.request('POST', `/v1/ha/vms/${VM}/clear`, admin);
    expect(cleared.status).toBe(202);
    expect(cleared.body).toMatchObject({ vm: VM, host: 'h2' });
    await waitFor(`${VM} running on h2 after the clear`, runningOn('h2'), 60_000, 250);
    expect(qemuCopies(VM)).toBe(1);
    expect(await inError()).toEqual([]);

    const events = await vmEvents();
    expect(events.some((m) => m.includes(`VM ${VM} died on h1: restart in place (1/1)`))).toBe(true);
    expect(events.some((m) => m.includes(`VM ${VM} restart limit reached on h1: relocate to h2`))).toBe(true);
    expect(events.some((m) => m.includes(`VM ${VM} cleared from error by an operator`))).toBe(true);
  }, 300_000);
});
