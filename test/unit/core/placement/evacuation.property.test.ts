import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ClusterSnapshot, HostHealth } from '../../../../src/core/model.ts';
import { type EvacuationPlan, planEvacuation, type VmRules } from '../../../../src/core/placement/index.ts';
import { context, host, snap, vm } from './fixtures.ts';

// Random clusters: hosts with capacities, health and maintenance; VMs with sizes, states,
// priorities and anti-affinity / affinity groups. Whatever they are, an evacuation plan keeps
// every host within its capacity and every anti-affinity group apart, moves a VM at most once,
// and is the same plan for the same cluster listed in any order.

const ACTIVE = new Set(['running', 'paused']);
const healthArb = fc.oneof(
  { weight: 6, arbitrary: fc.constant<HostHealth>('up') },
  {
    weight: 1,
    arbitrary: fc.constantFrom<HostHealth>(
      'suspect',
      'unreachable',
      'partitioned',
      'down',
      'fenced',
      'unknown',
    ),
  },
);
const hostArb = fc.record({
  site: fc.constantFrom('dc1', 'dc2'),
  cpus: fc.integer({ min: 1, max: 8 }),
  // Sizes from small sets, so that ties (which the order must not decide) are common.
  memMiB: fc.constantFrom(256, 512, 1024, 2048),
  health: healthArb,
  maintenance: fc.integer({ min: 0, max: 4 }).map((x) => x === 0),
  util: fc.option(fc.constantFrom(0, 0.3, 0.9)),
});
const vmArb = (hosts: number) =>
  fc.record({
    host: fc.oneof({ weight: 2, arbitrary: fc.constant(0) }, { weight: 3, arbitrary: fc.nat(hosts - 1) }),
    memMiB: fc.constantFrom(64, 128, 256, 512),
    vcpus: fc.constantFrom(1, 2, 4),
    state: fc.constantFrom('running', 'running', 'running', 'paused', 'shutoff'),
    anti: fc.constantFrom(null, null, 'a', 'b'),
    affinity: fc.constantFrom(null, null, null, 'x', 'y'),
    priority: fc.integer({ min: 0, max: 3 }),
  });
const clusterArb = fc.integer({ min: 2, max: 8 }).chain((n) =>
  fc.record({
    hosts: fc.array(hostArb, { minLength: n, maxLength: n }),
    vms: fc.array(vmArb(n), { maxLength: 30 }),
    memoryFraction: fc.constantFrom(0.8, 1),
    cpuOvercommit: fc.constantFrom(1, 2, 4),
    anySite: fc.boolean(),
    shuffleSeed: fc.integer(),
  }),
);
type Cluster = typeof clusterArb extends fc.Arbitrary<infer T> ? T : never;

function build(k: Cluster, order: (xs: number[]) => number[] = (xs) => xs) {
  const hosts = k.hosts.map((h, i) =>
    host(`h${i}`, h.site, h.memMiB, {
      cpus: h.cpus,
      health: h.health,
      maintenance: h.maintenance,
      cpuUtilisation: h.util,
    }),
  );
  const vms = k.vms.map((v, i) => vm(`vm${i}`, `h${v.host}`, v.memMiB, { vcpus: v.vcpus, state: v.state }));
  const rules: Record<string, Partial<VmRules>> = {};
  const priority: Record<string, number> = {};
  k.vms.forEach((v, i) => {
    rules[`vm${i}`] = { antiAffinityGroup: v.anti, affinityGroup: v.affinity };
    priority[`vm${i}`] = v.priority;
  });
  const s = snap(
    order(hosts.map((_, i) => i)).map((i) => hosts[i]!),
    order(vms.map((_, i) => i)).map((i) => vms[i]!),
  );
  const ctx = context(rules, {
    memoryFraction: k.memoryFraction,
    cpuOvercommit: k.cpuOvercommit,
    haPriority: priority,
  });
  return { s, ctx, rules };
}

/** Fisher-Yates with a seeded LCG: the same seed gives the same order. */
const shuffler = (seed: number) => (xs: number[]) => {
  const out = [...xs];
  let a = seed >>> 0;
  for (let i = out.length - 1; i > 0; i--) {
    a = (Math.imul(a, 1664525) + 1013904223) >>> 0;
    const j = a % (i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
};

function checkInvariants(
  s: ClusterSnapshot,
  plan: EvacuationPlan,
  k: Cluster,
  rules: Record<string, Partial<VmRules>>,
) {
  const from = s.hosts.get('h0')!;
  const leaving = [...s.vms.values()].filter((v) => v.host === 'h0' && ACTIVE.has(v.state));
  const moved = plan.moves.map((m) => m.vm);
  expect(new Set(moved).size).toBe(moved.length);
  expect(moved.every((n) => leaving.some((v) => v.name === n))).toBe(true);
  expect(plan.ok).toBe(plan.refused.length === 0);
  if (from.health !== 'up') expect(plan.moves).toEqual([]);
  else if (plan.ok) expect(moved.sort()).toEqual(leaving.map((v) => v.name).sort());

  // Where every VM is once the moves are done.
  const at = new Map([...s.vms.values()].filter((v) => ACTIVE.has(v.state)).map((v) => [v.name, v.host]));
  for (const m of plan.moves) at.set(m.vm, m.to);
  for (const to of new Set(plan.moves.map((m) => m.to))) {
    const h = s.hosts.get(to)!;
    expect(to).not.toBe('h0');
    expect(h.health).toBe('up');
    expect(h.maintenance).toBe(false);
    if (!k.anySite) expect(h.site).toBe(from.site);
    const on = [...at].filter(([, host]) => host === to).map(([n]) => s.vms.get(n)!);
    expect(on.reduce((t, v) => t + v.memoryKiB, 0)).toBeLessThanOrEqual(h.memoryKiB * k.memoryFraction);
    expect(on.reduce((t, v) => t + v.vcpus, 0)).toBeLessThanOrEqual(h.cpus * k.cpuOvercommit);
    for (const m of plan.moves.filter((x) => x.to === to)) {
      const group = rules[m.vm]?.antiAffinityGroup;
      if (!group) continue;
      const clash = on.filter((v) => v.name !== m.vm && rules[v.name]?.antiAffinityGroup === group);
      expect(clash.map((v) => v.name)).toEqual([]);
    }
  }
}

describe('planEvacuation over random clusters', () => {
  it('keeps capacity and anti-affinity, moves a VM at most once, and plans all or nothing', () => {
    fc.assert(
      fc.property(clusterArb, (k) => {
        const { s, ctx, rules } = build(k);
        checkInvariants(s, planEvacuation(s, 'h0', ctx, { anySite: k.anySite }), k, rules);
      }),
      { numRuns: 300 },
    );
  });

  it('is deterministic: the same cluster twice, or listed in another order, gives the same plan', () => {
    fc.assert(
      fc.property(clusterArb, (k) => {
        const a = build(k);
        const again = build(k);
        const shuffled = build(k, shuffler(k.shuffleSeed));
        const plan = planEvacuation(a.s, 'h0', a.ctx, { anySite: k.anySite });
        expect(planEvacuation(again.s, 'h0', again.ctx, { anySite: k.anySite })).toEqual(plan);
        expect(planEvacuation(shuffled.s, 'h0', shuffled.ctx, { anySite: k.anySite })).toEqual(plan);
      }),
      { numRuns: 300 },
    );
  });
});
