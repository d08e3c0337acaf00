import { describe, expect, it } from 'vitest';
import {
  type Clock,
  type HostFailureDeps,
  runHostFailure,
  type VmHold,
} from '../../../src/drills/host-failure.ts';
import type { LibvirtClient } from '../../../src/libvirt/client.ts';
import { DomainXmlFlags } from '../../../src/libvirt/constants.ts';
import { LibvirtError } from '../../../src/libvirt/errors.ts';

/**
 * The host-failure drill against fake hosts: each host has domains with a state and an XML, is
 * connected or not, and the fake clock runs `at` hooks when time passes (a migration in the
 * middle of the drill's wait, a host that reconnects late).
 */
interface Dom {
  state: string;
  xml: string;
}

class World {
  readonly hosts = new Map<string, { doms: Map<string, Dom>; connected: boolean; autostart: boolean }>();
  readonly log: string[] = [];
  readonly xmlFlags: number[] = [];
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
      getXml: (d: { name: string }, flags: number) =>
        live(() => {
          this.xmlFlags.push(flags);
          return h.doms.get(d.name)!.xml;
        }),
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
          this.restartedAt = this.now;
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

  deps(o: { hold?: VmHold; audit?: (action: string) => void } = {}): HostFailureDeps & { holds: string[] } {
    const holds: string[] = [];
    return {
      holds,
      clientFor: (h) => (this.hosts.get(h)?.connected ? this.client(h) : null),
      fencer: {
        canCycle: () => null,
        powerOff: async (host) => {
          this.log.push(`powerOff ${host}`);
          const h = this.hosts.get(host)!;
          h.connected = false;
          for (const d of h.doms.values()) d.state = 'shutoff';
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
              : [{ startMs: this.restartedAt - 100, endMs: this.restartedAt + 900, open: false }],
        }),
      },
      holdVm: async (vm, drill) => {
        holds.push(`take ${vm} ${drill}`);
        return (
          o.hold ?? {
            held: true,
            release: async () => {
              holds.push(`release ${vm}`);
            },
          }
        );
      },
      reconnectWaitMs: 90_000,
      clock: this.clock,
      log: { warn: () => undefined },
    };
  }
}

const REQ = { id: 'drill-1', vm: 'vm1' };

describe('host-failure drill (F9)', () => {
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
    const r = await runHostFailure(d, REQ, 'h1', 'h2', 'failover');
    expect(r.move).toBeNull();
    expect(r.stopped).toBe(
      'vm1 no longer runs on h1 (there: not defined; on h2: not defined): nothing was fenced',
    );
    expect(w.log).toEqual(['migrated h1 -> h3']);
    expect(w.hosts.get('h2')!.doms.has('vm1')).toBe(false);
  });

  it('F9a: the VM is restarted from the definition read right before the fence (INACTIVE), not one read before the wait', async () => {
    const w = new World();
    let answers = false;
    const d = w.deps();
    const windows = d.probes.windows;
    d.probes.windows = async (...a) => (answers ? windows(...a) : []);
    const fresh = '<domain><name>vm1</name><memory>2</memory></domain>';
    w.at(3_000, () => {
      w.hosts.get('h1')!.doms.get('vm1')!.xml = fresh;
    });
    w.at(10_000, () => {
      answers = true;
    });
    const r = await runHostFailure(d, REQ, 'h1', 'h2', 'failover');
    expect(r.stopped).toBeNull();
    expect(w.log).toContain(`define h2 ${fresh}`);
    expect(w.xmlFlags).toEqual([DomainXmlFlags.INACTIVE]);
  });

  it("F9a: the drill holds the VM's job lock from before its checks to the end, and a VM with a job is not fenced", async () => {
    const w = new World();
    const d = w.deps();
    const r = await runHostFailure(d, REQ, 'h1', 'h2', 'failover');
    expect(r.stopped).toBeNull();
    expect(d.holds).toEqual(['take vm1 drill-1', 'release vm1']);
    const busy = new World();
    const r2 = await runHostFailure(
      busy.deps({ hold: { held: false, holder: 'mig-42 (migrate)' } }),
      REQ,
      'h1',
      'h2',
      'failover',
    );
    expect(r2.stopped).toBe('vm1 has job mig-42 (migrate): nothing was fenced');
    expect(busy.log).toEqual([]);
  });

  it('F9b: a failed host.fence audit write fences nothing, so the host is never left off with the VM not restarted', async () => {
    const w = new World();
    const d = w.deps({
      audit: (a) => {
        if (a === 'host.fence') throw new Error('disk full');
      },
    });
    const r = await runHostFailure(d, REQ, 'h1', 'h2', 'failover');
    expect(r.stopped).toBe('the fence of h1 could not be audited (disk full): nothing was fenced');
    expect(w.log.filter((l) => l.startsWith('power'))).toEqual([]);
    expect(w.hosts.get('h1')!.doms.get('vm1')!.state).toBe('running');
  });

  it('F9b: a restart that fails after the fence still powers the host on again', async () => {
    const w = new World();
    const d = w.deps();
    const client = d.clientFor;
    d.clientFor = (h) => {
      const c = client(h);
      if (c && h === 'h2') c.start = async () => Promise.reject(new Error('no room'));
      return c;
    };
    const r = await runHostFailure(d, REQ, 'h1', 'h2', 'failover');
    expect(r.stopped).toBe('restart of vm1 on h2 failed: no room');
    expect(w.log).toContain('powerOn h1');
  });

  it("F9c: the clean-up waits out the inventory's reconnect backoff (40 s here) and then undefines the shut-off copy", async () => {
    const w = new World();
    w.reconnectAfterMs = 40_000;
    const r = await runHostFailure(w.deps(), REQ, 'h1', 'h2', 'failover');
    expect(r.stopped).toBeNull();
    expect(w.hosts.get('h1')!.doms.has('vm1')).toBe(false);
    expect(w.log.slice(-2)).toEqual(['powerOn h1', 'undefine h1']);
  });

  it('F9c: a copy that autostarted on the healed host is destroyed before it is undefined, never left running', async () => {
    const w = new World();
    w.hosts.get('h1')!.autostart = true;
    const r = await runHostFailure(w.deps(), REQ, 'h1', 'h2', 'failover');
    expect(r.stopped).toBeNull();
    expect(w.log.slice(-3)).toEqual(['powerOn h1', 'destroy h1', 'undefine h1']);
    expect(w.hosts.get('h1')!.doms.has('vm1')).toBe(false);
    expect(w.hosts.get('h2')!.doms.get('vm1')!.state).toBe('running');
  });

  it('F9c: a healed host that does not reconnect is reported with the stale definition it may hold', async () => {
    const w = new World();
    w.reconnectAfterMs = null;
    const r = await runHostFailure(w.deps(), REQ, 'h1', 'h2', 'failover');
    expect(r.stopped).toBe(
      'h1 did not reconnect within 90 s of powering on: the stale definition of vm1 may still be there (virsh undefine vm1)',
    );
    expect(r.move).not.toBeNull();
  });
});
