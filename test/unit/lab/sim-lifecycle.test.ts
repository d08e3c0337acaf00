import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../../lab/index.ts';
import { type SimCluster, type SimHost, startSimHosts } from '../../../lab/sim/hosts.ts';
import type { DomainEvent } from '../../../src/libvirt/client.ts';
import { DomainStats, DomainXmlFlags } from '../../../src/libvirt/constants.ts';
import { connectLibvirt, LibvirtError } from '../../../src/libvirt/index.ts';

// define / create / start / shutdown / destroy / undefine on a simulated host, through
// keizokud's own client, with the lifecycle events libvirtd sends.
describe('simulated host domain lifecycle', () => {
  let sim: SimCluster;
  beforeAll(async () => {
    sim = await startSimHosts({ hosts: 2, vmsPerHost: 1, port: await freePort(), shutdownMs: 50 });
  });
  afterAll(() => sim.stop());

  const open = (h: SimHost) => connectLibvirt(h.uri, { insecure: true });
  const code = (e: unknown) => (e instanceof LibvirtError ? e.codeName : String(e));
  const xmlOf = (name: string, uuid: string) =>
    `<domain type='kvm'><name>${name}</name><uuid>${uuid}</uuid><memory unit='MiB'>512</memory><vcpu>3</vcpu></domain>`;

  it('defines, starts, shuts down and undefines a domain, sending each lifecycle event', async () => {
    const c = await open(sim.hosts[0]!);
    try {
      await c.subscribeDomainEvents();
      const events: string[] = [];
      c.on('domain-event', (e: DomainEvent) => {
        if (e.kind === 'lifecycle' && e.domain === 'db1') events.push(`${e.event}/${e.detail}`);
      });
      const uuid = '0e4b1c2d-0000-4000-8000-00000000aa01';
      const dom = await c.defineXml(xmlOf('db1', uuid));
      expect(dom.name).toBe('db1');
      expect(await c.getState(dom)).toMatchObject({ state: 'shutoff' });
      const started = await c.start(dom);
      expect(await c.getState(started)).toMatchObject({ state: 'running' });
      expect(code(await c.start(dom).catch((e) => e))).toBe('VIR_ERR_OPERATION_INVALID');
      const stats = await c.getAllDomainStats(DomainStats.STATE | DomainStats.BALLOON);
      const mine = stats.find((s) => s.name === 'db1')!;
      expect(mine.stats).toMatchObject({ 'state.state': 1, 'balloon.maximum': 512 * 1024 });
      expect(await c.getXml(dom, DomainXmlFlags.INACTIVE)).toContain("<vcpu placement='static'>3</vcpu>");

      await c.shutdown(dom);
      // The guest powers down a moment later, not at the call.
      expect(await c.getState(dom)).toMatchObject({ state: 'running' });
      await until(async () => (await c.getState(dom)).state === 'shutoff');
      expect(code(await c.destroy(dom).catch((e) => e))).toBe('VIR_ERR_OPERATION_INVALID');
      await c.undefine(dom);
      expect(code(await c.lookupByName('db1').catch((e) => e))).toBe('VIR_ERR_NO_DOMAIN');
      await until(async () => events.length >= 5);
      // defined/added, started/booted, shutdown/finished, stopped/shutdown, undefined/removed
      expect(events).toEqual(['defined/0', 'started/0', 'shutdown/0', 'stopped/0', 'undefined/0']);
    } finally {
      await c.close();
    }
  });

  it('destroys at once; a transient domain (createXml) is gone when it stops', async () => {
    const c = await open(sim.hosts[1]!);
    try {
      const t = await c.createXml(xmlOf('tmp1', '0e4b1c2d-0000-4000-8000-00000000aa02'));
      expect(await c.getState(t)).toMatchObject({ state: 'running' });
      await c.destroy(t);
      expect(code(await c.lookupByName('tmp1').catch((e) => e))).toBe('VIR_ERR_NO_DOMAIN');
      const [booted] = await c.listAllDomains();
      await c.destroy(booted!);
      expect(await c.getState(booted!)).toMatchObject({ state: 'shutoff' });
      expect((await c.listAllDomains(1)).length).toBe(0); // active only
      expect((await c.listAllDomains(2)).map((d) => d.name)).toEqual([booted!.name]);
    } finally {
      await c.close();
    }
  });

  it('refuses a bad definition, a name taken by another UUID, and undefining a transient domain', async () => {
    const c = await open(sim.hosts[1]!);
    try {
      expect(code(await c.defineXml('<domain><memory>1</memory></domain>').catch((e) => e))).toBe(
        'VIR_ERR_XML_ERROR',
      );
      const taken = (await c.listAllDomains())[0]!.name;
      const other = xmlOf(taken, '0e4b1c2d-0000-4000-8000-00000000aa03');
      expect(code(await c.defineXml(other).catch((e) => e))).toBe('VIR_ERR_OPERATION_FAILED');
      const t = await c.createXml(xmlOf('tmp2', '0e4b1c2d-0000-4000-8000-00000000aa04'));
      expect(code(await c.undefine(t).catch((e) => e))).toBe('VIR_ERR_OPERATION_INVALID');
    } finally {
      await c.close();
    }
  });
});

async function until(cond: () => Promise<boolean>, timeoutMs = 5_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}
