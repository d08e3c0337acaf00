import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../../lab/index.ts';
import { startSimHosts } from '../../../lab/sim/hosts.ts';
import { InventoryLoop } from '../../../src/loops/inventory.ts';
import { createMetrics } from '../../../src/metrics/registry.ts';

// The inventory over bench:scale's simulated hosts: every host and VM seen, and a VM's labels
// and addresses looked up without going over every host again for each VM.
describe('inventory over simulated hosts', () => {
  let sim: Awaited<ReturnType<typeof startSimHosts>>;
  let inventory: InventoryLoop;
  let fenceReads = 0;
  beforeAll(async () => {
    sim = await startSimHosts({ hosts: 20, vmsPerHost: 5, port: await freePort() });
    inventory = new InventoryLoop({
      hosts: sim.hosts.map((h, i) => ({ name: h.spec.name, site: `dc${i % 2}`, uri: h.uri })),
      sites: ['dc0', 'dc1'],
      connectOptions: () => ({ insecure: true }),
      intervalMs: 60_000,
      fencedAt: () => {
        fenceReads++;
        return null;
      },
      metrics: createMetrics(),
      log: { info: () => undefined, warn: () => undefined },
    });
    await inventory.start();
  });
  afterAll(async () => {
    await inventory.close();
    await sim.stop();
  });

  it('sees every host up with its VMs', () => {
    const snap = inventory.snapshot();
    expect(snap.vms.size).toBe(100);
    expect([...snap.hosts.values()].filter((h) => h.vms.length === 5)).toHaveLength(20);
    expect(snap.vms.get('vm-h0007-03')).toMatchObject({ host: 'h0007', state: 'running', vcpus: 2 });
  });

  it("reads each VM's labels and addresses from the cached snapshot, not every host per VM", () => {
    inventory.snapshot();
    const before = fenceReads;
    for (const vm of inventory.snapshot().vms.keys()) {
      expect(inventory.labelsOf(vm)).toEqual({});
      expect(inventory.addressesOf(vm)).toHaveLength(1);
    }
    // snapshot() checks each host's fence state once per call: once above, not once per VM.
    expect(fenceReads - before).toBe(20);
  });
});
