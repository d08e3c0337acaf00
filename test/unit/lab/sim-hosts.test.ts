import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../../lab/index.ts';
import { type SimHost, startSimHosts } from '../../../lab/sim/hosts.ts';
import { DomainStats, DomainStatsFlags, DomainXmlFlags } from '../../../src/libvirt/constants.ts';
import { connectLibvirt, LibvirtError } from '../../../src/libvirt/index.ts';
import { DomainDefinitions, VM_METADATA_NS } from '../../../src/loops/domain-definitions.ts';

// The simulated hosts of bench:scale, answered through keizokud's own client over TCP.
describe('simulated libvirt hosts', () => {
  let sim: Awaited<ReturnType<typeof startSimHosts>>;
  beforeAll(async () => {
    sim = await startSimHosts({ hosts: 3, vmsPerHost: 4, port: await freePort() });
  });
  afterAll(() => sim.stop());

  const open = (h: SimHost) =>
    connectLibvirt(h.uri, { insecure: true, keepaliveIntervalMs: 100, keepaliveCount: 3 });

  it('each host listens at its own loopback address', () => {
    expect(new Set(sim.hosts.map((h) => h.spec.address)).size).toBe(3);
    expect(sim.hosts.map((h) => h.spec.name)).toEqual(['h0001', 'h0002', 'h0003']);
  });

  it('answers connect, node info and stats, bulk domain stats, lookup, metadata and XML', async () => {
    const host = sim.hosts[1]!;
    const c = await open(host);
    try {
      const info = await c.nodeInfo();
      expect(info).toMatchObject({ model: 'x86_64', cpus: 64, memoryKiB: 256 * 1024 * 1024 });
      expect(Object.keys(await c.nodeCpuStats()).sort()).toEqual(['idle', 'iowait', 'kernel', 'user']);
      expect((await c.nodeMemoryStats()).total).toBe(256 * 1024 * 1024);
      await c.subscribeDomainEvents();

      const flags = DomainStats.STATE | DomainStats.CPU_TOTAL | DomainStats.BALLOON | DomainStats.VCPU;
      const first = await c.getAllDomainStats(flags, DomainStatsFlags.NOWAIT);
      expect(first.map((d) => d.name)).toEqual([1, 2, 3, 4].map((v) => `vm-h0002-0${v}`));
      const s = first[0]!.stats;
      expect(s).toMatchObject({ 'state.state': 1, 'vcpu.current': 2, 'balloon.maximum': 4 * 1024 * 1024 });
      await new Promise((r) => setTimeout(r, 300)); // keepalive runs meanwhile (100 ms x 3)
      const later = await c.getAllDomainStats(flags, DomainStatsFlags.NOWAIT);
      expect(Number(later[0]!.stats['cpu.time'])).toBeGreaterThan(Number(s['cpu.time']));
      // Only the groups asked for.
      expect(Object.keys((await c.getAllDomainStats(DomainStats.STATE))[0]!.stats).sort()).toEqual([
        'state.reason',
        'state.state',
      ]);

      const dom = await c.lookupByUuid(first[2]!.uuid);
      expect(dom.name).toBe('vm-h0002-03');
      const xml = await c.getXml(dom, DomainXmlFlags.INACTIVE);
      expect(xml).toContain(`<uuid>${first[2]!.uuid}</uuid>`);
      expect(await c.getMetadataElement(dom, VM_METADATA_NS)).toContain('<kz:address>');
      expect(await c.getMetadataElement(dom, 'urn:other')).toBeNull();
    } finally {
      await c.close();
    }
  });

  it('feeds the inventory definitions reader (metadata and XML of every domain, by the handles its stats listed)', async () => {
    const c = await open(sim.hosts[0]!);
    try {
      const xmls: string[] = [];
      const defs = new DomainDefinitions({
        refreshMs: 60_000,
        onDomainXml: async (_vm, _host, xml) => void xmls.push(xml),
        timed: (_h, _c, p) => p,
        log: { warn: () => undefined },
      });
      const domains = await c.getAllDomainStats(DomainStats.STATE);
      await defs.read('h0001', c, domains, Date.now());
      expect(defs.addressesOf(domains[1]!.uuid)).toHaveLength(1); // the metadata is read at once
      await defs.idle(); // the XML after it
      expect(xmls).toHaveLength(4);
      expect(defs.addressesOf(domains[0]!.uuid)).toHaveLength(1);
    } finally {
      await c.close();
    }
  });

  it('refuses a call it does not simulate as libvirtd does (VIR_ERR_NO_SUPPORT)', async () => {
    const c = await open(sim.hosts[2]!);
    try {
      const err = await c.capabilities().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(LibvirtError);
      expect((err as LibvirtError).codeName).toBe('VIR_ERR_NO_SUPPORT');
      expect(await c.hostname()).toBe('h0003'); // the connection is still usable
    } finally {
      await c.close();
    }
  });
});
