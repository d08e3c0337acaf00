import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { computeWindow, type ProbeSample } from '../../src/probe/outage.ts';
import { PingProber } from '../../src/probe/ping-prober.ts';
import { SampleRing } from '../../src/probe/sample-ring.ts';

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

export interface AgentOptions {
  intervalMs: number;
  timeoutMs: number;
  retentionSec: number;
  reportAfterIntervals: number;
  onOutage: (o: OutageReport) => void;
}

interface Probed {
  target: Target;
  probers: PingProber[];
  rings: SampleRing[];
  /** Settled up to here (send time): samples after it may still get their reply. */
  settledTo: number;
  /** End of the last outage reported, so each is reported once. */
  reportedTo: number;
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
        help: 'Probe send slots',
        labelNames: ['target'],
        registers: r,
      }),
      lost: new Counter({
        name: 'keizoku_probe_lost_total',
        help: 'Send slots no address answered in time',
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

  /** Probes exactly these targets from now on (new ones started, gone ones stopped). */
  async setTargets(targets: readonly Target[]): Promise<void> {
    const wanted = new Map(targets.map((t) => [t.name, t]));
    for (const [name, p] of this.probed) {
      const w = wanted.get(name);
      if (!w || w.addresses.join(',') !== p.target.addresses.join(',')) {
        this.probed.delete(name);
        await Promise.all(p.probers.map((x) => x.stop()));
        for (const m of [this.m.rtt, this.m.outage, this.m.sent, this.m.lost, this.m.up])
          m.remove({ target: name });
      }
    }
    const capacity = Math.ceil((this.o.retentionSec * 1000) / this.o.intervalMs) + 10;
    for (const t of targets) {
      if (this.probed.has(t.name)) continue;
      const probers = t.addresses.map((a) => new PingProber(a, { intervalMs: this.o.intervalMs }));
      for (const p of probers) p.start();
      const now = Date.now();
      this.probed.set(t.name, {
        target: { name: t.name, addresses: [...t.addresses] },
        probers,
        rings: t.addresses.map((a) => new SampleRing(a, capacity)),
        settledTo: now,
        reportedTo: now,
      });
    }
    this.m.targets.set(this.probed.size);
  }

  targets(): { name: string; addresses: string[]; samples: number; oldestMs: number | null }[] {
    return [...this.probed.values()].map((p) => ({
      name: p.target.name,
      addresses: p.target.addresses,
      samples: p.rings.reduce((s, r) => s + r.size, 0),
      oldestMs: Math.min(...p.rings.map((r) => r.oldest() ?? Number.POSITIVE_INFINITY)) || null,
    }));
  }

  has(target: string): boolean {
    return this.probed.has(target);
  }

  /** Pids of the running ping processes (teardown by pid). */
  pids(): number[] {
    return [...this.probed.values()].flatMap((p) =>
      p.probers.map((x) => x.pid).filter((x): x is number => x !== null),
    );
  }

  /** The target's samples in [from, to]: settled ones and the recent ones still with ping. */
  samples(target: string, fromMs: number, toMs: number): ProbeSample[] {
    const p = this.probed.get(target);
    if (!p) return [];
    const settled = p.rings.flatMap((r) => r.between(fromMs, toMs));
    const recent = p.probers.flatMap((pr) =>
      pr.samples().filter((s) => s.sentAt > p.settledTo && s.sentAt >= fromMs && s.sentAt <= toMs),
    );
    return [...settled, ...recent];
  }

  /** Moves samples older than the reply timeout into the rings; metrics and outage reports. */
  settle(now = Date.now()): void {
    for (const p of this.probed.values()) {
      const until = now - this.o.timeoutMs - this.o.intervalMs;
      if (until <= p.settledTo) continue;
      const fresh: ProbeSample[] = [];
      p.probers.forEach((pr, i) => {
        const ring = p.rings[i]!;
        for (const s of pr.samples()) {
          if (s.sentAt > until || s.sentAt <= ring.lastSentAt) continue;
          ring.push(s.sentAt, s.receivedAt);
          fresh.push(s);
        }
        pr.forget(until - 5 * this.o.intervalMs);
      });
      const from = p.settledTo;
      p.settledTo = until;
      if (fresh.length === 0) continue;
      const name = p.target.name;
      const w = computeWindow(fresh, { intervalMs: this.o.intervalMs, timeoutMs: this.o.timeoutMs });
      this.m.sent.inc({ target: name }, w.sent);
      this.m.lost.inc({ target: name }, w.lost);
      this.m.up.set({ target: name }, w.sent > w.lost ? 1 : 0);
      for (const s of fresh)
        if (s.receivedAt !== null && s.receivedAt - s.sentAt <= this.o.timeoutMs)
          this.m.rtt.observe({ target: name }, (s.receivedAt - s.sentAt) / 1000);
      // Outages need context before the second just settled: look back over the last minute.
      const look = this.samples(name, Math.max(from - 60_000, p.reportedTo), until);
      const full = computeWindow(look, {
        intervalMs: this.o.intervalMs,
        timeoutMs: this.o.timeoutMs,
        to: until,
      });
      for (const out of full.outages) {
        if (out.open || out.end <= p.reportedTo) continue;
        if (out.durationMs < this.o.reportAfterIntervals * this.o.intervalMs) continue;
        p.reportedTo = out.end;
        this.m.outage.observe({ target: name }, out.durationMs / 1000);
        this.o.onOutage({
          target: name,
          addresses: p.target.addresses,
          startMs: Math.round(out.start),
          endMs: Math.round(out.end),
          outageMs: Math.round(out.durationMs),
          lost: out.lostSlots,
        });
      }
    }
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await Promise.all([...this.probed.values()].flatMap((p) => p.probers.map((x) => x.stop())));
    this.probed.clear();
  }
}
