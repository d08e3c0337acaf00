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
  return {
    placements,
    desired,
    writes,
    failing: false,
    async recordPlacement(name: string, host: string, at: number) {
      if (this.failing) throw new Error('redis is down');
      if (placements.get(name)?.host === host) return false;
      placements.set(name, { host, since: at });
      writes.push(`placement ${name}`);
      return true;
    },
    async putDesired(name: string, d: DesiredVm) {
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
          ? { tier: 'frontend', limits: 'small', haPriority: 500, homeSite: 'dc1', source: 'config' }
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
    expect(log.info).toHaveBeenCalledTimes(2);
    // A reader that finds the placement finds the desired state too.
    expect(store.writes.slice(0, 2)).toEqual(['desired web1', 'placement web1']);

    await r.pass(2_000);
    expect(log.info).toHaveBeenCalledTimes(2);

    cluster = snap(vm('web1', 'h2'), vm('db1', 'h2'));
    await r.pass(3_000);
    expect(store.placements.get('web1')).toEqual({ host: 'h2', since: 3_000 });
    expect(store.placements.get('db1')).toEqual({ host: 'h2', since: 1_000 });
    expect(log.info).toHaveBeenLastCalledWith({ vm: 'web1', host: 'h2' }, 'placement recorded');

    store.failing = true;
    await expect(r.pass(4_000)).rejects.toThrow('redis is down');
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
