import { describe, expect, it } from 'vitest';
import type { HostObservation } from '../../../src/core/model.ts';
import { buildSnapshot } from '../../../src/core/snapshot.ts';

const hosts = [
  { name: 'h1', site: 'dc1' },
  { name: 'h2', site: 'dc1' },
  { name: 'h3', site: 'dc2', capacity: { cpus: 8, memoryMiB: 4096 } },
];

function obs(
  host: string,
  at: number,
  cpu: { busy: number; idle: number },
  domains: HostObservation['domains'] = [],
): HostObservation {
  return {
    host,
    observedAt: at,
    reachable: true,
    cpus: 2,
    memoryKiB: 1_000_000,
    cpuTimes: { user: cpu.busy, kernel: 0, idle: cpu.idle, iowait: 0 },
    memory: { total: 1_000_000, free: 400_000, buffers: 50_000, cached: 150_000 },
    domains,
  };
}

const dom = (name: string, state: string, cpuTimeNs: number) => ({
  name,
  uuid: `uuid-${name}`,
  state,
  stats: {
    'cpu.time': cpuTimeNs,
    'vcpu.current': 1,
    'balloon.maximum': 98_304,
    'balloon.available': 90_000,
    'balloon.unused': 60_000,
  },
});

describe('buildSnapshot', () => {
  it('computes host utilisation and VM CPU usage from two observations', () => {
    const previous = new Map([['h1', obs('h1', 1_000, { busy: 0, idle: 0 }, [dom('a', 'running', 0)])]]);
    // 1 s later: 0.5 s busy of 2 s CPU time in all; the VM used 0.25 s of CPU.
    const current = new Map([
      ['h1', obs('h1', 2_000, { busy: 5e8, idle: 1.5e9 }, [dom('a', 'running', 2.5e8)])],
    ]);
    const s = buildSnapshot({
      now: 2_000,
      sites: ['dc1', 'dc2'],
      hosts,
      maintenance: new Set(['h2']),
      current,
      previous,
    });
    const h1 = s.hosts.get('h1')!;
    expect(h1).toMatchObject({
      health: 'up',
      cpus: 2,
      cpuUtilisation: 0.25,
      memoryUsedKiB: 400_000,
      vms: ['a'],
      maintenance: false,
    });
    expect(s.vms.get('a')).toMatchObject({
      host: 'h1',
      cpuUsage: 0.25,
      memoryKiB: 98_304,
      memoryUsedKiB: 30_000,
    });
    expect(s.hosts.get('h2')).toMatchObject({ health: 'unknown', maintenance: true, cpuUtilisation: null });
    expect(s.hosts.get('h3')).toMatchObject({ cpus: 8, memoryKiB: 4096 * 1024 });
  });

  it('places a VM seen on two hosts where it runs, and marks an unreachable host', () => {
    const current = new Map<string, HostObservation>([
      ['h1', obs('h1', 1, { busy: 0, idle: 1 }, [dom('a', 'shutoff', 0)])],
      ['h2', obs('h2', 1, { busy: 0, idle: 1 }, [dom('a', 'running', 0)])],
      ['h3', { host: 'h3', observedAt: 1, reachable: false }],
    ]);
    const s = buildSnapshot({
      now: 1,
      sites: ['dc1', 'dc2'],
      hosts,
      maintenance: new Set(),
      current,
      previous: new Map(),
    });
    expect(s.vms.get('a')).toMatchObject({ host: 'h2', state: 'running', cpuUsage: null });
    expect(s.hosts.get('h1')!.vms).toEqual([]);
    expect(s.hosts.get('h2')!.vms).toEqual(['a']);
    expect(s.hosts.get('h3')!.health).toBe('unreachable');
  });
});

describe('buildSnapshot: health, copies on several hosts, conflicts (F2, F17)', () => {
  const two = [
    { name: 'A', site: 'dc1' },
    { name: 'B', site: 'dc1' },
  ];
  const build = (
    current: [string, HostObservation][],
    o: Partial<Parameters<typeof buildSnapshot>[0]> = {},
  ) =>
    buildSnapshot({
      now: 10_000,
      sites: ['dc1'],
      hosts: two,
      maintenance: new Set(),
      current: new Map(current),
      previous: new Map(),
      ...o,
    });
  const at = (host: string, domains: HostObservation['domains']) =>
    obs(host, 9_000, { busy: 0, idle: 1 }, domains);

  it('F2b: a paused copy on A wins over a shut-off copy on B (B later in the config)', () => {
    const s = build([
      ['A', at('A', [dom('vm1', 'paused', 0)])],
      ['B', at('B', [dom('vm1', 'shutoff', 0)])],
    ]);
    expect(s.vms.get('vm1')).toMatchObject({ host: 'A', state: 'paused' });
    expect(s.hosts.get('A')!.vms).toEqual(['vm1']);
    expect(s.hosts.get('B')!.vms).toEqual([]);
    expect(s.conflicts).toEqual([]);
  });

  it('merges running over blocked and pmsuspended over shutoff and crashed, whatever the host order', () => {
    for (const [a, b, want] of [
      ['running', 'blocked', 'running'],
      ['blocked', 'running', 'running'],
      ['shutoff', 'pmsuspended', 'pmsuspended'],
      ['crashed', 'paused', 'paused'],
    ] as const) {
      const s = build([
        ['A', at('A', [dom('vm1', a, 0)])],
        ['B', at('B', [dom('vm1', b, 0)])],
      ]);
      expect(s.vms.get('vm1')!.state, `${a} on A, ${b} on B`).toBe(want);
    }
  });

  it('F2a: a VM running on a host that is not up is in its lastKnownVms, not placed on the shut-off copy as if alone', () => {
    const previous = new Map([['A', at('A', [dom('vm1', 'running', 0), dom('vm2', 'shutoff', 0)])]]);
    const s = build(
      [
        ['A', { host: 'A', observedAt: 9_500, reachable: false }],
        ['B', at('B', [dom('vm1', 'shutoff', 0)])],
      ],
      { previous },
    );
    const a = s.hosts.get('A')!;
    expect(a).toMatchObject({
      health: 'unreachable',
      vms: [],
      lastKnownVms: ['vm1', 'vm2'],
      observedAt: 9_000,
    });
    // The live copy on B is what the snapshot can see; lastKnownVms tells it vm1 may run on A.
    expect(s.vms.get('vm1')).toMatchObject({ host: 'B', state: 'shutoff' });
    expect(s.vms.has('vm2')).toBe(false);
    expect(s.hosts.get('B')!.lastKnownVms).toBeUndefined();
  });

  it('lists a VM active on two hosts as a conflict, placed by state then host name', () => {
    const s = build([
      ['A', at('A', [dom('vm1', 'paused', 0), dom('vm2', 'running', 0)])],
      ['B', at('B', [dom('vm1', 'running', 0), dom('vm2', 'running', 0), dom('vm3', 'running', 0)])],
    ]);
    expect(s.conflicts).toEqual([
      {
        vm: 'vm1',
        copies: [
          { host: 'A', state: 'paused' },
          { host: 'B', state: 'running' },
        ],
      },
      {
        vm: 'vm2',
        copies: [
          { host: 'A', state: 'running' },
          { host: 'B', state: 'running' },
        ],
      },
    ]);
    expect(s.vms.get('vm1')!.host).toBe('B');
    expect(s.vms.get('vm2')!.host).toBe('A');
    expect(s.hosts.get('A')!.vms).toEqual(['vm2']);
    expect(s.hosts.get('B')!.vms).toEqual(['vm1', 'vm3']);
  });

  it('marks the conflict of a move in its switch-over as a migration', () => {
    const s = build([
      ['A', at('A', [dom('vm1', 'running', 0)])],
      ['B', at('B', [{ ...dom('vm1', 'paused', 0), migrating: true }])],
    ]);
    expect(s.conflicts).toEqual([
      {
        vm: 'vm1',
        copies: [
          { host: 'A', state: 'running' },
          { host: 'B', state: 'paused' },
        ],
        migration: true,
      },
    ]);
  });

  it('F17: a host whose reads hang while its link stays open is suspect, its old VMs only last known', () => {
    const hung = at('A', [dom('vm1', 'running', 0)]); // read at 9 000, still the current one
    const s = build(
      [
        ['A', hung],
        ['B', at('B', [])],
      ],
      {
        now: 50_000,
        health: new Map([
          ['A', { connected: true, connectedAt: 0, lastSuccessAt: 9_000, lastAttemptAt: 49_000 }],
          ['B', { connected: true, connectedAt: 0, lastSuccessAt: 49_000, lastAttemptAt: 49_000 }],
        ]),
        thresholds: { suspectAfterMs: 30_000, icmpFreshMs: 6_000 },
        revision: 7,
      },
    );
    const a = s.hosts.get('A')!;
    expect(a).toMatchObject({
      health: 'suspect',
      healthSince: 50_000,
      evidence: { connected: true, lastCallAgeMs: 41_000, icmp: null },
      vms: [],
      lastKnownVms: ['vm1'],
      cpuUtilisation: null,
      memoryUsedKiB: null,
    });
    expect(s.vms.has('vm1')).toBe(false);
    expect(s.hosts.get('B')!.health).toBe('up');
    expect(s.revision).toBe(7);
  });

  it('keeps healthSince from the previous judgement while the health stays', () => {
    const s = build([['A', at('A', [])]], {
      health: new Map([
        [
          'A',
          {
            connected: true,
            lastSuccessAt: 9_000,
            lastAttemptAt: 9_000,
            previous: { health: 'up', since: 1_234 },
          },
        ],
      ]),
    });
    expect(s.hosts.get('A')).toMatchObject({ health: 'up', healthSince: 1_234 });
    expect(s.hosts.get('B')).toMatchObject({ health: 'unknown', healthSince: null, lastKnownVms: [] });
  });
});
