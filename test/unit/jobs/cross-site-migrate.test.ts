import { describe, expect, it } from 'vitest';
import type { ClusterSnapshot } from '../../../src/core/model.ts';
import { type JobHandle, runMigration } from '../../../src/jobs/migrate.ts';
import { fakeMove, movePorts, moveRequest, policy, twoHosts } from './fake-move.ts';

const job: JobHandle = {
  id: 'j',
  progress: async () => undefined,
  heartbeat: async () => undefined,
  cancelled: async () => false,
};

/** h1 in dc1, h2 in dc2: the move of vm1 crosses the WAN. */
const twoSites = (): ClusterSnapshot => {
  const s = twoHosts({ vm1: 'h1' });
  return {
    ...s,
    sites: ['dc1', 'dc2'],
    hosts: new Map([...s.hosts].map(([n, h]) => [n, { ...h, site: n === 'h2' ? 'dc2' : 'dc1' }])),
  };
};

const WAN = policy({
  maxDowntimeMs: 100,
  crossSite: [
    { sites: ['dc1', 'dc2'], tier: 'core', bandwidthMiBs: 10, compression: ['xbzrle'], maxDowntimeMs: 500 },
    {
      sites: ['dc1', 'dc2'],
      bandwidthMiBs: 30,
      parallelConnections: 4,
      postCopyAfterIterations: 3,
      autoConverge: false,
    },
  ],
});

async function move(snap: ClusterSnapshot, tier: string | null, request = {}) {
  const f = fakeMove();
  const ports = { ...movePorts(f, WAN, snap), tierOf: () => tier };
  const run = runMigration({ ...moveRequest, policy: request }, job, ports, async () => true);
  for (let i = 0; i < 100 && f.migrateOptions === null; i++) await new Promise((r) => setTimeout(r, 10));
  f.complete();
  return { f, result: await run };
}

describe('the migrate job applies the WAN rule of a cross-site move', () => {
  it('core VM: cap, compression and downtime of its rule go to libvirt and into the record', async () => {
    const { f, result } = await move(twoSites(), 'core');
    expect(result.outcome).toBe('succeeded');
    expect(f.migrateOptions).toMatchObject({
      bandwidthMiBs: 10,
      compression: ['xbzrle'],
      autoConverge: true,
    });
    expect(f.migrateOptions?.parallelConnections).toBeUndefined();
    expect(f.maxDowntimeMs).toBe(500);
    expect(result.settings).toMatchObject({
      bandwidthMiBs: 10,
      compression: ['xbzrle'],
      maxDowntimeMs: 500,
      crossSite: { fromSite: 'dc1', toSite: 'dc2', rule: 'migration.crossSite[0]' },
    });
  });

  it('another tier: the pair rule (parallel connections, post-copy wanted, no auto-converge)', async () => {
    const { f, result } = await move(twoSites(), 'frontend');
    expect(f.migrateOptions).toMatchObject({
      bandwidthMiBs: 30,
      parallelConnections: 4,
      postCopy: true,
      autoConverge: false,
    });
    expect(f.migrateOptions?.compression).toBeUndefined();
    expect(f.maxDowntimeMs).toBe(100);
    expect(result.settings?.crossSite?.rule).toBe('migration.crossSite[1]');
  });

  it('within a site no rule applies: the defaults, crossSite null in the record', async () => {
    const { f, result } = await move(twoHosts({ vm1: 'h1' }), 'core');
    expect(f.migrateOptions?.bandwidthMiBs).toBeUndefined();
    expect(f.maxDowntimeMs).toBe(100);
    expect(result.settings).toMatchObject({ bandwidthMiBs: 0, crossSite: null });
  });

  it("the request's own cap wins over the rule's", async () => {
    const { f, result } = await move(twoSites(), 'core', { bandwidthMiBs: 4 });
    expect(f.migrateOptions?.bandwidthMiBs).toBe(4);
    expect(result.settings).toMatchObject({ bandwidthMiBs: 4, maxDowntimeMs: 500 });
  });
});
