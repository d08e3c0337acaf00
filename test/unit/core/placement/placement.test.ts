import { describe, expect, it } from 'vitest';
import type { ClusterSnapshot, HostSnapshot, VmSnapshot } from '../../../../src/core/model.ts';
import {
  migrationRefusals,
  type PlacementContext,
  planEvacuation,
  rankHosts,
} from '../../../../src/core/placement/index.ts';

const MiB = 1024;
const host = (name: string, site: string, memMiB: number, o: Partial<HostSnapshot> = {}): HostSnapshot => ({
  name,
  site,
  health: 'up',
  cpus: 2,
  memoryKiB: memMiB * MiB,
  cpuUtilisation: 0.1,
  memoryUsedKiB: null,
  maintenance: false,
  observedAt: 0,
  vms: [],
  ...o,
});
const vm = (name: string, h: string, memMiB = 100, o: Partial<VmSnapshot> = {}): VmSnapshot => ({
  name,
  uuid: name,
  host: h,
  state: 'running',
  vcpus: 1,
  memoryKiB: memMiB * MiB,
  cpuUsage: null,
  memoryUsedKiB: null,
  ...o,
});
const snap = (hosts: HostSnapshot[], vms: VmSnapshot[]): ClusterSnapshot => ({
  takenAt: 0,
  sites: [...new Set(hosts.map((h) => h.site))],
  hosts: new Map(hosts.map((h) => [h.name, h])),
  vms: new Map(vms.map((v) => [v.name, v])),
});
const groups: Record<string, { affinityGroup: string | null; antiAffinityGroup: string | null }> = {};
const ctx: PlacementContext & { haPriorityOf(vm: string): number } = {
  rulesOf: (n) => groups[n] ?? { affinityGroup: null, antiAffinityGroup: null },
  cpuOvercommit: 4,
  memoryFraction: 1,
  haPriorityOf: (n) => (n === 'db' ? 1000 : 0),
};

describe('migrationRefusals', () => {
  const s = snap(
    [
      host('h1', 'dc1', 1000),
      host('h2', 'dc1', 250),
      host('h3', 'dc2', 1000, { maintenance: true }),
      host('h4', 'dc1', 1000, { health: 'unreachable' }),
    ],
    [vm('a', 'h1', 200), vm('b', 'h2', 100), vm('off', 'h1', 100, { state: 'shutoff' })],
  );
  it('lets a running VM go where it fits', () => {
    expect(migrationRefusals(s, 'b', 'h1', ctx)).toEqual([]);
  });
  it('names memory, maintenance, health, the VM state and unknown names', () => {
    expect(migrationRefusals(s, 'a', 'h2', ctx)).toEqual([
      'host h2 has 150 MiB of guest memory free, a needs 200 MiB',
    ]);
    expect(migrationRefusals(s, 'a', 'h3', ctx)).toEqual(['host h3 is in maintenance']);
    expect(migrationRefusals(s, 'a', 'h4', ctx)).toEqual(['host h4 is unreachable']);
    expect(migrationRefusals(s, 'off', 'h2', ctx)).toEqual([
      'off is shutoff; only a running VM migrates live',
    ]);
    expect(migrationRefusals(s, 'a', 'h1', ctx)).toEqual(['a already runs on h1']);
    expect(migrationRefusals(s, 'zz', 'h1', ctx)).toEqual(['no VM named "zz"']);
    expect(migrationRefusals(s, 'a', 'h9', ctx)).toEqual(['no host named "h9"']);
  });
  it('counts vCPUs against the overcommit limit', () => {
    const big = snap(
      [host('h1', 'dc1', 10_000), host('h2', 'dc1', 10_000)],
      [vm('x', 'h1', 10, { vcpus: 8 }), vm('y', 'h2', 10, { vcpus: 1 })],
    );
    expect(migrationRefusals(big, 'x', 'h2', ctx)).toEqual([
      'host h2 would have 9 vCPUs committed on 2 CPUs (limit 8)',
    ]);
  });
  it('keeps anti-affinity groups apart and affinity groups together', () => {
    groups.w1 = { affinityGroup: null, antiAffinityGroup: 'web' };
    groups.w2 = { affinityGroup: null, antiAffinityGroup: 'web' };
    groups.b1 = { affinityGroup: 'batch', antiAffinityGroup: null };
    groups.b2 = { affinityGroup: 'batch', antiAffinityGroup: null };
    const g = snap(
      [host('h1', 'dc1', 1000), host('h2', 'dc1', 1000)],
      [vm('w1', 'h1'), vm('w2', 'h2'), vm('b1', 'h1'), vm('b2', 'h1')],
    );
    expect(migrationRefusals(g, 'w1', 'h2', ctx)).toEqual(['anti-affinity group "web": w2 already on h2']);
    expect(migrationRefusals(g, 'b1', 'h2', ctx)).toEqual(['affinity group "batch" runs on h1']);
  });
});

describe('planEvacuation', () => {
  it('places each VM on the best-scoring host given the moves before it, higher HA priority first, never onto another site', () => {
    const s = snap(
      [host('h1', 'dc1', 1000), host('h2', 'dc1', 400), host('h3', 'dc1', 400), host('h4', 'dc2', 10_000)],
      [vm('db', 'h1', 300), vm('w', 'h1', 100), vm('v', 'h1', 100), vm('u', 'h1', 100)],
    );
    const plan = planEvacuation(s, 'h1', ctx);
    // Evacuate profile: 0.5 memoryFree + 0.3 cpuFree + 0.1 cpuIdleMeasured (0.9) + 0.1 vmSpread
    // (mean 1 VM per host). db ties h2 and h3 (name decides); u then finds h3 emptier and
    // roomier; h2 is full (400 of 400 MiB) for v and w, which still score it above 0.
    // db -> h2: 0.5 * (1 - 300/400) + 0.3 * (1 - 1/8) + 0.09 + 0.1 * 1
    // u -> h3:  0.5 * (1 - 100/400) + 0.3 * (1 - 1/8) + 0.09 + 0.1 * 1
    // v -> h3:  0.5 * (1 - 200/400) + 0.3 * (1 - 2/8) + 0.09 + 0.1 / 2
    // w -> h3:  0.5 * (1 - 300/400) + 0.3 * (1 - 3/8) + 0.09 + 0.1 / 3 (h2: 0.365)
    expect(plan).toEqual({
      host: 'h1',
      ok: true,
      moves: [
        { vm: 'db', to: 'h2', score: expect.closeTo(0.5775, 2) },
        { vm: 'u', to: 'h3', score: expect.closeTo(0.8275, 2) },
        { vm: 'v', to: 'h3', score: expect.closeTo(0.615, 2) },
        { vm: 'w', to: 'h3', score: expect.closeTo(0.4358, 2) },
      ],
      refused: [],
      candidates: expect.any(Object),
    });
    // Each move's candidates are the verdicts it was chosen from: the chosen host first.
    expect(Object.keys(plan.candidates)).toEqual(['db', 'u', 'v', 'w']);
    for (const m of plan.moves)
      expect(plan.candidates[m.vm]![0]).toMatchObject({ host: m.to, feasible: true });
  });
  it('refuses to plan for a host that is not up: the VMs it runs are not known', () => {
    for (const health of ['unknown', 'unreachable', 'suspect', 'partitioned', 'down', 'fenced'] as const) {
      const s = snap([host('h1', 'dc1', 1000, { health }), host('h2', 'dc1', 1000)], [vm('a', 'h1')]);
      expect(planEvacuation(s, 'h1', ctx)).toEqual({
        host: 'h1',
        ok: false,
        moves: [],
        refused: [{ vm: '-', reasons: [`host h1 is ${health}: the VMs on it are not known`] }],
        candidates: {},
      });
    }
  });
  it('moves an affinity group off the host together, the first member leading', () => {
    groups.g1 = { affinityGroup: 'grp', antiAffinityGroup: null };
    groups.g2 = { affinityGroup: 'grp', antiAffinityGroup: null };
    const s = snap(
      [host('h1', 'dc1', 1000), host('h2', 'dc1', 1000), host('h3', 'dc1', 1000, { cpuUtilisation: 0 })],
      [vm('g1', 'h1'), vm('g2', 'h1'), vm('other', 'h3', 500)],
    );
    const plan = planEvacuation(s, 'h1', ctx);
    expect(plan.ok).toBe(true);
    // h2 is the better host for g1 (h3 has 500 MiB used); g2 follows g1 there.
    expect(plan.moves.map((m) => [m.vm, m.to])).toEqual([
      ['g1', 'h2'],
      ['g2', 'h2'],
    ]);
  });
  it('refuses the whole plan with every reason when one VM fits nowhere', () => {
    const s = snap(
      [host('h1', 'dc1', 1000), host('h2', 'dc1', 150), host('h3', 'dc2', 10_000)],
      [vm('a', 'h1', 100), vm('b', 'h1', 100)],
    );
    const plan = planEvacuation(s, 'h1', ctx);
    expect(plan.ok).toBe(false);
    expect(plan.refused).toEqual([
      { vm: 'b', reasons: ['h2: host h2 has 50 MiB of guest memory free, b needs 100 MiB'] },
    ]);
    expect(planEvacuation(s, 'h1', ctx, { anySite: true }).ok).toBe(true);
  });
  it('says so when the site has no other host', () => {
    const s = snap([host('h1', 'dc1', 1000), host('h3', 'dc2', 1000)], [vm('a', 'h1')]);
    expect(planEvacuation(s, 'h1', ctx).refused).toEqual([
      { vm: 'a', reasons: ['no other host in site dc1'] },
    ]);
  });
  it('ranks hosts feasible first and best first', () => {
    const s = snap(
      [host('h1', 'dc1', 1000), host('h2', 'dc1', 300), host('h3', 'dc1', 3000), host('h4', 'dc1', 50)],
      [vm('a', 'h1', 100)],
    );
    expect(rankHosts(s, s.vms.get('a')!, ctx).map((v) => [v.host, v.feasible])).toEqual([
      ['h3', true],
      ['h2', true],
      ['h4', false],
    ]);
  });
});
