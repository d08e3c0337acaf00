import { describe, expect, it } from 'vitest';
import { loadTiersFile, MECHANISMS } from '../../../src/config/index.ts';
import type { ClusterSnapshot, HostSnapshot, VmSnapshot } from '../../../src/core/model.ts';
import {
  availability,
  availabilityByTier,
  type ComplianceContext,
  complianceFor,
  judgeMove,
  mergeWindows,
  monthlyPeriod,
  type Tier,
} from '../../../src/core/tiers.ts';

const policy = await loadTiersFile();
const tier = (id: string): Tier => policy.tiers.find((t) => t.id === id)!;

const MiB = 1024;
const host = (name: string, site: string, o: Partial<HostSnapshot> = {}): HostSnapshot => ({
  name,
  site,
  health: 'up',
  cpus: 4,
  memoryKiB: 4096 * MiB,
  cpuUtilisation: 0.1,
  memoryUsedKiB: null,
  maintenance: false,
  observedAt: 0,
  vms: [],
  ...o,
});
const vmSnap = (name: string, h: string, memMiB = 512): VmSnapshot => ({
  name,
  uuid: name,
  host: h,
  state: 'running',
  vcpus: 1,
  memoryKiB: memMiB * MiB,
  cpuUsage: null,
  memoryUsedKiB: null,
});
const snap = (sites: string[], hosts: HostSnapshot[], vms: VmSnapshot[]): ClusterSnapshot => ({
  takenAt: 0,
  sites,
  hosts: new Map(hosts.map((h) => [h.name, h])),
  vms: new Map(vms.map((v) => [v.name, v])),
});
const ctx = (s: ClusterSnapshot, o: Partial<ComplianceContext> = {}): ComplianceContext => ({
  tiers: policy,
  snapshot: s,
  enabled: MECHANISMS,
  ...o,
});

describe('complianceFor', () => {
  const oneSite = snap(['dc1'], [host('h1', 'dc1'), host('h2', 'dc1')], [vmSnap('db1', 'h1')]);

  it('finds a core VM in a one-site cluster non-compliant, naming the missing second site', () => {
    const c = complianceFor(
      { name: 'db1', host: 'h1', site: 'dc1', assignment: { tier: 'core', limits: 'capped-50' } },
      ctx(oneSite),
    );
    expect(c.tier).toBe('core');
    expect(c.compliant).toBe(false);
    const failed = c.checks.filter((x) => !x.ok);
    expect(failed.map((x) => x.requirement ?? x.mechanism)).toEqual([
      'sites',
      'recovery-site',
      'cross-site-live-migration',
      'cross-site-failover',
    ]);
    for (const f of failed.filter((x) => x.requirement !== 'recovery-site'))
      expect(f.reason).toMatch(/only dc1 is configured: a second site is missing\.$/);
    // What a single site does give a core VM is still reported as available.
    expect(c.checks.find((x) => x.mechanism === 'live-migration')).toMatchObject({
      ok: true,
      reason: 'db1 can migrate live to h2 in site dc1.',
    });
  });

  it('names the second site and its hosts when that site is configured but down', () => {
    const s = snap(
      ['dc1', 'dc2'],
      [host('h1', 'dc1'), host('h2', 'dc1'), host('h3', 'dc2', { health: 'unreachable' })],
      [vmSnap('db1', 'h1')],
    );
    const c = complianceFor(
      {
        name: 'db1',
        host: 'h1',
        site: 'dc1',
        assignment: { tier: 'core', limits: 'capped-50', recoverySite: 'dc2' },
      },
      ctx(s),
    );
    expect(c.compliant).toBe(false);
    expect(c.checks.find((x) => x.requirement === 'sites')?.reason).toBe(
      'Tier core of db1 needs 2 sites with a host up, but site dc2 has no host up (h3 unreachable).',
    );
    expect(c.checks.find((x) => x.mechanism === 'cross-site-live-migration')?.reason).toBe(
      'db1 has no host in site dc2 to migrate live to: h3 unreachable.',
    );
    expect(c.checks.find((x) => x.mechanism === 'cross-site-failover')?.reason).toContain(
      'host h3 is unreachable',
    );
  });

  it('finds a core VM compliant with two sites up, and every check says why', () => {
    const s = snap(
      ['dc1', 'dc2'],
      [host('h1', 'dc1'), host('h2', 'dc1'), host('h3', 'dc2')],
      [vmSnap('db1', 'h1')],
    );
    const c = complianceFor(
      {
        name: 'db1',
        host: 'h1',
        site: 'dc1',
        assignment: { tier: 'core', limits: 'capped-50', homeSite: 'dc1', recoverySite: 'dc2' },
      },
      ctx(s, { limitsProfiles: ['capped-50'] }),
    );
    expect(c.compliant).toBe(true);
    expect(c.checks.map((x) => x.requirement ?? x.mechanism)).toEqual([
      'sites',
      'home-site',
      'recovery-site',
      ...tier('core').mechanisms,
    ]);
    expect(c.checks.find((x) => x.requirement === 'recovery-site')?.reason).toBe(
      "db1's recovery site is dc2.",
    );
    expect(c.checks.find((x) => x.mechanism === 'cross-site-live-migration')?.reason).toBe(
      'db1 can migrate live to h3 in site dc2.',
    );
    expect(c.checks.find((x) => x.mechanism === 'failover')?.reason).toBe(
      'db1 can be restarted on h2 in site dc1 if h1 fails.',
    );
  });

  describe('recovery site', () => {
    const three = snap(
      ['dc1', 'dc2', 'dc3'],
      [host('h1', 'dc1'), host('h2', 'dc1'), host('h3', 'dc2'), host('h4', 'dc3', { maintenance: true })],
      [vmSnap('db1', 'h1')],
    );
    const core = (assignment: Record<string, string>, where = { host: 'h1', site: 'dc1' }) =>
      complianceFor(
        { name: 'db1', ...where, assignment: { tier: 'core', limits: 'capped-50', ...assignment } },
        ctx(three),
      );
    const failedOf = (c: ReturnType<typeof core>) =>
      Object.fromEntries(c.checks.filter((x) => !x.ok).map((x) => [x.requirement ?? x.mechanism, x.reason]));

    it('finds a core VM without one non-compliant: no means to cross sites, said per mechanism', () => {
      const c = core({ homeSite: 'dc1' });
      expect(c.compliant).toBe(false);
      const why =
        'Tier core relies on cross-site-live-migration and cross-site-failover, but db1 has no recovery site (vms[].recoverySite): nowhere to go outside dc1.';
      expect(failedOf(c)).toEqual({
        'recovery-site': why,
        'cross-site-live-migration': `db1 has no site to migrate live to: ${why}`,
        'cross-site-failover': `db1 has no site to be restarted in: ${why}`,
      });
    });

    it('refuses the home site again and an unknown site as the recovery site', () => {
      expect(failedOf(core({ homeSite: 'dc1', recoverySite: 'dc1' }))['recovery-site']).toBe(
        "db1's recovery site dc1 is its home site: it has no other site to go to.",
      );
      expect(failedOf(core({ homeSite: 'dc1', recoverySite: 'dc9' }))['recovery-site']).toBe(
        "db1's recovery site dc9 is not one of the cluster's sites (dc1, dc2 and dc3).",
      );
    });

    it('counts only the recovery site: a host up in another site does not make up for it', () => {
      const c = core({ homeSite: 'dc1', recoverySite: 'dc3' });
      expect(failedOf(c)).toEqual({
        'cross-site-live-migration': 'db1 has no host in site dc3 to migrate live to: h4 in maintenance.',
        'cross-site-failover': expect.stringMatching(/^db1 could not be restarted in site dc3 if h1 fails: /),
      });
      expect(core({ homeSite: 'dc1', recoverySite: 'dc2' }).compliant).toBe(true);
    });

    it('at the recovery site, the way back is the home site', () => {
      const c = core({ homeSite: 'dc1', recoverySite: 'dc2' }, { host: 'h3', site: 'dc2' });
      expect(c.checks.find((x) => x.requirement === 'recovery-site')?.reason).toBe(
        'db1 runs at its recovery site dc2; its home site dc1 is where it goes back.',
      );
      expect(c.checks.find((x) => x.mechanism === 'cross-site-live-migration')?.reason).toBe(
        'db1 can migrate live to h1 and h2 in site dc1.',
      );
      expect(failedOf(core({ recoverySite: 'dc2' }, { host: 'h3', site: 'dc2' }))['recovery-site']).toBe(
        'db1 runs at its recovery site dc2 and has no home site (vms[].homeSite) to go back to.',
      );
    });

    it('a tier relying on cross-site DRS, which keizoku does not run, is not met', () => {
      const tiers = {
        ...policy,
        tiers: [{ ...tier('core'), id: 'burst', mechanisms: ['cross-site-drs' as const] }],
      };
      const c = complianceFor(
        { name: 'db1', host: 'h1', site: 'dc1', assignment: { tier: 'burst', recoverySite: 'dc2' } },
        ctx(three, { tiers, enabled: MECHANISMS.filter((m) => m !== 'cross-site-drs') }),
      );
      expect(failedOf(c)).toEqual({
        'cross-site-drs': 'Tier burst relies on cross-site-drs, which is not enabled in keizoku.',
      });
      const on = complianceFor(
        { name: 'db1', host: 'h1', site: 'dc1', assignment: { tier: 'burst', recoverySite: 'dc2' } },
        ctx(three, { tiers }),
      );
      expect(on.checks.find((x) => x.mechanism === 'cross-site-drs')?.reason).toBe(
        'db1 can be rebalanced onto h3 in site dc2.',
      );
    });

    it('a tier that never crosses sites has no recovery-site check', () => {
      const c = complianceFor(
        { name: 'o1', host: 'h1', site: 'dc1', assignment: { tier: 'low', limits: 'capped-50' } },
        ctx(three),
      );
      expect(c.checks.some((x) => x.requirement === 'recovery-site')).toBe(false);
    });
  });

  it('finds a low-tier VM compliant on two hosts of one site', () => {
    const c = complianceFor(
      { name: 'office1', host: 'h1', site: 'dc1', assignment: { tier: 'low', limits: 'capped-50' } },
      ctx(oneSite),
    );
    expect(c).toMatchObject({ vm: 'office1', tier: 'low', compliant: true });
    expect(c.checks.map((x) => x.requirement ?? x.mechanism)).toEqual([
      'sites',
      'resource-limits',
      'failover',
    ]);
  });

  it('reports a VM without an assignment as having no tier', () => {
    const c = complianceFor({ name: 'stray', host: 'h1', site: 'dc1', assignment: null }, ctx(oneSite));
    expect(c).toEqual({
      vm: 'stray',
      tier: null,
      compliant: false,
      checks: [
        {
          requirement: 'tier-assigned',
          ok: false,
          reason: 'stray has no tier assigned: no vms[] entry of the configuration matches it.',
        },
      ],
    });
  });

  it('reports a tier the policy lacks, a missing limits profile and a mechanism switched off', () => {
    expect(
      complianceFor({ name: 'x', host: 'h1', site: 'dc1', assignment: { tier: 'gold' } }, ctx(oneSite))
        .checks[0]?.reason,
    ).toBe(
      'x is assigned tier "gold", which the tiers policy does not define (it has low, frontend, frontend-seasonal and core).',
    );
    const c = complianceFor(
      { name: 'web1', host: 'h1', site: 'dc1', assignment: { tier: 'frontend' } },
      ctx(oneSite, { enabled: ['resource-limits', 'failover'] }),
    );
    expect(c.compliant).toBe(false);
    expect(c.checks.filter((x) => !x.ok).map((x) => x.reason)).toEqual([
      'web1 has no limits profile assigned; tier frontend relies on resource limits.',
      'Tier frontend relies on live-migration, which is not enabled in keizoku.',
    ]);
  });

  it('fails a mechanism the VM switches off (drs mode off) with the sentence given', () => {
    const c = complianceFor(
      {
        name: 'web1',
        host: 'h1',
        site: 'dc1',
        assignment: { tier: 'frontend-seasonal', limits: 'capped-50' },
      },
      ctx(oneSite, { offForVm: { drs: 'web1 has DRS mode off (drs.mode, vms[].drs).' } }),
    );
    expect(c.checks.filter((x) => !x.ok)).toEqual([
      { mechanism: 'drs', ok: false, reason: 'web1 has DRS mode off (drs.mode, vms[].drs).' },
    ]);
  });

  it('fails failover when no other host of the site has room, and live migration on a lone host', () => {
    const s = snap(
      ['dc1'],
      [host('h1', 'dc1'), host('h2', 'dc1', { memoryKiB: 256 * MiB })],
      [vmSnap('big', 'h1', 1024)],
    );
    const c = complianceFor(
      { name: 'big', host: 'h1', site: 'dc1', assignment: { tier: 'low', limits: 'capped-50' } },
      ctx(s),
    );
    expect(c.checks.find((x) => x.mechanism === 'failover')).toEqual({
      mechanism: 'failover',
      ok: false,
      reason:
        'big could not be restarted in site dc1 if h1 fails: host h2 has 230 MiB of guest memory free, big needs 1024 MiB.',
    });
    const lone = snap(['dc1'], [host('h1', 'dc1')], []);
    const l = complianceFor(
      { name: 'web1', host: 'h1', site: 'dc1', assignment: { tier: 'frontend', limits: 'capped-50' } },
      ctx(lone),
    );
    expect(l.checks.find((x) => x.mechanism === 'live-migration')?.reason).toBe(
      'web1 has no other host in site dc1 to migrate live to (h1 is the only one).',
    );
  });

  it('reports a VM away from its home site', () => {
    const s = snap(['dc1', 'dc2'], [host('h1', 'dc1'), host('h3', 'dc2')], []);
    const c = complianceFor(
      {
        name: 'db1',
        host: 'h3',
        site: 'dc2',
        assignment: { tier: 'low', limits: 'capped-50', homeSite: 'dc1' },
      },
      ctx(s),
    );
    expect(c.checks.find((x) => x.requirement === 'home-site')).toEqual({
      requirement: 'home-site',
      ok: false,
      reason: 'db1 runs on h3 in site dc2, away from its home site dc1.',
    });
  });
});

describe('availability', () => {
  it('is the whole period without outages, and (total - outage) / total with one', () => {
    expect(availability([], 0, 1000)).toMatchObject({
      totalMs: 1000,
      outageMs: 0,
      fraction: 1,
      percent: 100,
    });
    expect(availability([{ startMs: 100, endMs: 200 }], 0, 1000)).toMatchObject({
      outageMs: 100,
      fraction: 0.9,
    });
  });

  it('counts overlapping and touching windows once', () => {
    const windows = [
      { startMs: 100, endMs: 300 },
      { startMs: 200, endMs: 400 },
      { startMs: 250, endMs: 260 },
      { startMs: 400, endMs: 450 },
      { startMs: 700, endMs: 800 },
    ];
    const a = availability(windows, 0, 1000);
    expect(a.outageMs).toBe(450);
    expect(a.fraction).toBeCloseTo(0.55, 12);
    // The sum is the same whether touching windows merge or not: the merge itself is checked.
    expect(mergeWindows(windows, 0, 1000)).toEqual([
      { startMs: 100, endMs: 450 },
      { startMs: 700, endMs: 800 },
    ]);
  });

  it('clips windows to the period and ignores those outside it or empty', () => {
    const a = availability(
      [
        { startMs: -500, endMs: 100 },
        { startMs: 950, endMs: 5000 },
        { startMs: 2000, endMs: 3000 },
        { startMs: 500, endMs: 500 },
        { startMs: 600, endMs: 550 },
      ],
      0,
      1000,
    );
    expect(a.outageMs).toBe(150);
    expect(a.percent).toBeCloseTo(85, 12);
  });

  it('is zero when the whole period is out', () => {
    expect(availability([{ startMs: -1, endMs: 2000 }], 0, 1000)).toMatchObject({
      outageMs: 1000,
      fraction: 0,
    });
  });

  it('gives 99.99 % for 4 min 19.2 s of outage in a 30-day month', () => {
    const total = 30 * 86_400_000;
    const a = availability([{ startMs: 0, endMs: 259_200 }], 0, total);
    expect(a.percent).toBeCloseTo(99.99, 10);
  });

  it('refuses a period that does not end after it starts', () => {
    expect(() => availability([], 1000, 1000)).toThrow(RangeError);
  });
});

describe('monthlyPeriod', () => {
  it('gives February 2026 in Asia/Tokyo: 28 days from 2026-01-31T15:00Z', () => {
    const p = monthlyPeriod(2026, 2);
    expect(new Date(p.startMs).toISOString()).toBe('2026-01-31T15:00:00.000Z');
    expect(new Date(p.endMs).toISOString()).toBe('2026-02-28T15:00:00.000Z');
    expect((p.endMs - p.startMs) / 86_400_000).toBe(28);
  });

  it('rolls December over to January, and takes other zones and their clock changes', () => {
    const dec = monthlyPeriod(2025, 12, 'Asia/Tokyo');
    expect(new Date(dec.endMs).toISOString()).toBe('2025-12-31T15:00:00.000Z');
    expect(monthlyPeriod(2024, 2, 'UTC')).toEqual({
      startMs: Date.UTC(2024, 1, 1),
      endMs: Date.UTC(2024, 2, 1),
    });
    // Summer time starts on 29 March 2026 in London: March is an hour short, in BST from April.
    const march = monthlyPeriod(2026, 3, 'Europe/London');
    expect(new Date(march.startMs).toISOString()).toBe('2026-03-01T00:00:00.000Z');
    expect(new Date(march.endMs).toISOString()).toBe('2026-03-31T23:00:00.000Z');
    const oct = monthlyPeriod(2026, 10, 'America/New_York');
    expect(new Date(oct.startMs).toISOString()).toBe('2026-10-01T04:00:00.000Z');
    expect(new Date(oct.endMs).toISOString()).toBe('2026-11-01T04:00:00.000Z');
  });

  it('refuses a month outside 1-12 and an unknown zone', () => {
    expect(() => monthlyPeriod(2026, 13)).toThrow(RangeError);
    expect(() => monthlyPeriod(2026, 1, 'Mars/Olympus')).toThrow(RangeError);
  });
});

describe('availabilityByTier', () => {
  const pct = (percent: number) => ({ fraction: percent / 100, percent });

  it('averages per tier, names the lowest VM and those below target', () => {
    const rows = availabilityByTier(
      [
        { vm: 'db1', tier: 'core', availability: pct(100) },
        { vm: 'db2', tier: 'core', availability: pct(99.985) },
        { vm: 'web1', tier: 'frontend', availability: pct(99.95) },
        { vm: 'web2', tier: 'frontend', availability: pct(99.99) },
        { vm: 'x', tier: 'gold', availability: pct(50) },
      ],
      policy,
    );
    expect(rows.map((r) => r.tier)).toEqual(['low', 'frontend', 'frontend-seasonal', 'core', 'gold']);
    const core = rows.find((r) => r.tier === 'core')!;
    expect(core).toMatchObject({
      targetPercent: 99.99,
      vms: 2,
      minPercent: 99.985,
      minVm: 'db2',
      belowTarget: [{ vm: 'db2', percent: 99.985 }],
      meetsTarget: true,
    });
    expect(core.meanPercent).toBeCloseTo(99.9925, 10);
    // Exactly on target counts as meeting it.
    expect(rows.find((r) => r.tier === 'frontend')).toMatchObject({ belowTarget: [], meetsTarget: true });
    expect(rows.find((r) => r.tier === 'low')).toMatchObject({
      vms: 0,
      meanPercent: null,
      meetsTarget: null,
    });
    expect(rows.find((r) => r.tier === 'gold')).toMatchObject({ targetPercent: null, meetsTarget: null });
  });

  it('misses the target when the mean is below it', () => {
    const [row] = availabilityByTier([{ vm: 'db1', tier: 'core', availability: pct(99.98) }], [tier('core')]);
    expect(row).toMatchObject({ meetsTarget: false, belowTarget: [{ vm: 'db1', percent: 99.98 }] });
  });
});

describe('judgeMove', () => {
  it('passes at or under the limit and fails over it, with the reason', () => {
    expect(
      judgeMove({ tier: tier('frontend'), mechanism: 'live-migration', outageMs: 2000, totalMs: 8400 }),
    ).toEqual({
      status: 'pass',
      tier: 'frontend',
      mechanism: 'live-migration',
      limitMs: 2000,
      outageMs: 2000,
      reason:
        'Outage 2,000 ms is within the 2,000 ms allowed for live-migration in tier frontend; the move took 8,400 ms.',
    });
    const f = judgeMove({
      tier: tier('core'),
      mechanism: 'cross-site-failover',
      outageMs: 70_001,
      totalMs: 71_000,
    });
    expect(f.status).toBe('fail');
    expect(f.reason).toBe(
      'Outage 70,001 ms is over the 70,000 ms allowed for cross-site-failover in tier core; the move took 71,000 ms.',
    );
  });

  it('does not pass a mechanism the tier sets no objective for, nor an unmeasured move', () => {
    const n = judgeMove({ tier: tier('low'), mechanism: 'live-migration', outageMs: 10, totalMs: 500 });
    expect(n).toMatchObject({ status: 'no-objective', limitMs: null });
    expect(n.reason).toBe(
      'Tier low sets no outage objective for live-migration, so the move cannot pass (outage 10 ms); the move took 500 ms.',
    );
    expect(
      judgeMove({ tier: tier('low'), mechanism: 'failover', outageMs: null, totalMs: null }),
    ).toMatchObject({
      status: 'unmeasured',
      limitMs: 60000,
    });
  });
});
