import { describe, expect, it } from 'vitest';
import type { ClusterSnapshot, HostHealth } from '../../../../src/core/model.ts';
import { commitments, newPass } from '../../../../src/core/placement/context.ts';
import { Code, FILTERS, judgeHost, rankHosts } from '../../../../src/core/placement/index.ts';
import type { ProfileName } from '../../../../src/core/placement/profiles.ts';
import { context, host, snap, vm } from './fixtures.ts';

// h1 (dc1) runs a, w1 (anti-affinity "web") and b1, b2 (affinity "batch"); h2 (dc1) runs w2.
const rules = {
  w1: { antiAffinityGroup: 'web' },
  w2: { antiAffinityGroup: 'web' },
  w3: { antiAffinityGroup: 'web' },
  b1: { affinityGroup: 'batch' },
  b2: { affinityGroup: 'batch' },
  b3: { affinityGroup: 'batch' },
};
const ctx = context(rules);
const cluster = (o: { h2?: Parameters<typeof host>[3] } = {}): ClusterSnapshot =>
  snap(
    [host('h1', 'dc1', 1000), host('h2', 'dc1', 250, o.h2), host('h3', 'dc2', 1000, { cpus: 4 })],
    [
      vm('a', 'h1', 200),
      vm('w1', 'h1'),
      vm('b1', 'h1'),
      vm('b2', 'h1'),
      vm('w2', 'h2', 100),
      vm('w3', 'h3', 10, { state: 'shutoff' }),
      vm('b3', 'h3', 10, { state: 'shutoff' }),
      vm('fat', 'h3', 10, { vcpus: 8 }),
    ],
  );

const verdictOf = (
  name: string,
  s: ClusterSnapshot,
  vmName: string,
  to: string,
  sites?: string[],
  profile: ProfileName = 'migrate',
  c = ctx,
) =>
  FILTERS[name]!.filter(
    newPass(s, c, commitments(s), { sites }),
    s.vms.get(vmName)!,
    s.hosts.get(to)!,
    profile,
  );

describe('filter plugins', () => {
  const s = cluster();
  it.each([
    ['same-host', 'a', 'h1', Code.SameHost, 'a already runs on h1'],
    ['site', 'a', 'h3', Code.OtherSite, 'host h3 is in site dc2, not dc1'],
    [
      'capacity-memory',
      'a',
      'h2',
      Code.InsufficientMemory,
      'host h2 has 150 MiB of guest memory free, a needs 200 MiB',
    ],
    [
      'capacity-cpu',
      'fat',
      'h2',
      Code.InsufficientCpu,
      'host h2 would have 9 vCPUs committed on 2 CPUs (limit 8)',
    ],
    ['anti-affinity', 'w1', 'h2', Code.AntiAffinity, 'anti-affinity group "web": w2 already on h2'],
    ['affinity', 'b1', 'h2', Code.Affinity, 'affinity group "batch" runs on h1'],
  ])('%s rejects %s on %s with %s', (plugin, vmName, to, code, reason) => {
    const sites = plugin === 'site' ? ['dc1'] : undefined;
    expect(verdictOf(plugin, s, vmName, to, sites)).toEqual({ plugin, code, reason });
  });

  it.each([
    ['same-host', 'a', 'h2'],
    ['site', 'a', 'h2'],
    ['capacity-memory', 'w1', 'h2'],
    ['capacity-cpu', 'a', 'h2'],
    ['anti-affinity', 'w1', 'h3'], // w3 is there but shut off: only active VMs count
    ['anti-affinity', 'a', 'h2'], // a has no group
    ['affinity', 'b1', 'h1'], // its mates are there
    ['affinity', 'a', 'h2'], // a has no group
  ])('%s lets %s go to %s', (plugin, vmName, to) => {
    expect(verdictOf(plugin, s, vmName, to)).toBeNull();
  });

  it('binds a VM that is not active (a restart) to where its group runs', () => {
    expect(verdictOf('affinity', s, 'b3', 'h2')?.code).toBe(Code.Affinity);
    expect(verdictOf('affinity', s, 'b3', 'h1')).toBeNull();
  });

  it('a group alone on a host binds nothing once all other members are gone', () => {
    const alone = snap([host('h1', 'dc1', 1000), host('h2', 'dc1', 1000)], [vm('b1', 'h1')]);
    expect(verdictOf('affinity', alone, 'b1', 'h2')).toBeNull();
  });

  it.each(['suspect', 'unreachable', 'partitioned', 'down', 'fenced', 'unknown'] as HostHealth[])(
    'host-health rejects a host that is %s',
    (health) => {
      const t = cluster({ h2: { health } });
      expect(verdictOf('host-health', t, 'w1', 'h2')).toEqual({
        plugin: 'host-health',
        code: Code.HostNotUp,
        reason: `host h2 is ${health}`,
      });
    },
  );

  it('host-health lets an up host through; maintenance rejects a host in maintenance', () => {
    expect(verdictOf('host-health', s, 'w1', 'h2')).toBeNull();
    expect(verdictOf('maintenance', s, 'w1', 'h2')).toBeNull();
    expect(verdictOf('maintenance', cluster({ h2: { maintenance: true } }), 'w1', 'h2')).toEqual({
      plugin: 'maintenance',
      code: Code.HostInMaintenance,
      reason: 'host h2 is in maintenance',
    });
  });

  it('a verdict lists every filter that rejects, in order, with no scores', () => {
    const t = cluster({ h2: { health: 'down', maintenance: true } });
    const v = judgeHost(t, t.vms.get('a')!, t.hosts.get('h2')!, ctx);
    expect(v.rejectedBy.map((r) => r.code)).toEqual([
      Code.HostNotUp,
      Code.HostInMaintenance,
      Code.InsufficientMemory,
    ]);
    expect(v.reasons).toEqual(v.rejectedBy.map((r) => r.reason));
    expect(v).toMatchObject({ feasible: false, score: 0, scores: {} });
  });

  it('rankHosts lists the source host and other sites only when asked for every host', () => {
    const a = s.vms.get('a')!;
    expect(rankHosts(s, a, ctx, { sites: ['dc1'] }).map((v) => v.host)).toEqual(['h2']);
    const all = rankHosts(s, a, ctx, { sites: ['dc1'], everyHost: true });
    expect(Object.fromEntries(all.map((v) => [v.host, v.rejectedBy.map((r) => r.code)]))).toEqual({
      h1: [Code.SameHost],
      h2: [Code.InsufficientMemory],
      h3: [Code.OtherSite],
    });
  });

  describe('host-group (VM-host rules)', () => {
    // h1, h2, h3 in dc1; h2 has the most memory free. m must run on h1 or h3, p should run on h3.
    const groups = {
      m: { hostGroup: { name: 'left', hosts: ['h1', 'h3'], rule: 'must' as const } },
      p: { hostGroup: { name: 'east', hosts: ['h3'], rule: 'should' as const } },
      // n must not run on h2 or h3; q should not run on h2.
      n: { hostGroup: { name: 'right', hosts: ['h2', 'h3'], rule: 'must-not' as const } },
      q: { hostGroup: { name: 'big', hosts: ['h2'], rule: 'should-not' as const } },
    };
    const gctx = context(groups);
    const g = (h3: Parameters<typeof host>[3] = {}) =>
      snap(
        [host('h1', 'dc1', 1000), host('h2', 'dc1', 4000), host('h3', 'dc1', 1000, h3)],
        [vm('m', 'h1', 100), vm('p', 'h1', 100), vm('n', 'h1', 100), vm('q', 'h1', 100)],
      );

    it.each(['migrate', 'evacuate', 'drs', 'failover'] as ProfileName[])(
      'must keeps a VM on its group for %s',
      (profile) => {
        expect(verdictOf('host-group', g(), 'm', 'h2', undefined, profile, gctx)).toEqual({
          plugin: 'host-group',
          code: Code.HostGroup,
          reason: 'host h2 is not in host group "left" (must run on h1, h3)',
        });
        expect(verdictOf('host-group', g(), 'm', 'h3', undefined, profile, gctx)).toBeNull();
      },
    );

    it.each(['migrate', 'evacuate', 'drs', 'failover'] as ProfileName[])(
      'must-not keeps a VM off its group for %s',
      (profile) => {
        expect(verdictOf('host-group', g(), 'n', 'h2', undefined, profile, gctx)).toEqual({
          plugin: 'host-group',
          code: Code.HostGroup,
          reason: 'host h2 is in host group "right" (must not run on h2, h3)',
        });
        expect(verdictOf('host-group', g(), 'n', 'h3', undefined, profile, gctx)?.code).toBe(Code.HostGroup);
        expect(verdictOf('host-group', g(), 'n', 'h1', undefined, profile, gctx)).toBeNull();
      },
    );

    it('should-not: DRS never moves the VM onto its group, other moves rank the group last', () => {
      expect(verdictOf('host-group', g(), 'q', 'h2', undefined, 'drs', gctx)).toEqual({
        plugin: 'host-group',
        code: Code.HostGroup,
        reason: 'host h2 is in host group "big" (should not run on h2)',
      });
      expect(verdictOf('host-group', g(), 'q', 'h3', undefined, 'drs', gctx)).toBeNull();
      expect(verdictOf('host-group', g(), 'q', 'h2', undefined, 'evacuate', gctx)).toBeNull();
      // h2 scores higher (more memory free) but is in the group: h3 first.
      const ranked = rankHosts(g(), g().vms.get('q')!, gctx);
      expect(ranked.map((v) => [v.host, v.feasible])).toEqual([
        ['h3', true],
        ['h2', true],
      ]);
      expect(ranked[1]!.score).toBeGreaterThan(ranked[0]!.score);
      // h3 in maintenance: the VM may still go to h2 (only DRS keeps off it).
      expect(rankHosts(g({ maintenance: true }), g().vms.get('q')!, gctx)[0]!.host).toBe('h2');
    });

    it('should: DRS never moves the VM off its group, other moves rank the group first', () => {
      expect(verdictOf('host-group', g(), 'p', 'h2', undefined, 'drs', gctx)?.code).toBe(Code.HostGroup);
      expect(verdictOf('host-group', g(), 'p', 'h2', undefined, 'migrate', gctx)).toBeNull();
      // h2 scores higher (more memory free), h3 is in the group: h3 first.
      const ranked = rankHosts(g(), g().vms.get('p')!, gctx);
      expect(ranked.map((v) => [v.host, v.feasible])).toEqual([
        ['h3', true],
        ['h2', true],
      ]);
      expect(ranked[1]!.score).toBeGreaterThan(ranked[0]!.score);
      // The group's host in maintenance: the VM may still go elsewhere.
      expect(rankHosts(g({ maintenance: true }), g().vms.get('p')!, gctx)[0]!.host).toBe('h2');
      // A VM without a group ranks by score alone.
      expect(rankHosts(g(), g().vms.get('m')!, ctx)[0]!.host).toBe('h2');
    });
  });
});
