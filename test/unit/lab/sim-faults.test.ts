import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../../lab/index.ts';
import { type SimCluster, startSimHosts } from '../../../lab/sim/hosts.ts';
import { connectLibvirt } from '../../../src/libvirt/index.ts';
import { InventoryLoop } from '../../../src/loops/inventory.ts';
import { createMetrics } from '../../../src/metrics/registry.ts';

// Faults of a simulated host, seen by keizokud's client and judged by its inventory.
describe('simulated host faults', () => {
  let sim: SimCluster;
  let inventory: InventoryLoop;
  beforeAll(async () => {
    sim = await startSimHosts({ hosts: 3, vmsPerHost: 2, port: await freePort() });
    inventory = new InventoryLoop({
      hosts: sim.hosts.map((h) => ({ name: h.spec.name, site: 'dc1', uri: h.uri })),
      sites: ['dc1'],
      connectOptions: () => ({
        insecure: true,
        connectTimeoutMs: 500,
        callTimeoutMs: 500,
        keepaliveIntervalMs: 100,
        keepaliveCount: 3,
      }),
      intervalMs: 200,
      minBackoffMs: 50,
      maxBackoffMs: 200,
      healthIntervalMs: 100,
      metrics: createMetrics(),
      log: { info: () => undefined, warn: () => undefined },
    });
    await inventory.start();
    const timer = setInterval(() => void inventory.pass(Date.now()).catch(() => undefined), 200);
    afterAllStop.push(() => clearInterval(timer));
  });
  const afterAllStop: (() => void)[] = [];
  afterAll(async () => {
    for (const f of afterAllStop) f();
    await inventory.close();
    await sim.stop();
  });

  const health = (name: string) => inventory.snapshot().hosts.get(name)?.health;
  const vmsOf = (name: string) => inventory.snapshot().hosts.get(name)?.vms.length;

  it('power off: the link closes, connects are refused, its guests are off; restore answers again', async () => {
    const host = sim.byName('h0001')!;
    const c = await connectLibvirt(host.uri, { insecure: true });
    const closed = new Promise((r) => c.channel.on('close', r));
    await until(() => health('h0001') === 'up');
    await host.powerOff();
    await closed;
    await expect(connectLibvirt(host.uri, { insecure: true, connectTimeoutMs: 500 })).rejects.toThrow();
    await until(() => health('h0001') === 'unreachable');
    expect(health('h0002')).toBe('up');

    await host.restore();
    await until(() => health('h0001') === 'up');
    // Booted again with its guests shut off (their definitions kept).
    const again = await connectLibvirt(host.uri, { insecure: true });
    try {
      const states = await Promise.all((await again.listAllDomains()).map((d) => again.getState(d)));
      expect(states.map((s) => s.state)).toEqual(['shutoff', 'shutoff']);
      expect(await again.listAllDomains(1)).toEqual([]);
    } finally {
      await again.close();
    }
  });

  it('partition: calls and keepalives go unanswered, connects open but never answer; restore heals', async () => {
    const host = sim.byName('h0003')!;
    await until(() => health('h0003') === 'up' && vmsOf('h0003') === 2);
    const c = await connectLibvirt(host.uri, { insecure: true, callTimeoutMs: 300 });
    host.partition();
    await expect(c.hostname()).rejects.toThrow(/within 300 ms/);
    await expect(connectLibvirt(host.uri, { insecure: true, connectTimeoutMs: 300 })).rejects.toThrow();
    // keepalive (100 ms x 3) loses the link; with no ICMP probe the host is unreachable
    await until(() => health('h0003') === 'unreachable');
    await c.close();
    await host.restore();
    await until(() => health('h0003') === 'up' && vmsOf('h0003') === 2);
  });
});

async function until(cond: () => boolean, timeoutMs = 8_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 25));
  }
}
