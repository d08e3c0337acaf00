import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { computeWindow, type ProbeSample } from '../../src/probe/outage.ts';
import { PingProber } from '../../src/probe/ping-prober.ts';
import { SampleRing } from '../../src/probe/sample-ring.ts';
import { type WindowStats, windowStats } from '../../src/probe/window-stats.ts';

/**
 * The probing of keizoku-probe: one long-lived `ping -D -O` per address, samples settled into
 * a ring per address every second, Prometheus metrics from the settled samples, and outages
 * (longer than a few intervals) handed to a callback once they have ended.
 */

export interface Target {
  name: string;
  addresses: string[];
}

export interface OutageReport {
  target: string;
  addresses: string[];
  startMs: number;
  endMs: number;
  outageMs: number;
  lost: number;
}

/** What probes one address continuously (a PingProber; tests pass recorded streams). */
export interface AddressProber {
  readonly pid: number | undefined;
  start(): void;
  samples(): ProbeSample[];
  discardBefore(t: number): void;
  stop(): Promise<unknown>;
}

export interface AgentOptions {
  intervalMs: number;
  timeoutMs: number;
  retentionSec: number;
  reportAfterIntervals: number;
  onOutage: (o: OutageReport) => void;
  /** Default: one long-lived iputils ping per address. */
  prober?: (address: string, intervalMs: number) => AddressProber;
}

interface Address {
  address: string;
  /** Null once the address left the target: its ring keeps its history. */
  prober: AddressProber | null;
  ring: SampleRing;
}

interface Probed {
  target: Target;
  addresses: Address[];
  /** Settled up to here (send time): samples after it may still get their reply. */
  settledTo: number;
  /** End of the last outage looked at, so each is reported once. */
  reportedTo: number;
  /** Start of an outage still running at the last settle. */
  openSince: number | null;
}

export class ProbeAgent {
  readonly registry = new Registry();
  private readonly probed = new Map<string, Probed>();
  private timer: NodeJS.Timeout | null = null;
  private readonly m;

  constructor(private readonly o: AgentOptions) {
    const r = [this.registry];
    this.m = {
      rtt: new Histogram({
        name: 'keizoku_probe_rtt_seconds',
        help: 'Round-trip time of answered probes',
        labelNames: ['target'],
        buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
        registers: r,
      }),
      outage: new Histogram({
        name: 'keizoku_probe_outage_seconds',
        help: 'Outages (通信断): no address of the target answered, first lost send to first reply',
        labelNames: ['target'],
        buckets: [0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 1, 2, 5, 10, 30, 60, 120],
        registers: r,
      }),
      sent: new Counter({
        name: 'keizoku_probe_sent_total',
        help: 'Probes sent to any address of the target',
        labelNames: ['target'],
        registers: r,
      }),
      lost: new Counter({
        name: 'keizoku_probe_lost_total',
        help: 'Probes sent while no address of the target answered (failed)',
        labelNames: ['target'],
        registers: r,
      }),
      up: new Gauge({
        name: 'keizoku_probe_up',
        help: '1 when the target answered in the last settled second',
        labelNames: ['target'],
        registers: r,
      }),
      targets: new Gauge({ name: 'keizoku_probe_targets', help: 'Targets being probed', registers: r }),
    };
  }

  start(): void {
    this.timer = setInterval(() => this.settle(), 1_000);
  }

  /**
   * Probes exactly these targets from now on: new ones started, gone ones stopped. A target
   * whose addresses change keeps its history: added addresses are probed, removed ones stop
   * being probed but their samples stay (a VM that moved site keeps one record).
   */
  async setTargets(targets: readonly Target[]): Promise<void> {
    const wanted = new Map(targets.map((t) => [t.name, t]));
    const stops: Promise<unknown>[] = [];
    for (const [name, p] of this.probed) {
      if (wanted.has(name)) continue;
      this.probed.delete(name);
      for (const a of p.addresses) if (a.prober) stops.push(a.prober.stop());
      for (const m of [this.m.rtt, this.m.outage, this.m.sent, this.m.lost, this.m.up])
        m.remove({ target: name });
    }
    const capacity = Math.ceil((this.o.retentionSec * 1000) / this.o.intervalMs) + 10;
    const now = Date.now();
    for (const t of targets) {
      let p = this.probed.get(t.name);
      if (!p) {
        p = { target: t, addresses: [], settledTo: now, reportedTo: now, openSince: null };
        this.probed.set(t.name, p);
      }
      p.target = { name: t.name, addresses: [...t.addresses] };
      for (const a of p.addresses)
        if (a.prober && !t.addresses.includes(a.address)) {
          stops.push(a.prober.stop());
          a.prober = null;
        }
      for (const address of t.addresses) {
        let a = p.addresses.find((x) => x.address === address);
        if (!a) {
          a = { address, prober: null, ring: new SampleRing(address, capacity) };
          p.addresses.push(a);
        }
        if (!a.prober) {
          a.prober = this.o.prober
            ? this.o.prober(address, this.o.intervalMs)
            : new PingProber(address, { intervalMs: this.o.intervalMs });
          a.prober.start();
        }
      }
    }
    await Promise.all(stops);
    this.m.targets.set(this.probed.size);
  }

  targets(): { name: string; addresses: string[]; samples: number; oldestMs: number | null }[] {
    return [...this.probed.values()].map((p) => {
      const oldest = p.addresses
        .map((a) => a.ring.oldest())
        .filter((x): x is number => x !== null)
        .reduce<number | null>((m, x) => (m === null || x < m ? x : m), null);
      return {
        name: p.target.name,
        addresses: p.target.addresses,
        samples: p.addresses.reduce((n, a) => n + a.ring.size, 0),
        oldestMs: oldest,
      };
    });
  }

  has(target: string): boolean {
    return this.probed.has(target);
  }

  /** Pids of the running ping processes (teardown by pid). */
  pids(): number[] {
    return [...this.probed.values()].flatMap((p) =>
      p.addresses.map((a) => a.prober?.pid).filter((x): x is number => x !== undefined),
    );
  }

  /** The target's samples sent in [from, to]: settled ones and the recent ones still with ping. */
  samples(target: string, fromMs: number, toMs: number): ProbeSample[] {
    const p = this.probed.get(target);
    if (!p) return [];
    const settled = p.addresses.flatMap((a) => a.ring.between(fromMs, toMs));
    const recent = p.addresses.flatMap((a) =>
      (a.prober?.samples() ?? []).filter(
        (s) => s.sentAt > p.settledTo && s.sentAt >= fromMs && s.sentAt <= toMs,
      ),
    );
    return [...settled, ...recent];
  }

  /** The studies' figures for the target over [from, to], or null when it is not probed. */
  window(
    target: string,
    fromMs: number,
    toMs: number,
  ): { stats: WindowStats; samples: ProbeSample[] } | null {
    if (!this.probed.has(target)) return null;
    // Probes shortly before the period say whether the target was reachable when it opened.
    const context = this.o.timeoutMs + 2 * this.o.intervalMs;
    const all = this.samples(target, fromMs - context, toMs);
    return {
      stats: windowStats(all, fromMs, toMs, { timeoutMs: this.o.timeoutMs }),
      samples: all.filter((s) => s.sentAt >= fromMs),
    };
  }

  /**
   * Moves samples older than the reply timeout into the rings, counts them into the metrics,
   * and reports the outages that ended. Each target is looked at from the start of an outage
   * still running at the last settle (or just before the newly settled samples otherwise).
   */
  settle(now = Date.now()): void {
    const until = now - this.o.timeoutMs - this.o.intervalMs;
    const context = this.o.timeoutMs + 2 * this.o.intervalMs;
    for (const p of this.probed.values()) {
      if (until <= p.settledTo) continue;
      let firstFresh = Number.POSITIVE_INFINITY;
      for (const { prober, ring } of p.addresses) {
        if (!prober) continue;
        for (const s of prober.samples()) {
          if (s.sentAt > until || s.sentAt <= ring.lastSentAt) continue;
          ring.push(s.sentAt, s.receivedAt);
          firstFresh = Math.min(firstFresh, s.sentAt);
        }
        prober.discardBefore(until - context);
      }
      p.settledTo = until;
      if (!Number.isFinite(firstFresh)) continue;
      const name = p.target.name;
      const fresh = computeWindow(this.samples(name, firstFresh - context, until), {
        from: firstFresh,
        to: until,
        timeoutMs: this.o.timeoutMs,
      });
      this.m.sent.inc({ target: name }, fresh.sent);
      this.m.lost.inc({ target: name }, fresh.lost);
      this.m.up.set({ target: name }, fresh.received > 0 ? 1 : 0);
      for (const { ring } of p.addresses)
        for (const s of ring.between(firstFresh, until))
          if (s.receivedAt !== null && s.receivedAt - s.sentAt <= this.o.timeoutMs)
            this.m.rtt.observe({ target: name }, (s.receivedAt - s.sentAt) / 1000);
      const lookFrom = Math.max(p.openSince ?? firstFresh, p.reportedTo);
      const look =
        p.openSince === null
          ? fresh
          : computeWindow(this.samples(name, lookFrom - context, until), {
              from: lookFrom,
              to: until,
              timeoutMs: this.o.timeoutMs,
            });
      p.openSince = null;
      for (const out of look.outages) {
        if (out.open) {
          p.openSince = out.start;
          continue;
        }
        if (out.end <= p.reportedTo) continue;
        p.reportedTo = out.end;
        if (out.durationMs <= this.o.reportAfterIntervals * this.o.intervalMs) continue;
        this.m.outage.observe({ target: name }, out.durationMs / 1000);
        this.o.onOutage({
          target: name,
          addresses: p.target.addresses,
          startMs: Math.round(out.start),
          endMs: Math.round(out.end),
          outageMs: Math.round(out.durationMs * 10) / 10,
          lost: out.lostCount,
        });
      }
    }
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await Promise.all([...this.probed.values()].flatMap((p) => p.addresses.map((a) => a.prober?.stop())));
    this.probed.clear();
  }
}
