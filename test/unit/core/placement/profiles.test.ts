import { describe, expect, it } from 'vitest';
import { type ProfileName, planEvacuation, rankHosts } from '../../../../src/core/placement/index.ts';
import { context, host, snap, vm } from './fixtures.ts';

const ctx = context();
const best = (s: ReturnType<typeof snap>, profile?: ProfileName) =>
  rankHosts(s, s.vms.get('v')!, ctx, profile ? { profile } : {})[0]!.host;

describe('profiles', () => {
  // crowded: big, idle, lots of CPU, but six VMs already; empty: smaller, busy, no VMs.
  const crowd = Array.from({ length: 6 }, (_, i) => vm(`c${i}`, 'crowded'));
  const s = snap(
    [
      host('h0', 'dc1', 1000),
      host('crowded', 'dc1', 2000, { cpus: 8, cpuUtilisation: 0 }),
      host('empty', 'dc1', 1000, { cpus: 2, cpuUtilisation: 0.9 }),
    ],
    [vm('v', 'h0'), ...crowd],
  );

  it('migrate (the default) takes the host with the most free resources; failover spreads', () => {
    expect(best(s)).toBe('crowded');
    expect(best(s, 'migrate')).toBe('crowded');
    expect(best(s, 'failover')).toBe('empty');
    // Failover does not look at measured load at all.
    const [f] = rankHosts(s, s.vms.get('v')!, ctx, { profile: 'failover' });
    expect(Object.keys(f!.scores).sort()).toEqual(['cpuFree', 'memoryFree', 'vmSpread']);
  });

  it('drs prefers the measurably idle host where migrate takes the roomier busy one', () => {
    const t = snap(
      [
        host('h0', 'dc1', 1000),
        host('roomy', 'dc1', 4000, { cpuUtilisation: 0.6 }),
        host('idle', 'dc1', 300, { cpuUtilisation: 0 }),
      ],
      [vm('v', 'h0')],
    );
    expect(best(t, 'migrate')).toBe('roomy');
    expect(best(t, 'drs')).toBe('idle');
  });

  it('an evacuation ranks by the evacuate profile unless told otherwise', () => {
    const plan = planEvacuation(s, 'h0', ctx);
    const asMigrate = planEvacuation(s, 'h0', ctx, { profile: 'migrate' });
    const asFailover = planEvacuation(s, 'h0', ctx, { profile: 'failover' });
    // Evacuate trades measured idle CPU for spreading: here that tips it to the empty host.
    expect(plan.moves.map((m) => m.to)).toEqual(['empty']);
    expect(asMigrate.moves.map((m) => m.to)).toEqual(['crowded']);
    expect(asFailover.moves.map((m) => m.to)).toEqual(['empty']);
  });
});
