import { describe, expect, it } from 'vitest';
import type { CrossSiteMigrationRule, MigrationConfig } from '../../../src/config/index.ts';
import { appliedSettings, chooseMigrationPolicy, maxDowntimeAt } from '../../../src/core/migration-policy.ts';

const base = (crossSite: CrossSiteMigrationRule[] = []): MigrationConfig => ({
  maxDowntimeMs: 100,
  maxDowntimeSteps: [],
  bandwidthMiBs: 0,
  autoConverge: true,
  postCopyAfterIterations: 0,
  postCopyAfterMs: 0,
  timeoutMs: 120_000,
  compression: [],
  parallelConnections: 0,
  crossSite,
  perHostConcurrency: 2,
  clusterConcurrency: 4,
  progressIntervalMs: 500,
});
const move = (fromSite: string | null, toSite: string | null, tier: string | null = 'core') => ({
  fromSite,
  toSite,
  tier,
});

/** The WAN rules of a two-datacenter installation: core moves capped harder than the rest. */
const RULES: CrossSiteMigrationRule[] = [
  { sites: ['dc1', 'dc2'], tier: 'core', bandwidthMiBs: 40, maxDowntimeMs: 300, compression: ['xbzrle'] },
  { sites: ['dc1', 'dc2'], bandwidthMiBs: 60, postCopyAfterMs: 20_000, autoConverge: false },
  { tier: 'low', bandwidthMiBs: 5 },
];

describe('chooseMigrationPolicy', () => {
  it('within one site: the defaults and the request, no cross-site rule even when one would fit', () => {
    const c = chooseMigrationPolicy(base(RULES), move('dc1', 'dc1'), { bandwidthMiBs: 16 });
    expect(c.crossSite).toBeNull();
    expect(c.policy).toMatchObject({ bandwidthMiBs: 16, maxDowntimeMs: 100, compression: [] });
  });

  it('an unknown site counts as not crossing (no rule, the defaults)', () => {
    expect(chooseMigrationPolicy(base(RULES), move('dc1', null)).crossSite).toBeNull();
  });

  it.each([
    ['core, dc1 to dc2', move('dc1', 'dc2', 'core'), 0, { bandwidthMiBs: 40, maxDowntimeMs: 300 }],
    ['core, dc2 to dc1 (either direction)', move('dc2', 'dc1', 'core'), 0, { bandwidthMiBs: 40 }],
    [
      'frontend: the pair rule',
      move('dc1', 'dc2', 'frontend'),
      1,
      { bandwidthMiBs: 60, autoConverge: false },
    ],
    ['no tier: the pair rule', move('dc2', 'dc1', null), 1, { bandwidthMiBs: 60 }],
    ['low to a third site: the tier rule', move('dc1', 'dc3', 'low'), 2, { bandwidthMiBs: 5 }],
  ])('%s: the first rule that fits applies', (_, m, at, expected) => {
    const c = chooseMigrationPolicy(base(RULES), m);
    expect(c.crossSite).toEqual({
      fromSite: m.fromSite,
      toSite: m.toSite,
      rule: `migration.crossSite[${at}]`,
    });
    expect(c.policy).toMatchObject(expected);
  });

  it('keeps the defaults for every field the rule leaves out', () => {
    const p = chooseMigrationPolicy(base(RULES), move('dc1', 'dc2', 'core')).policy;
    expect(p).toMatchObject({
      autoConverge: true,
      postCopyAfterMs: 0,
      parallelConnections: 0,
      timeoutMs: 120_000,
    });
    expect(p.compression).toEqual(['xbzrle']);
  });

  it('a cross-site move no rule fits runs with the defaults, and says so (rule null)', () => {
    const c = chooseMigrationPolicy(base(RULES), move('dc2', 'dc3', 'frontend'));
    expect(c.crossSite).toEqual({ fromSite: 'dc2', toSite: 'dc3', rule: null });
    expect(c.policy.bandwidthMiBs).toBe(0);
  });

  it("the request's overrides win over the rule", () => {
    const c = chooseMigrationPolicy(base(RULES), move('dc1', 'dc2', 'core'), {
      bandwidthMiBs: 8,
      timeoutMs: 5_000,
    });
    expect(c.policy).toMatchObject({ bandwidthMiBs: 8, timeoutMs: 5_000, maxDowntimeMs: 300 });
    expect(c.crossSite?.rule).toBe('migration.crossSite[0]');
  });

  it('appliedSettings: what the job record shows', () => {
    expect(appliedSettings(chooseMigrationPolicy(base(RULES), move('dc1', 'dc2', 'core')))).toEqual({
      bandwidthMiBs: 40,
      compression: ['xbzrle'],
      parallelConnections: 0,
      maxDowntimeMs: 300,
      maxDowntimeSteps: [],
      autoConverge: true,
      postCopyAfterIterations: 0,
      postCopyAfterMs: 0,
      timeoutMs: 120_000,
      crossSite: { fromSite: 'dc1', toSite: 'dc2', rule: 'migration.crossSite[0]' },
    });
  });
});

describe('maxDowntimeAt', () => {
  const steps = [
    { afterIterations: 3, maxDowntimeMs: 100 },
    { afterIterations: 6, maxDowntimeMs: 300 },
  ];
  it('is the start until the first step, then the highest step reached', () => {
    expect(
      [1, 2, 3, 5, 6, 40].map((i) => maxDowntimeAt({ maxDowntimeMs: 50, maxDowntimeSteps: steps }, i)),
    ).toEqual([50, 50, 100, 100, 300, 300]);
  });
  it('never lowers a start above the steps (a request or a WAN rule that allows more)', () => {
    expect(maxDowntimeAt({ maxDowntimeMs: 200, maxDowntimeSteps: steps }, 4)).toBe(200);
    expect(maxDowntimeAt({ maxDowntimeMs: 200, maxDowntimeSteps: steps }, 6)).toBe(300);
    expect(maxDowntimeAt({ maxDowntimeMs: 50, maxDowntimeSteps: [] }, 99)).toBe(50);
  });
});
