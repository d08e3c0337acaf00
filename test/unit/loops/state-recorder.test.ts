import { describe, expect, it, vi } from 'vitest';
import type { ClusterSnapshot, VmSnapshot } from '../../../src/core/model.ts';
import { bookRefresher, StateRecorder } from '../../../src/loops/state-recorder.ts';
import type { DesiredVm } from '../../../src/store/store.ts';

const vm = (name: string, host: string, state = 'running'): VmSnapshot => ({
  name,
  uuid: `uuid-${name}`,
  host,
  state,
  vcpus: 1,
  memoryKiB: 1024,
  cpuUsage: null,
  memoryUsedKiB: null,
});

const snap = (...vms: VmSnapshot[]): ClusterSnapshot => ({
  takenAt: 0,
  sites: ['dc1'],
  hosts: new Map(),
  vms: new Map(vms.map((v) => [v.name, v])),
});

/** The two Store calls the recorder makes, in memory: a placement is new when its host changed. */
function fakeStore() {
  const placements = new Map<string, { host: string; since: number }>();
  const desired = new Map<string, DesiredVm>();
  const writes: string[] = [];
  /** Every call, whether it changed anything or not. */
  const calls: string[] = [];
  return {
    placements,
    desired,
    writes,
    calls,
    failing: false,
    async recordPlacement(name: string, host: string, at: number) {
      calls.push(`placement ${name}`);
      if (this.failing) throw new Error('redis is down');
      if (placements.get(name)?.host === host) return false;
      placements.set(name, { host, since: at });
      writes.push(`placement ${name}`);
      return true;
    },
    async putDesired(name: string, d: DesiredVm) {
      calls.push(`desired ${name}`);
      desired.set(name, d);
      writes.push(`desired ${name}`);
    },
  };
}

describe('StateRecorder', () => {
  it('records where each running VM is and its desired state, once per move, on the leader only', async () => {
    const store = fakeStore();
    let cluster = snap(vm('web1', 'h1'), vm('db1', 'h2'), vm('old1', 'h1', 'shutoff'));
    const log = { info: vi.fn() };
    const r = new StateRecorder({
      snapshot: () => cluster,
      policyOf: (name) =>
        name === 'web1'
          ? {
              tier: 'frontend',
              limits: 'small',
              haPriority: 500,
              homeSite: 'dc1',
              recoverySite: null,
              source: 'config',
            }
          : null,
      store,
      intervalMs: 5_000,
      log,
    });
    expect(r).toMatchObject({ name: 'state-recorder', leaderOnly: true, intervalMs: 5_000 });

    await expect(r.pass(1_000)).resolves.toEqual({ result: 'success' });
    expect(Object.fromEntries(store.placements)).toEqual({
      web1: { host: 'h1', since: 1_000 },
      db1: { host: 'h2', since: 1_000 },
    });
    expect(Object.fromEntries(store.desired)).toEqual({
      web1: { tier: 'frontend', limits: 'small', homeSite: 'dc1', haPriority: 500 },
    });
    // The VMs this leader had not recorded yet: one line, not one per VM.
    expect(log.info).toHaveBeenCalledTimes(1);
    expect(log.info).toHaveBeenLastCalledWith(
      { vms: 2 },
      'placements recorded (VMs not recorded before by this leader)',
    );
    // A reader that finds the placement finds the desired state too.
    expect(store.writes.indexOf('desired web1')).toBeLessThan(store.writes.indexOf('placement web1'));

    await r.pass(2_000);
    expect(log.info).toHaveBeenCalledTimes(1);

    cluster = snap(vm('web1', 'h2'), vm('db1', 'h2'));
    await r.pass(3_000);
    expect(store.placements.get('web1')).toEqual({ host: 'h2', since: 3_000 });
    expect(store.placements.get('db1')).toEqual({ host: 'h2', since: 1_000 });
    expect(log.info).toHaveBeenLastCalledWith({ vm: 'web1', host: 'h2' }, 'placement recorded');

    store.failing = true;
    cluster = snap(vm('web1', 'h1'), vm('db1', 'h2'));
    await expect(r.pass(4_000)).rejects.toThrow('redis is down');
  });

  it('writes only what changed since it last wrote it, everything again every refreshMs, and all again under a new lease', async () => {
    const store = fakeStore();
    const cluster = snap(vm('web1', 'h1'), vm('db1', 'h2'));
    let tier = 'frontend';
    let token = 1;
    const r = new StateRecorder({
      snapshot: () => cluster,
      policyOf: (name) =>
        name === 'web1'
          ? { tier, limits: 'small', haPriority: 500, homeSite: 'dc1', recoverySite: null, source: 'config' }
          : null,
      store,
      intervalMs: 5_000,
      refreshMs: 30_000,
      epoch: () => token,
      log: { info: () => undefined },
    });
    const calls = async (now: number) => {
      store.calls.length = 0;
      await r.pass(now);
      return [...store.calls].sort();
    };
    expect(await calls(0)).toEqual(['desired web1', 'placement db1', 'placement web1']);
    expect(await calls(5_000)).toEqual([]);
    tier = 'backend'; // web1's desired state changed: web1 only
    expect(await calls(10_000)).toEqual(['desired web1', 'placement web1']);
    expect(store.desired.get('web1')?.tier).toBe('backend');
    // Each again once refreshMs has gone by since it was written.
    expect(await calls(30_000)).toEqual(['placement db1']);
    expect(await calls(40_000)).toEqual(['desired web1', 'placement web1']);
    expect(await calls(41_000)).toEqual([]);
    // Another leader may have written in between: under a new token everything again.
    token = 2;
    expect(await calls(42_000)).toEqual(['desired web1', 'placement db1', 'placement web1']);
  });
});

describe('bookRefresher', () => {
  it('refreshes every book on every replica; partial when one fails, an error when all do', async () => {
    const ok = { refresh: vi.fn(async () => undefined) };
    const broken = { refresh: vi.fn(async () => Promise.reject(new Error('no redis'))) };
    const both = bookRefresher([ok, broken], 5_000);
    expect(both).toMatchObject({ name: 'books', leaderOnly: false, intervalMs: 5_000 });
    await expect(both.pass(0)).resolves.toEqual({ result: 'partial' });
    expect(ok.refresh).toHaveBeenCalledTimes(1);
    expect(broken.refresh).toHaveBeenCalledTimes(1);
    await expect(bookRefresher([ok], 5_000).pass(0)).resolves.toEqual({ result: 'success' });
    await expect(bookRefresher([broken, broken], 5_000).pass(0)).rejects.toThrow('no redis');
  });
});
