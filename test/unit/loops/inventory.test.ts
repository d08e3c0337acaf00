import { EventEmitter } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import type { HostHealth, HostSnapshot, VmConflict } from '../../../src/core/model.ts';
import { DomainXmlFlags } from '../../../src/libvirt/constants.ts';
import type { LibvirtClient } from '../../../src/libvirt/index.ts';
import { InventoryLoop, SWITCHOVER_HOLD_MS } from '../../../src/loops/inventory.ts';
import { createMetrics } from '../../../src/metrics/registry.ts';

/** A libvirt host as the inventory sees it: its domains, and whether its calls hang. */
class FakeHost {
  hang = false;
  /** Set: the XML reads wait for it. */
  xmlGate: Promise<void> | null = null;
  /** Domain-stats reads of this host so far. */
  reads = 0;
  domains: { name: string; uuid: string; state: number }[] = [];
  xmlFlags: number[] = [];
  client: FakeClient | null = null;
}

class FakeClient extends EventEmitter {
  readonly channel = new EventEmitter();
  constructor(private readonly h: FakeHost) {
    super();
  }
  private answer<T>(v: T): Promise<T> {
    return this.h.hang ? new Promise<T>(() => undefined) : Promise.resolve(v);
  }
  subscribeDomainEvents = () => Promise.resolve();
  nodeInfo = () => this.answer({ cpus: 2, memoryKiB: 1_000_000 });
  nodeCpuStats = () => this.answer({ user: 1, kernel: 1, idle: 10, iowait: 0 });
  nodeMemoryStats = () => this.answer({ total: 1_000_000, free: 500_000, buffers: 0, cached: 0 });
  getAllDomainStats = () => {
    this.h.reads++;
    return this.answer(
      this.h.domains.map((d) => ({ name: d.name, uuid: d.uuid, stats: { 'state.state': d.state } })),
    );
  };
  // No lookup calls: the definitions are read by the handles the bulk stats listed.
  getMetadataElement = () => this.answer(null);
  getXml = async (dom: { name: string }, flags = 0) => {
    this.h.xmlFlags.push(flags);
    await this.h.xmlGate;
    return this.answer(`<domain><name>${dom.name}</name></domain>`);
  };
  closed = false;
  close = () => {
    this.closed = true;
    return Promise.resolve();
  };
  /** The link drops (keepalive timeout, RST). */
  drop(): void {
    this.channel.emit('close', new Error('keepalive timed out'));
  }
}

const RUNNING = 1;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function setup(o: { icmpAnswers?: () => boolean; connectGate?: Promise<void> } = {}) {
  const hosts = { A: new FakeHost(), B: new FakeHost() };
  const xml: [string, string][] = [];
  const changes: [string, HostHealth, HostHealth][] = [];
  const conflicts: VmConflict[] = [];
  const metrics = createMetrics();
  const inv = new InventoryLoop({
    hosts: [
      { name: 'A', site: 'dc1', uri: 'test:///A', managementAddress: '10.0.0.1' },
      { name: 'B', site: 'dc1', uri: 'test:///B', managementAddress: '10.0.0.2' },
    ],
    sites: ['dc1'],
    connectOptions: () => ({}),
    intervalMs: 50,
    healthIntervalMs: 20,
    thresholds: { suspectAfterMs: 200, icmpFreshMs: 1_000 },
    minBackoffMs: 20,
    metrics,
    log: { info: () => undefined, warn: () => undefined },
    icmp: {
      last: () => (o.icmpAnswers?.() ? { lastReplyAt: Date.now(), lastSentAt: Date.now() } : null),
      stop: async () => undefined,
    },
    onHealthChange: (h: HostSnapshot, prev) => changes.push([h.name, prev, h.health]),
    onConflict: (c) => conflicts.push(c),
    onDomainXml: async (vm, host) => {
      xml.push([vm, host]);
    },
    connect: async (uri) => {
      const h = hosts[uri.slice(-1) as 'A' | 'B'];
      await o.connectGate;
      h.client = new FakeClient(h);
      return h.client as unknown as LibvirtClient;
    },
  });
  return { hosts, inv, xml, changes, conflicts, metrics };
}

let inv: InventoryLoop | null = null;
afterEach(async () => {
  await inv?.close();
  inv = null;
});

describe('InventoryLoop', () => {
  it('closes a connection that was still being made when the inventory closed', async () => {
    let open!: () => void;
    const t = setup({ connectGate: new Promise<void>((r) => (open = r)) });
    const pass = t.inv.pass(Date.now());
    await sleep(5);
    const closed = t.inv.close();
    open();
    await Promise.all([pass, closed]);
    // Both connects completed after close: the inventory must have closed them itself.
    for (const [name, h] of Object.entries(t.hosts)) expect(h.client?.closed, name).toBe(true);
    expect(t.inv.clientFor('A')).toBeNull();
    expect(t.inv.clientFor('B')).toBeNull();
  });

  it('stores the inactive XML of every domain once, and shares one snapshot until something changes', async () => {
    const t = setup();
    inv = t.inv;
    t.hosts.A.domains = [{ name: 'vm1', uuid: 'u1', state: RUNNING }];
    t.hosts.B.domains = [{ name: 'vm2', uuid: 'u2', state: 5 }];
    await t.inv.pass(Date.now());
    await t.inv.pass(Date.now());
    expect(t.xml.sort()).toEqual([
      ['vm1', 'A'],
      ['vm2', 'B'],
    ]);
    expect(new Set([...t.hosts.A.xmlFlags, ...t.hosts.B.xmlFlags])).toEqual(
      new Set([DomainXmlFlags.INACTIVE]),
    );
    const s = t.inv.snapshot();
    expect(t.inv.snapshot()).toBe(s);
    expect(s.hosts.get('A')).toMatchObject({ health: 'up', vms: ['vm1'] });
    expect(t.changes).toEqual([
      ['A', 'unknown', 'up'],
      ['B', 'unknown', 'up'],
    ]);
    await t.inv.pass(Date.now());
    const next = t.inv.snapshot();
    expect(next).not.toBe(s);
    expect(next.revision).toBeGreaterThan(s.revision!);
    // A host's health series is 1 for its state only.
    const health = (await t.metrics.hostHealth.get()).values.filter((v) => v.labels.host === 'A');
    expect(health.map((v) => [v.labels.state, v.value])).toEqual([['up', 1]]);
  });

  it("a host is up with its VMs once their metadata is read; their XML is read and stored after, outside the host's read", async () => {
    const t = setup();
    inv = t.inv;
    let open!: () => void;
    t.hosts.A.xmlGate = new Promise<void>((r) => (open = r));
    t.hosts.A.domains = [{ name: 'vm1', uuid: 'u1', state: RUNNING }];
    await expect(t.inv.pass(Date.now())).resolves.toEqual({ result: 'success' });
    expect(t.inv.snapshot().hosts.get('A')).toMatchObject({ health: 'up', vms: ['vm1'] });
    expect(t.xml).toEqual([]);
    open();
    for (let i = 0; i < 50 && t.xml.length === 0; i++) await sleep(5);
    expect(t.xml).toEqual([['vm1', 'A']]);
    // Stored once: the next pass does not read it again.
    await t.inv.pass(Date.now());
    await sleep(5);
    expect(t.hosts.A.xmlFlags).toHaveLength(1);
  });

  it('F17: a host whose calls hang while its link stays open turns suspect, its VMs only last known', async () => {
    const t = setup();
    inv = t.inv;
    t.hosts.A.domains = [{ name: 'vm1', uuid: 'u1', state: RUNNING }];
    await t.inv.pass(Date.now());
    await sleep(5);
    t.hosts.A.hang = true;
    const r = await t.inv.pass(Date.now()); // A's read goes on in the background
    expect(r.result).toBe('partial');
    expect(t.inv.snapshot().hosts.get('A')!.health).toBe('up'); // within the threshold
    await sleep(250);
    await t.inv.health.pass(Date.now());
    const a = t.inv.snapshot().hosts.get('A')!;
    expect(a).toMatchObject({
      health: 'suspect',
      vms: [],
      lastKnownVms: ['vm1'],
      evidence: { connected: true },
    });
    expect(t.inv.snapshot().vms.has('vm1')).toBe(false);
    expect(t.changes).toContainEqual(['A', 'up', 'suspect']);
    expect(t.inv.snapshot().hosts.get('B')!.health).toBe('up');
  });

  it('a lost link with ICMP answering is partitioned; the reconnect makes the host up again', async () => {
    let icmp = true;
    const t = setup({ icmpAnswers: () => icmp });
    inv = t.inv;
    t.hosts.A.domains = [{ name: 'vm1', uuid: 'u1', state: RUNNING }];
    await t.inv.pass(Date.now());
    t.hosts.A.hang = true; // the reconnect's first read must not come back yet
    t.hosts.A.client!.drop();
    const a = t.inv.snapshot().hosts.get('A')!;
    expect(a).toMatchObject({
      health: 'partitioned',
      lastKnownVms: ['vm1'],
      evidence: { connected: false, icmp: true },
    });
    icmp = false;
    await t.inv.health.pass(Date.now());
    expect(t.inv.snapshot().hosts.get('A')!.health).toBe('unreachable');
    t.hosts.A.hang = false;
    for (let i = 0; i < 50 && t.inv.snapshot().hosts.get('A')!.health !== 'up'; i++) await sleep(20);
    expect(t.inv.snapshot().hosts.get('A')).toMatchObject({ health: 'up', vms: ['vm1'] });
    expect(t.changes.filter((c) => c[0] === 'A').map((c) => c[2])).toEqual([
      'up',
      'partitioned',
      'unreachable',
      'up',
    ]);
  });

  it('links lost together build and publish the snapshot once, not once per host', async () => {
    const t = setup();
    inv = t.inv;
    t.hosts.A.domains = [{ name: 'vm1', uuid: 'u1', state: RUNNING }];
    t.hosts.B.domains = [{ name: 'vm2', uuid: 'u2', state: RUNNING }];
    await t.inv.pass(Date.now());
    let publications = 0;
    const reset = t.metrics.hostHealth.reset.bind(t.metrics.hostHealth);
    t.metrics.hostHealth.reset = () => {
      publications++;
      reset();
    };
    t.hosts.A.hang = true; // the reconnects' reads must not come back yet
    t.hosts.B.hang = true;
    t.hosts.A.client!.drop();
    t.hosts.B.client!.drop();
    await new Promise((r) => setImmediate(r));
    expect(publications).toBe(1);
    const up = (await t.metrics.hostUp.get()).values.map((v) => [v.labels.host, v.value]);
    expect(up.sort()).toEqual([
      ['A', 0],
      ['B', 0],
    ]);
    expect(t.changes.filter((c) => c[2] === 'unreachable').map((c) => c[0])).toEqual(['A', 'B']);
  });

  it('reports a VM active on two hosts once, as a conflict, and counts it in the metric', async () => {
    const t = setup();
    inv = t.inv;
    t.hosts.A.domains = [{ name: 'vm1', uuid: 'u1', state: RUNNING }];
    t.hosts.B.domains = [{ name: 'vm1', uuid: 'u1', state: 3 }];
    await t.inv.pass(Date.now());
    await t.inv.pass(Date.now());
    expect(t.conflicts).toEqual([
      {
        vm: 'vm1',
        copies: [
          { host: 'A', state: 'running' },
          { host: 'B', state: 'paused' },
        ],
      },
    ]);
    expect((await t.metrics.vmConflicts.get()).values[0]!.value).toBe(1);
    expect(t.inv.snapshot().vms.get('vm1')!.host).toBe('A');
  });

  it("reads no host in a migration's switch-over: the source is read once its domain has left, the destination once it resumed", async () => {
    const t = setup();
    inv = t.inv;
    t.hosts.A.domains = [{ name: 'vm1', uuid: 'u1', state: RUNNING }];
    await t.inv.pass(Date.now());
    const a = t.hosts.A.client!;
    const b = t.hosts.B.client!;
    const ev = (c: FakeClient, event: string, detail: number) =>
      c.emit('domain-event', { kind: 'lifecycle', domain: 'vm1', uuid: 'u1', event, detail });
    // The move starts: the destination is read (an incoming, paused domain); iterations ask for nothing.
    ev(b, 'started', 1);
    await sleep(150);
    expect(t.hosts.B.reads).toBe(2);
    const readsOfA = t.hosts.A.reads;
    a.emit('domain-event', { kind: 'migration-iteration', domain: 'vm1', uuid: 'u1', iteration: 2 });
    await sleep(150);
    expect(t.hosts.A.reads).toBe(readsOfA);
    // The source pauses the guest for the switch-over: neither an event nor a pass reads it
    // (the pass reads the destination).
    ev(a, 'suspended', 1);
    await t.inv.pass(Date.now());
    await sleep(150);
    expect(t.hosts.A.reads).toBe(readsOfA);
    expect(t.hosts.B.reads).toBe(3);
    // The destination defines the domain just before it resumes it: no read for that either.
    ev(b, 'defined', 0);
    await sleep(150);
    expect(t.hosts.B.reads).toBe(3);
    ev(b, 'resumed', 1);
    ev(a, 'stopped', 3);
    await sleep(150);
    // The held read of the pass, and the one the event asked for (one read at a time per host).
    expect(t.hosts.A.reads).toBeGreaterThan(readsOfA);
    expect(t.hosts.B.reads).toBe(4);
  });

  it('a switch-over whose end it never hears of holds the reads of its host for SWITCHOVER_HOLD_MS at most', async () => {
    const t = setup();
    inv = t.inv;
    t.hosts.A.domains = [{ name: 'vm1', uuid: 'u1', state: RUNNING }];
    await t.inv.pass(Date.now());
    const reads = t.hosts.A.reads;
    const at = Date.now();
    t.hosts.A.client!.emit('domain-event', {
      kind: 'lifecycle',
      domain: 'vm1',
      uuid: 'u1',
      event: 'suspended',
      detail: 1,
    });
    await t.inv.pass(Date.now());
    expect(t.hosts.A.reads).toBe(reads);
    while (t.hosts.A.reads === reads) await sleep(10);
    expect(Date.now() - at).toBeGreaterThanOrEqual(SWITCHOVER_HOLD_MS - 5);
    // A pause for another reason (detail 0: by a user) holds nothing.
    t.hosts.A.client!.emit('domain-event', {
      kind: 'lifecycle',
      domain: 'vm1',
      uuid: 'u1',
      event: 'suspended',
      detail: 0,
    });
    await sleep(150);
    expect(t.hosts.A.reads).toBe(reads + 2);
  });
});
