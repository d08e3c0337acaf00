import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../../lab/index.ts';
import { startSimBmc } from '../../../lab/sim/bmc.ts';
import { type SimCluster, startSimHosts } from '../../../lab/sim/hosts.ts';
import { fencerFor } from '../../../src/fence/fencer.ts';
import { connectLibvirt } from '../../../src/libvirt/index.ts';
import type { RedfishEndpoint } from '../../support/redfish-server.ts';

// keizokud's redfish fence against the simulated hosts' BMC: systems by host name.
describe('simulated hosts BMC', () => {
  let sim: SimCluster;
  let bmc: RedfishEndpoint;
  beforeAll(async () => {
    sim = await startSimHosts({ hosts: 2, vmsPerHost: 1, port: await freePort() });
    bmc = await startSimBmc(sim);
  });
  afterAll(async () => {
    await bmc.close();
    await sim.stop();
  });
  const fencer = () =>
    fencerFor(
      new Map(
        sim.hosts.map((h) => [
          h.spec.name,
          {
            managementAddress: h.spec.address,
            fence: {
              method: 'redfish' as const,
              address: '127.0.0.1',
              port: bmc.port,
              systemId: h.spec.name,
              username: bmc.username,
              passwordFile: bmc.passwordFile,
              caFile: bmc.caFile,
              insecure: false,
              confirmTimeoutMs: 2000,
            },
          },
        ]),
      ),
      { pollIntervalMs: 50 },
    );

  it('a fence powers the named host off (confirmed Off) and leaves the others; power on restores it', async () => {
    const r = await fencer().fence('h0002');
    expect(r).toMatchObject({ ok: true, confirmedOff: true, method: 'redfish' });
    expect(sim.byName('h0002')!.power).toBe('off');
    expect(sim.byName('h0001')!.power).toBe('on');
    await expect(
      connectLibvirt(sim.byName('h0002')!.uri, { insecure: true, connectTimeoutMs: 500 }),
    ).rejects.toThrow();
    await fencer().powerOn('h0002');
    await until(() => sim.byName('h0002')!.power === 'on');
    const c = await connectLibvirt(sim.byName('h0002')!.uri, { insecure: true });
    expect(await c.hostname()).toBe('h0002');
    await c.close();
  });

  it('a partitioned host is still powered on for its BMC', async () => {
    sim.byName('h0001')!.partition();
    const res = await fencer().fence('h0001');
    expect(res.ok).toBe(true); // ForceOff works on a partitioned host: the BMC is another path
    expect(sim.byName('h0001')!.power).toBe('off');
  });
});

async function until(cond: () => boolean, timeoutMs = 5_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}
