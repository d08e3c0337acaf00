import { describe, expect, it } from 'vitest';
import {
  type Clock,
  type HostFailureDeps,
  runHostFailure,
  type VmHold,
} from '../../../src/drills/host-failure.ts';
import type { LibvirtClient } from '../../../src/libvirt/client.ts';
import { LibvirtError } from '../../../src/libvirt/errors.ts';
import type { FenceRecord } from '../../../src/store/fences.ts';
import { FO_ID, failoverFixture } from '../api/failover-fixture.ts';

/**
 * The host-failure drill against fake hosts: each host has domains with a state and an XML, is
 * connected or not, and the fake clock runs `at` hooks when time passes (a migration in the
 * middle of the drill's wait, a host that reconnects late). A fake failover restarts the VM on
 * h2 a while after the fence is recorded, once the VM's lock is free, as the HA loop's
 * restart job would.
 */
interface Dom {
  state: string;
  xml: string;
}

class World {
  readonly hosts = new Map<string, { doms: Map<string, Dom>; connected: boolean; autostart: boolean }>();
  readonly log: string[] = [];
  now = 1_000_000;
  private hooks: { at: number; run: () => void }[] = [];
  /** ms after power-on that the host's connection comes back (null: never). */
  reconnectAfterMs: number | null = 2_000;
  restartedAt: number | null = null;

  constructor() {
    for (const h of ['h1', 'h2', 'h3'])
      this.hosts.set(h, { doms: new Map(), connected: true, autostart: false });
    this.hosts
      .get('h1')!
      .doms.set('vm1', { state: 'running', xml: '<domain><name>vm1</name><memory>1</memory></domain>' });
  }

  at(ms: number, run: () => void): void {
    this.hooks.push({ at: this.now + ms, run });
  }

  readonly clock: Clock = {
    now: () => this.now,
    sleep: async (ms) => {
      this.now += ms;
      for (const h of this.hooks.filter((x) => x.at <= this.now)) h.run();
      this.hooks = this.hooks.filter((x) => x.at > this.now);
    },
  };

  client(name: string): LibvirtClient {
    const h = this.hosts.get(name)!;
    const dom = (n: string) => {
      const d = h.doms.get(n);
      if (!d) throw new LibvirtError({ code: 42, domain: 10, message: `no domain ${n}`, level: 2 });
      return { name: n, uuid: Buffer.alloc(16), id: 1 };
    };
    const live = <T>(f: () => T): Promise<T> => {
      if (!h.connected) return Promise.reject(new Error('not connected'));
      return Promise.resolve().then(f);
    };
    return {
      lookupByName: (n: string) => live(() => dom(n)),
      getState: (d: { name: string }) => live(() => ({ state: h.doms.get(d.name)!.state, reason: 0 })),
      defineXml: (xml: string) =>
        live(() => {
          const n = /<name>([^<]+)<\/name>/.exec(xml)![1]!;
          h.doms.set(n, { state: 'shutoff', xml });
          this.log.push(`define ${name} ${xml}`);
          return { name: n, uuid: Buffer.alloc(16), id: 1 };
        }),
      start: (d: { name: string }) =>
        live(() => {
          h.doms.get(d.name)!.state = 'running';
          this.log.push(`start ${name}`);
        }),
      destroy: (d: { name: string }) =>
        live(() => {
          h.doms.get(d.name)!.state = 'shutoff';
          this.log.push(`destroy ${name}`);
        }),
      undefine: (d: { name: string }) =>
        live(() => {
          if (h.doms.get(d.name)!.state !== 'shutoff')
            throw new Error('cannot undefine a running domain here');
          h.doms.delete(d.name);
          this.log.push(`undefine ${name}`);
        }),
    } as unknown as LibvirtClient;
  }

  /** Moves the VM as a migration would. */
  migrate(vm: string, from: string, to: string): void {
    const d = this.hosts.get(from)!.doms.get(vm)!;
    this.hosts.get(from)!.doms.delete(vm);
    this.hosts.get(to)!.doms.set(vm, { ...d });
    this.log.push(`migrated ${from} -> ${to}`);
  }

  /** Who holds the VM's job lock (the drill's hold, or null). */
  lockHolder: string | null = null;
  fences: FenceRecord[] = [];
  /** The fake failover: how long after a recorded fence it restarts the VM, where (null: never). */
  failover: { afterMs: number; on: string } | null = { afterMs: 2_000, on: 'h2' };

  /** The failover's restart job: it needs the VM's lock, so a held lock makes it retry. */
  private restartByFailover(vm: string): void {
    if (!this.failover) return;
    const { afterMs, on } = this.failover;
    this.at(afterMs, () => {
      if (this.lockHolder !== null) {
        this.log.push(`failover refused: lock held by ${this.lockHolder}`);
        this.restartByFailover(vm);
        return;
      }
      const old = [...this.hosts.values()].find((h) => h.doms.has(vm))!.doms.get(vm)!;
      this.hosts.get(on)!.doms.set(vm, { state: 'running', xml: old.xml });
      this.restartedAt = this.now;
      this.log.push(`failover restart ${on}`);
    });
  }

  deps(
    o: {
      hold?: VmHold;
      audit?: (action: string) => void;
      refusal?: string;
      recordFence?: () => Promise<void>;
    } = {},
  ): HostFailureDeps & { holds: string[] } {
    const holds: string[] = [];
    return {
      holds,
      clientFor: (h) => (this.hosts.get(h)?.connected ? this.client(h) : null),
      fencer: {
        canCycle: () => null,
        fence: async (host) => {
          this.log.push(`fence ${host}`);
          const h = this.hosts.get(host)!;
          h.connected = false;
          for (const d of h.doms.values()) d.state = 'shutoff';
          return {
            host,
            method: 'lab',
            ok: true,
            confirmedOff: true,
            startedAt: this.now,
            endedAt: this.now,
            evidence: `lab 0 fence ${host} exited 0`,
          };
        },
        powerOn: async (host) => {
          this.log.push(`powerOn ${host}`);
          const h = this.hosts.get(host)!;
          if (h.autostart) for (const d of h.doms.values()) d.state = 'running';
          if (this.reconnectAfterMs !== null)
            this.at(this.reconnectAfterMs, () => {
              h.connected = true;
            });
        },
      },
      recordFence: async (r) => {
        await o.recordFence?.();
        this.fences.push(r);
        this.log.push(`recordFence ${r.host} ${r.ref}`);
        this.restartByFailover(REQ.vm);
      },
      failoverRefusal: async () => o.refusal ?? null,
      // The inventory: a VM on a connected host.
      locate: (vm) => {
        for (const [name, h] of this.hosts)
          if (h.connected && h.doms.has(vm)) return { host: name, state: h.doms.get(vm)!.state };
        return null;
      },
      siteOf: (h) => (h === 'h3' ? 'dc2' : 'dc1'),
      audit: {
        record: async (e: { action: string }) => {
          o.audit?.(e.action);
          this.log.push(`audit ${e.action}`);
          return e as never;
        },
      },
      probes: {
        windows: async () => [
          {
            probe: 'p',
            site: 'dc1',
            sent: 6,
            lost: 0,
            lossRate: 0,
            rttMinMs: 1,
            rttMaxMs: 1,
            rttAvgMs: 1,
            outageMs: 0,
          },
        ],
        series: async () => ({
          rtt: [],
          outages:
            this.restartedAt === null
              ? []
              : [{ startMs: this.restartedAt - 2_100, endMs: this.restartedAt + 900, open: false }],
        }),
      },
      holdVm: async (vm, drill) => {
        holds.push(`take ${vm} ${drill}`);
        if (o.hold) return o.hold;
        this.lockHolder = drill;
        return {
          held: true,
          release: async () => {
            this.lockHolder = null;
            holds.push(`release ${vm}`);
            this.log.push('release');
          },
        };
      },
      reconnectWaitMs: 90_000,
      clock: this.clock,
      log: { warn: () => undefined },
    };
  }
}

const REQ = { id: 'drill-1', vm: 'vm1' };

describe('host-failure drill (F9)', () => {
  it("F9a: the restart is the failover's, not the drill's: the drill fences, records the fence, and waits", async () => {
    const w = new World();
    const d = w.deps();
    const r = await runHostFailure(d, REQ, 'h1');
    expect(r.stopped).toBeNull();
    // The lock is released after the power off and before the fence record: the failover's
    // restart job, which needs it, never finds it held.
    expect(w.log.slice(0, 5)).toEqual([
      'audit host.fence',
      'fence h1',
      'release',
      'recordFence h1 drill:drill-1',
      'failover restart h2',
    ]);
    expect(w.log.some((l) => /^(define|start) /.test(l))).toBe(false);
    expect(w.log.filter((l) => l.startsWith('failover refused'))).toEqual([]);
    expect(w.fences).toEqual([
      {
        host: 'h1',
        method: 'lab',
        at: w.fences[0]!.at,
        evidence: 'lab 0 fence h1 exited 0',
        ref: 'drill:drill-1',
      },
    ]);
    // Where the VM ended up is the move's target; the RTO runs from the fence to the first reply.
    expect(r.move).toMatchObject({ mechanism: 'failover', from: 'h1', to: 'h2', libvirtDowntimeMs: null });
    expect(r.move!.endedMs).toBe(w.restartedAt! + 900);
    expect(r.move!.totalMs).toBe(r.move!.endedMs - r.move!.startedMs);
    expect(r.move!.startedMs).toBeLessThan(w.restartedAt!);
  });

  it('F9a: the report takes every VM the failover restarted from the host, with its RTO, once the record closes', async () => {
    const w = new World();
    const asked: [string, number][] = [];
    const record = (status: 'open' | 'done') => {
      const f = failoverFixture();
      return { ...f, host: 'h1', status, detectedAt: w.now };
    };
    let calls = 0;
    const d = {
      ...w.deps(),
      failoverOf: async (host: string, since: number) => {
        asked.push([host, since]);
        return ++calls < 3 ? record('open') : record('done');
      },
    };
    const r = await runHostFailure(d, REQ, 'h1');
    expect(r.stopped).toBeNull();
    expect(asked.every(([h, since]) => h === 'h1' && since === r.move!.startedMs)).toBe(true);
    expect(calls).toBe(3);
    expect(r.failover).toMatchObject({ id: FO_ID, status: 'done', failureBasis: 'last-seen-up' });
    // Higher priority first, each with its RTO and the probe's outage.
    expect(r.failover!.vms.map((v) => [v.vm, v.priority, v.to, v.rtoMs, v.outageMs])).toEqual([
      ['web1', 20, 'h2', 9_600, 9_300],
      ['vm1', 10, 'h2', 10_200, 9_900],
    ]);
    // A record still open after the wait is reported as it stands.
    const w2 = new World();
    const open = await runHostFailure(
      { ...w2.deps(), failoverOf: async () => record('open'), failoverWaitMs: 5_000 },
      REQ,
      'h1',
    );
    expect(open.failover?.status).toBe('open');
  });

  it('F9a: a VM the failover restarts in another site is a cross-site failover', async () => {
    const w = new World();
    w.failover = { afterMs: 5_000, on: 'h3' };
    const r = await runHostFailure(w.deps(), REQ, 'h1');
    expect(r.stopped).toBeNull();
    expect(r.move).toMatchObject({ mechanism: 'cross-site-failover', to: 'h3' });
  });

  it("F9a: a host-failure drill re-reads the VM's host right before the fence and refuses if it moved", async () => {
    const w = new World();
    // The VM answers only after a while (the drill waits), and a migration moves it meanwhile.
    let answers = false;
    const d = w.deps();
    const windows = d.probes.windows;
    d.probes.windows = async (...a) => (answers ? windows(...a) : []);
    w.at(3_000, () => w.migrate('vm1', 'h1', 'h3'));
    w.at(10_000, () => {
      answers = true;
    });
    const r = await runHostFailure(d, REQ, 'h1');
    expect(r.move).toBeNull();
    expect(r.stopped).toBe(
      'vm1 no longer runs on h1 (there: not defined; the inventory sees it running on h3): nothing was fenced',
    );
    expect(w.log).toEqual(['migrated h1 -> h3', 'release']);
  });

  it('F9a: a VM the failover would not restart (tier without failover, HA paused) is not fenced', async () => {
    const w = new World();
    const d = w.deps({ refusal: 'HA is paused until 2026-12-02T15:00:00.000Z (by ops)' });
    const r = await runHostFailure(d, REQ, 'h1');
    expect(r).toEqual({
      move: null,
      stopped: 'HA is paused until 2026-12-02T15:00:00.000Z (by ops): nothing was fenced',
    });
    expect(w.log).toEqual(['release']);
    expect(w.hosts.get('h1')!.doms.get('vm1')!.state).toBe('running');
  });

  it('F9a: a VM with a job is not fenced', async () => {
    const busy = new World();
    const r = await runHostFailure(
      busy.deps({ hold: { held: false, holder: 'mig-42 (migrate)' } }),
      REQ,
      'h1',
    );
    expect(r.stopped).toBe('vm1 has job mig-42 (migrate): nothing was fenced');
    expect(busy.log).toEqual([]);
  });

  it('F9b: a failed host.fence audit write fences nothing, so the host is never left off', async () => {
    const w = new World();
    const d = w.deps({
      audit: (a) => {
        if (a === 'host.fence') throw new Error('disk full');
      },
    });
    const r = await runHostFailure(d, REQ, 'h1');
    expect(r.stopped).toBe('the fence of h1 could not be audited (disk full): nothing was fenced');
    expect(w.log.filter((l) => /^(fence|power)/.test(l))).toEqual([]);
    expect(w.hosts.get('h1')!.doms.get('vm1')!.state).toBe('running');
  });

  it('F9b: a fence not confirmed off records nothing and powers the host on again, removing nothing', async () => {
    const w = new World();
    const d = w.deps();
    d.fencer.fence = async (host) => ({
      host,
      method: 'ipmi',
      ok: false,
      confirmedOff: false,
      startedAt: w.now,
      endedAt: w.now,
      error: 'chassis power status: on',
      evidence: 'status read 10 times',
    });
    const r = await runHostFailure(d, REQ, 'h1');
    expect(r.stopped).toBe(
      'the fence of h1 was not confirmed (chassis power status: on): the VM was not restarted',
    );
    expect(w.fences).toEqual([]);
    expect(w.log).toEqual(['audit host.fence', 'release', 'powerOn h1']);
    expect(w.hosts.get('h1')!.doms.has('vm1')).toBe(true);
  });

  it('F9b: a failover that does not restart the VM in time is reported; the host is powered on and keeps the VM', async () => {
    const w = new World();
    w.failover = null;
    const r = await runHostFailure({ ...w.deps(), restartWaitMs: 60_000 }, REQ, 'h1');
    expect(r.move).toBeNull();
    expect(r.stopped).toBe(
      'the failover did not restart vm1 within 60 s of the fence of h1 (see GET /v1/vms/vm1/decisions and the ha.* audit entries)',
    );
    expect(w.log.at(-1)).toBe('powerOn h1');
    // Its only copy: not undefined (VM-level HA restarts it there once the host is back).
    expect(w.hosts.get('h1')!.doms.has('vm1')).toBe(true);
  });

  it('F9b: a fence that cannot be recorded starts no failover; the host is powered on again', async () => {
    const w = new World();
    const d = w.deps({ recordFence: async () => Promise.reject(new Error('redis down')) });
    const r = await runHostFailure(d, REQ, 'h1');
    expect(r.stopped).toBe(
      'recording the fence of h1 failed (redis down): the failover was not started, h1 is powered on again',
    );
    expect(w.log.slice(-2)).toEqual(['release', 'powerOn h1']);
    expect(w.hosts.get('h1')!.doms.has('vm1')).toBe(true);
  });

  it("F9c: the clean-up waits out the inventory's reconnect backoff (40 s here) and then undefines the shut-off copy", async () => {
    const w = new World();
    w.reconnectAfterMs = 40_000;
    const r = await runHostFailure(w.deps(), REQ, 'h1');
    expect(r.stopped).toBeNull();
    expect(w.hosts.get('h1')!.doms.has('vm1')).toBe(false);
    expect(w.log.slice(-2)).toEqual(['powerOn h1', 'undefine h1']);
  });

  it('F9c: a copy that autostarted on the healed host is destroyed before it is undefined, never left running', async () => {
    const w = new World();
    w.hosts.get('h1')!.autostart = true;
    const r = await runHostFailure(w.deps(), REQ, 'h1');
    expect(r.stopped).toBeNull();
    expect(w.log.slice(-3)).toEqual(['powerOn h1', 'destroy h1', 'undefine h1']);
    expect(w.hosts.get('h1')!.doms.has('vm1')).toBe(false);
    expect(w.hosts.get('h2')!.doms.get('vm1')!.state).toBe('running');
  });

  it('F9c: a healed host that does not reconnect is reported with the stale definition it may hold', async () => {
    const w = new World();
    w.reconnectAfterMs = null;
    const r = await runHostFailure(w.deps(), REQ, 'h1');
    expect(r.stopped).toBe(
      'h1 did not reconnect within 90 s of powering on: the stale definition of vm1 may still be there (virsh undefine vm1)',
    );
    expect(r.move).not.toBeNull();
  });
});
