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
