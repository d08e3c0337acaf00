import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { formatConfigError, loadLimitsFile, loadTiersFile } from '../../../src/config/index.ts';

const FIXTURES = fileURLToPath(new URL('../../fixtures/config/', import.meta.url));
const shown = (name: string) => relative(process.cwd(), join(FIXTURES, name));

async function errorText(load: (file: string) => Promise<unknown>, name: string): Promise<string> {
  return load(shown(name)).then(
    () => 'loaded',
    (e: unknown) => formatConfigError(e),
  );
}

describe('shipped tiers.yaml', () => {
  it('holds the four BCP tiers with the figures measured in the studies', async () => {
    const { tiers } = await loadTiersFile();
    const byId = Object.fromEntries(tiers.map((t) => [t.id, t]));
    expect(Object.keys(byId)).toEqual(['low', 'frontend', 'frontend-seasonal', 'core']);
    expect(byId.low?.labelJa).toBe('事務支援系');
    expect(byId.core?.labelJa).toBe('基幹系');
    expect(byId.low?.mechanisms).toEqual(['resource-limits', 'failover']);
    expect(byId.frontend?.objectives.maxOutageMs).toEqual({ failover: 60_000, 'live-migration': 2_000 });
    expect(byId['frontend-seasonal']?.objectives.maxOutageMs.drs).toBe(2_000);
    expect(byId.core?.objectives.maxOutageMs).toMatchObject({
      'cross-site-live-migration': 30_000,
      'cross-site-failover': 70_000,
    });
    expect(byId.core?.minSites).toBe(2);
    expect(byId.core?.dataClass).toBe('a');
    expect(byId.low?.objectives.monthlyAvailabilityPercent).toBe(99.9);
    expect(byId.core?.objectives.monthlyAvailabilityPercent).toBe(99.99);
  });

  it('makes each tier a superset of the one before it', async () => {
    const { tiers } = await loadTiersFile();
    for (let i = 1; i < tiers.length; i++) {
      expect(tiers[i]?.mechanisms).toEqual(expect.arrayContaining([...(tiers[i - 1]?.mechanisms ?? [])]));
    }
  });

  it('holds the data classes ア..オ of the guideline', async () => {
    const { dataClasses } = await loadTiersFile();
    expect(Object.values(dataClasses).map((c) => c.labelJa)).toEqual(['ア', 'イ', 'ウ', 'エ', 'オ']);
    expect(dataClasses.a.rpoHours).toBe(0);
  });
});

describe('shipped limits.yaml', () => {
  it('holds the named profiles', async () => {
    const { profiles } = await loadLimitsFile();
    expect(Object.keys(profiles)).toEqual([
      'unlimited',
      'small',
      'standard',
      'capped-50',
      'noisy-neighbour-guard',
    ]);
    expect(profiles['capped-50']?.cpu).toEqual({ quotaPercent: 50 });
  });
});

describe('malformed tiers files', () => {
  it.each([
    [
      'missing-objectives',
      'tiers[0].objectives: required field is missing: expected a mapping with maxOutageMs, rtoSeconds and monthlyAvailabilityPercent',
    ],
    [
      'unknown-mechanism',
      'tiers[0].mechanisms[1]: expected one of "resource-limits", "failover", "live-migration", "drs", "cross-site-live-migration", "cross-site-failover" or "cross-site-drs", got "teleport"',
    ],
    [
      'outage-for-unused-mechanism',
      `tiers[0].objectives.maxOutageMs.live-migration: "live-migration" is not one of this tier's mechanisms (resource-limits, failover)`,
    ],
    ['duplicate-id', 'tiers[1].id: duplicate tier id "low" (also tiers[0])'],
    [
      'bad-availability',
      'tiers[0].objectives.monthlyAvailabilityPercent: expected a number > 0 and <= 100, got 199.9',
    ],
    [
      'missing-data-class',
      'dataClasses.e: required field is missing: expected a mapping with labelJa, rpo and rpoHours',
    ],
  ])('%s', async (name, line) => {
    const file = shown(`tiers/${name}.yaml`);
    expect(await errorText(loadTiersFile, `tiers/${name}.yaml`)).toBe(`${file}: ${line}`);
  });
});

describe('malformed limits files', () => {
  it.each([
    ['both-quotas', 'profiles.capped.cpu.quotaUs: set either quotaPercent or quotaUs, not both'],
    [
      'burst-without-cap',
      'profiles.burst.cpu.burstQuotaPercent: a burst allowance raises a cap: set quotaPercent (or quotaUs) too',
    ],
    [
      'burst-below-cap',
      'profiles.burst.cpu.burstQuotaPercent: must be above the cap it raises (quotaPercent, or quotaUs / periodUs)',
    ],
    ['bad-weight', 'profiles.heavy.disk.weight: expected an integer from 100 to 1000, got 5000'],
    ['soft-above-hard', 'profiles.mem.memory.softLimitMiB: must not be above hardLimitMiB'],
    ['peak-below-average', 'profiles.net.network.outbound.peakKiBs: must not be below averageKiBs'],
    [
      'bad-profile-name',
      'profiles["big one"]: invalid key: expected a name of letters, digits, ".", "_" or "-" (at most 63, starting with a letter or digit), got "big one"',
    ],
  ])('%s', async (name, line) => {
    const file = shown(`limits/${name}.yaml`);
    expect(await errorText(loadLimitsFile, `limits/${name}.yaml`)).toBe(`${file}: ${line}`);
  });
});
