import {
  DEFAULT_HEALTH_THRESHOLDS,
  type HealthInput,
  type HealthThresholds,
  judgeHealth,
} from '../core/health.ts';
import type {
  ClusterSnapshot,
  HostConfigView,
  HostHealth,
  HostObservation,
  HostSnapshot,
  VmConflict,
} from '../core/model.ts';
import { buildSnapshot } from '../core/snapshot.ts';
import { NO_LABELS, type VmLabels } from '../core/vm-labels.ts';
import type { DomainEvent } from '../libvirt/client.ts';
import {
  DomainState,
  DomainStats,
  DomainStatsFlags,
  domainStateNames,
  MigrationEventDetail,
  PausedReason,
  ShutoffReason,
} from '../libvirt/constants.ts';
import { type ConnectOptions, connectLibvirt, type LibvirtClient } from '../libvirt/index.ts';
import type { Metrics } from '../metrics/registry.ts';
import type { HostIcmp } from '../probe/host-pinger.ts';
import { DomainDefinitions } from './domain-definitions.ts';
import { publishSnapshot } from './inventory-metrics.ts';
import type { PassResult, Reconciler } from './runner.ts';

export { addressesFromMetadata, VM_METADATA_NS } from './domain-definitions.ts';

export interface InventoryHost extends HostConfigView {
  uri: string;
  /** Where ICMP reaches the host (its config's managementAddress). */
  managementAddress?: string;
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
  /** When a host was last fenced (a confirmed power off), for its health; null: never. */
  fencedAt?: (host: string) => number | null;
  /** Probe witnesses' votes on a host the controller lost (loops/witnesses.ts); null: none. */
  witnesses?: (host: string) => HealthInput['witnesses'];
  /** Reconnect backoff bounds. */
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /** ICMP to each host's management address; without it, ICMP is "not probed". */
  icmp?: HostIcmp;
  /** How often health is judged again between observations (loops.healthIntervalMs). */
  healthIntervalMs?: number;
  thresholds?: Partial<HealthThresholds>;
  /** A host's health changed (with its evidence). */
  onHealthChange?: (host: HostSnapshot, previous: HostHealth) => void;
  /** A VM became active on more than one host. */
  onConflict?: (conflict: VmConflict) => void;
  /** Every domain's inactive XML, as read (at once for a new domain, then every 6 passes). */
  onDomainXml?: (vm: string, host: string, xml: string) => Promise<void>;
  /** Opens a libvirt connection (tests pass a fake). */
  connect?: typeof connectLibvirt;
}

interface HostLink {
  host: InventoryHost;
  client: LibvirtClient | null;
  connecting: boolean;
  connectedAt: number | null;
  backoffMs: number;
  retryTimer: NodeJS.Timeout | null;
  eventTimer: NodeJS.Timeout | null;
  /** The read in flight (one at a time per host), and whether an event asked for another. */
  inflight: Promise<boolean> | null;
  again: boolean;
  /** Domains of the host paused by libvirt for a migration's switch-over, since when (epoch ms). */
  switchovers: Map<string, number>;
  /** Domains arriving by an incoming migration, not yet resumed or stopped here. */
  incoming: Set<string>;
  /** Reads waiting for a switch-over to end. */
  waiting: (() => void)[];
  lastAttemptAt: number | null;
  lastSuccessAt: number | null;
  /** When the last successful read's answer came. */
  lastAnswerAt: number | null;
  current?: HostObservation;
  previous?: HostObservation;
}

/** A libvirt call slower than this is logged (the metric has them all). */
const SLOW_CALL_S = 5;

/**
 * Longest a host's read waits for a migration's switch-over on it to end. A read started in the
 * switch-over (100 ms after the source's pause event) ran, in the lab, until the handover was
 * done (up to 340 ms), competing with it for the host while the guest was paused, and saw only
 * the paused copy; the event that ends the switch-over asks for the read that matters.
 */
export const SWITCHOVER_HOLD_MS = 2_000;

const STATS = DomainStats.STATE | DomainStats.CPU_TOTAL | DomainStats.BALLOON | DomainStats.VCPU;

/**
 * Keeps one persistent libvirt connection per host (reconnecting with backoff), reads host
 * facts and every domain's stats on each pass and soon after a domain event, judges each
 * host's health (core/health.ts) from the link, the age of its last successful read and ICMP,
 * and turns all of it into a ClusterSnapshot, rebuilt only when something behind it changed.
 * A reconciler of the LoopRunner on every replica (not leader-only); `health` is its second
 * one, which judges health again every `healthIntervalMs` between reads.
 */
export class InventoryLoop implements Reconciler {
  readonly name = 'inventory';
  readonly leaderOnly = false;
  readonly intervalMs: number;
  private readonly links: HostLink[];
  private stopped = false;
  private readonly minBackoff: number;
  private readonly maxBackoff: number;
  private readonly thresholds: HealthThresholds;
  private readonly definitions: DomainDefinitions;
  private revision = 0;
  private cached: ClusterSnapshot | null = null;
  private cachedMaintenance = '';
  /** A build and publication of the snapshot is due (hostChanged), and the revision last published. */
  private publishing = false;
  private published = -1;
  /** The second reconciler: judges health again (a read that hangs, ICMP) between passes. */
  readonly health: Reconciler;

  constructor(private readonly o: InventoryOptions) {
    this.intervalMs = o.intervalMs;
    this.minBackoff = o.minBackoffMs ?? 500;
    this.maxBackoff = o.maxBackoffMs ?? 30_000;
    this.thresholds = { ...DEFAULT_HEALTH_THRESHOLDS, ...o.thresholds };
    this.definitions = new DomainDefinitions({
      refreshMs: 6 * o.intervalMs,
      onDomainXml: o.onDomainXml,
      timed: (host, call, p) => this.timed(host, call, p),
      log: o.log,
    });
    this.health = {
      name: 'health',
      leaderOnly: false,
      intervalMs: o.healthIntervalMs ?? 2_000,
      pass: async (now) => {
        if (this.healthMoved(now)) this.changed(true);
        return undefined;
      },
    };
    this.links = o.hosts.map((host) => ({
      host,
      client: null,
      connecting: false,
      connectedAt: null,
      backoffMs: this.minBackoff,
      retryTimer: null,
      eventTimer: null,
      inflight: null,
      again: false,
      switchovers: new Map(),
      incoming: new Set(),
      waiting: [],
      lastAttemptAt: null,
      lastSuccessAt: null,
      lastAnswerAt: null,
    }));
  }

  /** Without a LoopRunner (bench, tests): connects, reads every host once. */
  async start(): Promise<void> {
    await this.pass(Date.now());
  }

  async close(): Promise<void> {
    this.stopped = true;
    await Promise.all(
      this.links.map(async (l) => {
        if (l.retryTimer) clearTimeout(l.retryTimer);
        if (l.eventTimer) clearTimeout(l.eventTimer);
        this.endSwitchovers(l);
        const c = l.client;
        l.client = null;
        await c?.close();
      }),
    );
    await this.definitions.idle();
    await this.o.icmp?.stop();
  }

  stop(): Promise<void> {
    return this.close();
  }

  /** The live client of a host, or null while it is disconnected. */
  clientFor(host: string): LibvirtClient | null {
    return this.links.find((l) => l.host.name === host)?.client ?? null;
  }

  /** The addresses a VM answers on, from its domain metadata (empty when it has none). */
  addressesOf(vm: string): string[] {
    const uuid = this.uuidOf(vm);
    return uuid ? this.definitions.addressesOf(uuid) : [];
  }

  /** A VM's labels, from its domain metadata (`vms[].match.labels` selects by them). */
  labelsOf(vm: string): VmLabels {
    const uuid = this.uuidOf(vm);
    return uuid ? this.definitions.labelsOf(uuid) : NO_LABELS;
  }

  /**
   * By the cached snapshot's UUID: a scan of every host's domains per VM made a list of
   * 20,000 VMs quadratic, and so did snapshot()'s check of every host's maintenance and
   * fence state per VM (policies ask for each VM's labels in every pass). The cache holds
   * every observation: each new one builds it again (changed()).
   */
  private uuidOf(vm: string): string | undefined {
    return (this.cached ?? this.snapshot()).vms.get(vm)?.uuid;
  }

  /**
   * The cluster as last observed. Built again only when an observation, a link, a health or
   * the maintenance set changed (`revision`), so the reads of one pass share one snapshot.
   */
  snapshot(now = Date.now()): ClusterSnapshot {
    const maintenance = this.o.maintenance?.() ?? new Set<string>();
    const fences = this.links
      .map(
        (l) =>
          `${this.o.fencedAt?.(l.host.name) ?? ''}:${JSON.stringify(this.o.witnesses?.(l.host.name) ?? null)}`,
      )
      .join(',');
    const mkey = `${[...maintenance].sort().join('\n')}|${fences}`;
    if (mkey !== this.cachedMaintenance) {
      this.cachedMaintenance = mkey;
      this.revision++;
    }
    if (this.cached && this.cached.revision === this.revision) return this.cached;
    const current = new Map<string, HostObservation>();
    const previous = new Map<string, HostObservation>();
    for (const l of this.links) {
      if (l.current) current.set(l.host.name, l.current);
      if (l.previous) previous.set(l.host.name, l.previous);
    }
    const before = this.cached;
    const next = buildSnapshot({
      now,
      sites: this.o.sites,
      hosts: this.o.hosts,
      maintenance,
      current,
      previous,
      health: new Map(this.links.map((l) => [l.host.name, this.healthInput(l, before)])),
      thresholds: this.thresholds,
      revision: this.revision,
    });
    this.cached = next;
    this.notify(before, next);
    return next;
  }

  /** One pass: connects hosts not connected (outside their backoff), reads every host. */
  async pass(_now: number): Promise<PassResult> {
    // A host whose read outlasts the interval goes on in the background (its inflight read
    // is not started twice): one hung host does not hold the others' reads.
    const results = await Promise.all(
      this.links.map((l) =>
        Promise.race([
          this.resync(l),
          new Promise<boolean>((r) => setTimeout(r, this.intervalMs, false).unref()),
        ]),
      ),
    );
    // Forget definitions of domains no host has any more (only after a full pass: a host
    // that was not read may still have them).
    if (results.every(Boolean))
      this.definitions.retain(
        new Set(this.links.flatMap((l) => (l.current?.domains ?? []).map((d) => d.uuid))),
      );
    this.changed();
    return { result: results.every(Boolean) ? 'success' : 'partial' };
  }

  /** Kept for callers that read every host at once (bench). */
  async resyncAll(): Promise<void> {
    await this.pass(Date.now());
  }

  private healthInput(l: HostLink, before: ClusterSnapshot | null): HealthInput {
    const prev = before?.hosts.get(l.host.name);
    const address = l.host.managementAddress;
    return {
      connected: l.client !== null,
      connecting: l.connecting,
      connectedAt: l.connectedAt,
      lastSuccessAt: l.lastSuccessAt,
      lastAnswerAt: l.lastAnswerAt,
      lastAttemptAt: l.lastAttemptAt,
      icmp: address ? (this.o.icmp?.last(address) ?? null) : null,
      fencedAt: this.o.fencedAt?.(l.host.name) ?? null,
      witnesses: this.o.witnesses?.(l.host.name) ?? null,
      previous: prev ? { health: prev.health, since: prev.healthSince ?? null } : null,
    };
  }

  /** Whether a host's health, link or ICMP verdict differs from the cached snapshot's. */
  private healthMoved(now: number): boolean {
    const before = this.cached;
    if (!before) return true;
    return this.links.some((l) => {
      const h = before.hosts.get(l.host.name);
      const j = judgeHealth(this.healthInput(l, before), now, this.thresholds);
      return (
        !h ||
        h.health !== j.health ||
        h.evidence?.icmp !== j.evidence.icmp ||
        h.evidence?.connected !== j.evidence.connected
      );
    });
  }

  /**
   * Something behind the snapshot changed: a new revision, built and published as metrics now
   * (once a pass; a health judgement publishes the host series only, see hostChanged).
   */
  private changed(hostsOnly = false): void {
    this.revision++;
    this.publish(hostsOnly);
  }

  /**
   * One host's link or read changed: a new revision (snapshot() builds it when asked), built
   * once the event loop has run the other callbacks waiting, and its host series published (the
   * VM series wait for the pass). A build covers every host, a publication ~40,000 series at
   * 1,000 hosts x 20,000 VMs: 1,000 links lost at once built and published both 1,000 times,
   * holding the main thread for minutes.
   */
  private hostChanged(): void {
    this.revision++;
    if (this.publishing) return;
    this.publishing = true;
    setImmediate(() => {
      this.publishing = false;
      if (!this.stopped) this.publish(true);
    });
  }

  private publish(hostsOnly = false): void {
    const s = this.snapshot();
    if (s.revision === this.published) return;
    this.published = s.revision ?? 0;
    publishSnapshot(this.o.metrics, s, { hostsOnly });
  }

  private notify(before: ClusterSnapshot | null, next: ClusterSnapshot): void {
    if (this.o.onHealthChange)
      for (const h of next.hosts.values()) {
        const was = before?.hosts.get(h.name)?.health ?? 'unknown';
        if (was !== h.health) this.o.onHealthChange(h, was);
      }
    if (this.o.onConflict) {
      const known = new Set((before?.conflicts ?? []).map((c) => c.vm));
      for (const c of next.conflicts ?? []) if (!known.has(c.vm)) this.o.onConflict(c);
    }
  }

  private async connect(l: HostLink): Promise<void> {
    if (this.stopped || l.client || l.connecting) return;
    l.connecting = true;
    const startedAt = Date.now();
    l.lastAttemptAt = startedAt;
    try {
      const client = await (this.o.connect ?? connectLibvirt)(l.host.uri, this.o.connectOptions(l.host));
      // A connect that was in flight when the inventory closed would otherwise stay open
      // (and keep a stopping keizokud alive).
      if (this.stopped) {
        await client.close().catch(() => undefined);
        return;
      }
      l.client = client;
      l.connectedAt = Date.now();
      // Events of the old link that would have ended them are lost: start from none.
      this.endSwitchovers(l);
      l.incoming.clear();
      l.backoffMs = this.minBackoff;
      client.channel.on('close', (err: Error) => {
        if (l.client !== client) return;
        l.client = null;
        l.connectedAt = null;
        this.o.metrics.libvirtErrors.inc({ host: l.host.name, kind: 'connection' });
        this.o.log.warn({ host: l.host.name, err: err.message }, 'libvirt connection lost');
        this.markUnreachable(l);
        this.scheduleReconnect(l);
      });
      client.on('domain-event', (ev: DomainEvent) => this.onEvent(l, ev));
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
      void this.connect(l).then(() => (l.client ? this.resyncNow(l) : undefined));
    }, delay);
  }

  /** Events only make the host's next read come sooner (debounced), as in a level-triggered loop. */
  private onEvent(l: HostLink, ev: DomainEvent): void {
    if (!this.readAfter(l, ev)) return;
    if (l.eventTimer) return;
    l.eventTimer = setTimeout(() => {
      l.eventTimer = null;
      void this.resyncNow(l);
    }, 100);
  }

  /**
   * Whether the event asks for a read of its host. A migration's steps ask for none until the
   * move ends there: iterations and completed jobs change nothing a read reports; the source's
   * pause for the switch-over opens a hold (reads of the host wait, see `afterSwitchovers`), and
   * the destination's definition of the incoming domain comes just before it resumes. The
   * event that ends the step (resumed, stopped, undefined) asks for the read.
   */
  private readAfter(l: HostLink, ev: DomainEvent): boolean {
    if (ev.kind !== 'lifecycle') return false;
    if (ev.event === 'suspended' && ev.detail === MigrationEventDetail.SUSPENDED_MIGRATED) {
      l.switchovers.set(ev.uuid, Date.now());
      return false;
    }
    if (ev.event === 'started' && ev.detail === MigrationEventDetail.STARTED_MIGRATED) {
      l.incoming.add(ev.uuid);
      return true;
    }
    if (ev.event === 'defined' && l.incoming.has(ev.uuid)) return false;
    l.incoming.delete(ev.uuid);
    if (l.switchovers.delete(ev.uuid)) this.wakeWaiting(l);
    return true;
  }

  /** Resolves once no domain of the host is in a switch-over begun less than SWITCHOVER_HOLD_MS ago. */
  private async afterSwitchovers(l: HostLink): Promise<void> {
    for (;;) {
      const now = Date.now();
      for (const [uuid, since] of l.switchovers)
        if (now - since >= SWITCHOVER_HOLD_MS) l.switchovers.delete(uuid);
      if (l.switchovers.size === 0 || this.stopped) return;
      const until = Math.min(...l.switchovers.values()) + SWITCHOVER_HOLD_MS;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, until - now);
        l.waiting.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  private wakeWaiting(l: HostLink): void {
    for (const wake of l.waiting.splice(0)) wake();
  }

  private endSwitchovers(l: HostLink): void {
    l.switchovers.clear();
    this.wakeWaiting(l);
  }

  private async resyncNow(l: HostLink): Promise<void> {
    await this.resync(l);
    this.hostChanged();
  }

  private markUnreachable(l: HostLink): void {
    l.previous = l.current?.reachable ? l.current : l.previous;
    l.current = { host: l.host.name, observedAt: Date.now(), reachable: false };
    this.hostChanged();
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

  /** One read of the host at a time; an event during a read asks for one more after it. */
  private resync(l: HostLink): Promise<boolean> {
    if (l.inflight) {
      l.again = true;
      return l.inflight;
    }
    l.inflight = this.read(l).finally(() => {
      l.inflight = null;
      if (l.again && !this.stopped) {
        l.again = false;
        void this.resyncNow(l);
      }
    });
    return l.inflight;
  }

  private async read(l: HostLink): Promise<boolean> {
    if (!l.client && !l.retryTimer) await this.connect(l);
    if (!l.client) return false;
    await this.afterSwitchovers(l);
    const c = l.client;
    if (!c) return false;
    const name = l.host.name;
    const startedAt = Date.now();
    l.lastAttemptAt = startedAt;
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
      await this.definitions.read(name, c, domains, Date.now());
      if (l.client !== c) return false; // the link was lost meanwhile: this read is not current
      l.previous = l.current?.reachable ? l.current : l.previous;
      l.current = {
        host: name,
        observedAt: Date.now(),
        reachable: true,
        cpus: info.cpus,
        memoryKiB: info.memoryKiB,
        cpuTimes,
        memory,
        domains: domains.map((d) => {
          const state = Number(d.stats['state.state']);
          const reason = Number(d.stats['state.reason']);
          const migrating = state === DomainState.PAUSED && reason === PausedReason.MIGRATION;
          const crashed =
            state === DomainState.CRASHED ||
            (state === DomainState.SHUTOFF && reason === ShutoffReason.CRASHED);
          return {
            name: d.name,
            uuid: d.uuid,
            state: domainStateNames[state] ?? 'unknown',
            ...(migrating ? { migrating } : {}),
            ...(crashed ? { crashed } : {}),
            stats: d.stats,
          };
        }),
      };
      // As of its start (a read that started later and has not answered is "asked since").
      l.lastSuccessAt = startedAt;
      l.lastAnswerAt = l.current.observedAt;
      return true;
    } catch (e) {
      this.o.metrics.libvirtErrors.inc({ host: name, kind: 'call' });
      this.o.log.warn({ host: name, err: (e as Error).message }, 'inventory of host failed');
      return false;
    }
  }
}
