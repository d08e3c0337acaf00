import { describe, expect, it } from 'vitest';
import { failoverHosts } from '../../../bench/scale-failover.ts';

describe("bench:scale's choice of hosts to power off", () => {
  it('spreads them over the four sites alike, each watched neighbour up', () => {
    const { failed, watchedUp } = failoverHosts(1000, 20);
    expect(new Set(failed).size).toBe(20);
    const perSite = [0, 1, 2, 3].map((s) => failed.filter((h) => h % 4 === s).length);
    expect(perSite).toEqual([5, 5, 5, 5]);
    expect(watchedUp.filter((h) => failed.includes(h) || h >= 1000)).toEqual([]);
    expect(failoverHosts(100, 20).failed.at(-1)! + 1).toBeLessThan(100);
  });
  it('refuses a cluster too small to keep every site with hosts up', () => {
    expect(() => failoverHosts(40, 20)).toThrow(/at least 100 hosts/);
  });
});
