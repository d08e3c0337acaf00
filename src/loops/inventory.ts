import { isIP } from 'node:net';
import type { ClusterSnapshot, HostConfigView, HostObservation } from '../core/model.ts';
import { buildSnapshot } from '../core/snapshot.ts';
import { DomainStats, DomainStatsFlags, domainStateNames } from '../libvirt/constants.ts';
import { type ConnectOptions, connectLibvirt, type LibvirtClient } from '../libvirt/index.ts';
import type { Metrics } from '../metrics/registry.ts';

export interface InventoryHost extends HostConfigView {
  uri: string;
}

export interface InventoryOptions {
  hosts: readonly InventoryHost[];
  sites: readonly string[];
  connectOptions: (host: InventoryHost) => ConnectOptions;
  intervalMs: number;
  metrics: Metrics;
  log: { info(o: object, msg: string): void; warn(o: object, msg: string): void };
  /** Hosts in maintenance, for the snapshot. */
  maintenance?: () => ReadonlySet<string>;
  /** Reconnect backoff bounds. */
  minBackoffMs?: number;
  maxBackoffMs?: number;
}

interface HostLink {
  host: InventoryHost;
  client: LibvirtClient | null;
  connecting: boolean;
  backoffMs: number;
  retryTimer: NodeJS.Timeout | null;
  eventTimer: NodeJS.Timeout | null;
  current?: HostObservation;
  previous?: HostObservation;
}

/** The namespace of keizoku's element in a domain's <metadata> (addresses the probe pings). */
export const VM_METADATA_NS = 'urn:keizoku:vm:1';

/** `<kz:address>` values of keizoku's metadata element. */
export function addressesFromMetadata(xml: string | null): string[] {
  if (!xml) return [];
  // IP literals only: a name would make every probe agent resolve (and trust) DNS.
  return [...xml.matchAll(/<(?:[A-Za-z0-9_-]+:)?address>\s*([^<\s]+)\s*</g)]
    .map((m) => m[1]!)
    .filter((a) => isIP(a) !== 0);
}

/** A libvirt call slower than this is logged (the metric has them all). */
const SLOW_CALL_S = 5;

const STATS = DomainStats.STATE | DomainStats.CPU_TOTAL | DomainStats.BALLOON | DomainStats.VCPU;

/**
 * Keeps one persistent libvirt connection per host (reconnecting with backoff), reads host
 * facts and every domain's stats on a fixed interval and at once after a domain event, and
 * turns the latest observations into a ClusterSnapshot.
 */
export class InventoryLoop {
  private readonly links: HostLink[];
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  private readonly minBackoff: number;
  private readonly maxBackoff: number;
  /** Addresses from each domain's metadata, by UUID (read once per domain; a move keeps the UUID). */
  private readonly addresses = new Map<string, string[]>();
  /** When each domain's metadata was last read: read again after 6 passes (they may change live). */
  private readonly addressesReadAt = new Map<string, number>();

  constructor(private readonly o: InventoryOptions) {
    this.minBackoff = o.minBackoffMs ?? 500;
    this.maxBackoff = o.maxBackoffMs ?? 30_000;
    this.links = o.hosts.map((host) => ({
      host,
      client: null,
      connecting: false,
      backoffMs: this.minBackoff,
      retryTimer: null,
      eventTimer: null,
    }));
  }

  async start(): Promise<void> {
    await Promise.all(this.links.map((l) => this.connect(l)));
    await this.resyncAll();
    this.timer = setInterval(() => void this.resyncAll(), this.o.intervalMs);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await Promise.all(
      this.links.map(async (l) => {
        if (l.retryTimer) clearTimeout(l.retryTimer);
        if (l.eventTimer) clearTimeout(l.eventTimer);
        const c = l.client;
        l.client = null;
        await c?.close();
      }),
    );
  }

  /** The live client of a host, or null while it is disconnected. */
  clientFor(host: string): LibvirtClient | null {
    return this.links.find((l) => l.host.name === host)?.client ?? null;
  }

  /** The addresses a VM answers on, from its domain metadata (empty when it has none). */
  addressesOf(vm: string): string[] {
    for (const l of this.links)
      for (const d of l.current?.domains ?? []) if (d.name === vm) return this.addresses.get(d.uuid) ?? [];
    return [];
  }

  private async readAddresses(host: string, c: LibvirtClient, uuids: string[]): Promise<void> {
    const now = Date.now();
    for (const uuid of uuids) {
      const refreshMs = 6 * this.o.intervalMs;
      if (now - (this.addressesReadAt.get(uuid) ?? Number.NEGATIVE_INFINITY) < refreshMs) continue;
      try {
        const dom = await this.timed(host, 'domain_lookup_by_uuid', c.lookupByUuid(uuid));
        const xml = await this.timed(host, 'domain_get_metadata', c.getMetadataElement(dom, VM_METADATA_NS));
        this.addresses.set(uuid, addressesFromMetadata(xml));
        this.addressesReadAt.set(uuid, now);
      } catch {
        // Retried on the next pass.
      }
    }
  }

  snapshot(now = Date.now()): ClusterSnapshot {
    const current = new Map<string, HostObservation>();
    const previous = new Map<string, HostObservation>();
    for (const l of this.links) {
      if (l.current) current.set(l.host.name, l.current);
      if (l.previous) previous.set(l.host.name, l.previous);
    }
    return buildSnapshot({
      now,
      sites: this.o.sites,
      hosts: this.o.hosts,
      maintenance: this.o.maintenance?.() ?? new Set(),
      current,
      previous,
    });
  }

  async resyncAll(): Promise<void> {
    const end = this.o.metrics.loopDuration.startTimer({ loop: 'inventory' });
    const results = await Promise.all(this.links.map((l) => this.resync(l)));
    end();
    this.o.metrics.loopRuns.inc({
      loop: 'inventory',
      result: results.every(Boolean) ? 'success' : 'partial',
    });
    // Forget the addresses of domains no host has any more (only after a full pass: a host
    // that was not read may still have them).
    if (results.every(Boolean)) {
      const present = new Set(this.links.flatMap((l) => (l.current?.domains ?? []).map((d) => d.uuid)));
      for (const uuid of [...this.addresses.keys()])
        if (!present.has(uuid)) {
          this.addresses.delete(uuid);
          this.addressesReadAt.delete(uuid);
        }
    }
    this.publish();
  }

  private async connect(l: HostLink): Promise<void> {
    if (this.stopped || l.client || l.connecting) return;
    l.connecting = true;
    try {
      const client = await connectLibvirt(l.host.uri, this.o.connectOptions(l.host));
      l.client = client;
      l.backoffMs = this.minBackoff;
      client.channel.on('close', (err: Error) => {
        if (l.client !== client) return;
        l.client = null;
        this.o.metrics.libvirtErrors.inc({ host: l.host.name, kind: 'connection' });
        this.o.log.warn({ host: l.host.name, err: err.message }, 'libvirt connection lost');
        this.markUnreachable(l);
        this.scheduleReconnect(l);
      });
      client.on('domain-event', () => this.onEvent(l));
      await client.subscribeDomainEvents();
      this.o.log.info({ host: l.host.name }, 'connected to libvirt');
    } catch (e) {
      this.o.metrics.libvirtErrors.inc({ host: l.host.name, kind: 'connect' });
      this.o.log.warn({ host: l.host.name, err: (e as Error).message }, 'cannot connect to libvirt');
      this.markUnreachable(l);
      this.scheduleReconnect(l);
    } finally {
      l.connecting = false;
    }
  }

  private scheduleReconnect(l: HostLink): void {
    if (this.stopped || l.retryTimer) return;
    const delay = l.backoffMs;
    l.backoffMs = Math.min(this.maxBackoff, l.backoffMs * 2);
    l.retryTimer = setTimeout(() => {
      l.retryTimer = null;
      void this.connect(l).then(() => (l.client ? this.resync(l).then(() => this.publish()) : undefined));
    }, delay);
  }

  /** Events only make the next pass come sooner (debounced), as in a level-triggered loop. */
  private onEvent(l: HostLink): void {
    if (l.eventTimer) return;
    l.eventTimer = setTimeout(() => {
      l.eventTimer = null;
      void this.resync(l).then(() => this.publish());
    }, 100);
  }

  private markUnreachable(l: HostLink): void {
    l.previous = l.current ?? l.previous;
    l.current = { host: l.host.name, observedAt: Date.now(), reachable: false };
    this.publish();
  }

  private async timed<T>(host: string, call: string, p: Promise<T>): Promise<T> {
    const end = this.o.metrics.libvirtCallDuration.startTimer({ host, call });
    try {
      return await p;
    } finally {
      const seconds = end();
      if (seconds > SLOW_CALL_S)
        this.o.log.warn({ host, call, ms: Math.round(seconds * 1000) }, 'slow libvirt call');
    }
  }

  private async resync(l: HostLink): Promise<boolean> {
    const c = l.client;
    if (!c) {
      await this.connect(l);
      return false;
    }
    const name = l.host.name;
    try {
      const [info, cpuTimes, memory, domains] = await Promise.all([
        this.timed(name, 'node_info', c.nodeInfo()),
        this.timed(name, 'node_cpu_stats', c.nodeCpuStats()),
        this.timed(name, 'node_memory_stats', c.nodeMemoryStats()),
        // NOWAIT: a domain whose job is held (an incoming migration) would hold the whole call for
        // libvirt's job wait, 30 s; without the job its state, CPU time, vCPUs and balloon size
        // still come (from the definition and cgroups), only the guest's memory figures do not.
        this.timed(name, 'all_domain_stats', c.getAllDomainStats(STATS, DomainStatsFlags.NOWAIT)),
      ]);
      await this.readAddresses(
        name,
        c,
        domains.map((d) => d.uuid),
      );
      l.previous = l.current?.reachable ? l.current : l.previous;
      l.current = {
        host: name,
        observedAt: Date.now(),
        reachable: true,
        cpus: info.cpus,
        memoryKiB: info.memoryKiB,
        cpuTimes,
        memory,
        domains: domains.map((d) => ({
          name: d.name,
          uuid: d.uuid,
          state: stateName(Number(d.stats['state.state'])),
          stats: d.stats,
        })),
      };
      return true;
    } catch (e) {
      this.o.metrics.libvirtErrors.inc({ host: name, kind: 'call' });
      this.o.log.warn({ host: name, err: (e as Error).message }, 'inventory of host failed');
      return false;
    }
  }

  private publish(): void {
    const s = this.snapshot();
    const m = this.o.metrics;
    m.hostVms.reset();
    m.vmCpuUsage.reset();
    m.vmMemory.reset();
    for (const h of s.hosts.values()) {
      m.hostUp.set({ host: h.name, site: h.site }, h.health === 'up' ? 1 : 0);
      m.hostMemoryTotal.set({ host: h.name }, h.memoryKiB * 1024);
      if (h.cpuUtilisation !== null) m.hostCpuUtilisation.set({ host: h.name }, h.cpuUtilisation);
      if (h.memoryUsedKiB !== null) m.hostMemoryUsed.set({ host: h.name }, h.memoryUsedKiB * 1024);
    }
    const perHost = new Map<string, number>();
    for (const vm of s.vms.values()) {
      const key = `${vm.host}\u0000${vm.state}`;
      perHost.set(key, (perHost.get(key) ?? 0) + 1);
      m.vmMemory.set({ vm: vm.name, host: vm.host }, vm.memoryKiB * 1024);
      if (vm.cpuUsage !== null) m.vmCpuUsage.set({ vm: vm.name, host: vm.host }, vm.cpuUsage);
    }
    for (const [key, n] of perHost) {
      const [host, state] = key.split('\u0000') as [string, string];
      m.hostVms.set({ host, state }, n);
    }
  }
}

const stateName = (n: number) => domainStateNames[n] ?? 'unknown';
