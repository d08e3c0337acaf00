import { describe, expect, it } from 'vitest';
import { commitments, newPass } from '../../../../src/core/placement/context.ts';
import { PROFILES, rankHosts, SCORERS, type ScorerName } from '../../../../src/core/placement/index.ts';
import { context, host, snap, vm } from './fixtures.ts';

// h1 runs nothing; h2 runs 3 VMs (600 MiB, 3 vCPUs); h3 is not measured yet; 4 VMs on 4 hosts.
const s = snap(
  [
    host('h1', 'dc1', 1000, { cpuUtilisation: 0.25 }),
    host('h2', 'dc1', 1000, { cpuUtilisation: 0.75 }),
    host('h3', 'dc1', 1000, { cpuUtilisation: null }),
    host('h4', 'dc1', 0, { cpus: 0 }),
  ],
  [
    vm('x', 'h2', 200),
    vm('y', 'h2', 200, { vcpus: 2 }),
    vm('z', 'h2', 200),
    vm('new', 'h3', 400, { vcpus: 2 }),
  ],
);
const ctx = context({}, { memoryFraction: 0.5, cpuOvercommit: 2 });
const pass = () => newPass(s, ctx, commitments(s));
const score = (name: ScorerName, to: string, vmName = 'new') =>
  SCORERS[name].score(pass(), s.vms.get(vmName)!, s.hosts.get(to)!);

describe('score plugins', () => {
  it.each([
    // 500 MiB of guest memory (fraction 0.5); after the 400 MiB VM: 1 - 400/500 and 1 - 1000/500 -> 0.
    ['memoryFree', 'h1', 0.2],
    ['memoryFree', 'h2', 0],
    ['memoryFree', 'h4', 0], // no capacity at all
    // 4 vCPUs allowed (2 CPUs x 2); after the 2-vCPU VM: 1 - 2/4 and 1 - 6/4 -> 0.
    ['cpuFree', 'h1', 0.5],
    ['cpuFree', 'h2', 0],
    ['cpuFree', 'h4', 0],
    ['cpuIdleMeasured', 'h1', 0.75],
    ['cpuIdleMeasured', 'h2', 0.25],
    ['cpuIdleMeasured', 'h3', 0.5], // not measured yet: the middle
    // mean 1 VM per host: 1/(1 + n/1).
    ['vmSpread', 'h1', 1],
    ['vmSpread', 'h2', 0.25],
    ['vmSpread', 'h3', 0.5],
  ] as [ScorerName, string, number][])('%s of %s is %d', (name, to, expected) => {
    expect(score(name, to)).toBeCloseTo(expected, 10);
  });

  it('a verdict carries the profile scorers and their weighted sum', () => {
    const [best] = rankHosts(s, s.vms.get('new')!, ctx);
    expect(best!.host).toBe('h1');
    expect(best!.scores).toEqual({
      memoryFree: expect.closeTo(0.2, 10),
      cpuFree: expect.closeTo(0.5, 10),
      cpuIdleMeasured: expect.closeTo(0.75, 10),
    });
    expect(best!.score).toBeCloseTo(0.5 * 0.2 + 0.3 * 0.5 + 0.2 * 0.75, 10);
  });

  it('every profile weighs scorers that exist, and its weights sum to 1', () => {
    for (const weights of Object.values(PROFILES)) {
      expect(weights.every(([n]) => n in SCORERS)).toBe(true);
      expect(weights.reduce((t, [, w]) => t + w, 0)).toBeCloseTo(1, 10);
    }
  });
});
