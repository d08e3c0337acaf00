import type { Mechanism } from '../../../src/config/index.ts';
import { loadTiersFile } from '../../../src/config/index.ts';
import type { TimeWindow } from '../../../src/core/tiers.ts';
import {
  buildReport,
  type DrillMoveInput,
  type DrillReport,
  type RttPoint,
} from '../../../src/drills/report/index.ts';
import { computeWindow, type ProbeSample } from '../../../src/probe/outage.ts';

export const tiers = await loadTiersFile();

/** A seeded generator (mulberry32), so fixtures are the same on every run. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const T0 = Date.UTC(2026, 1, 3, 1, 0, 0); // 2026-02-03 10:00 JST

interface Plan {
  mechanism: Mechanism;
  from: string;
  to: string;
  /** How long the move takes, and the outage near its end. */
  durationMs: number;
  outageMs: number;
}

/**
 * A drill of `moves` moves of one VM, pinged every `intervalMs`: outages near the end of each
 * move (the switch-over), figures computed from the samples as the probe would.
 */
export function syntheticReport(
  o: { moves?: number; vm?: string; tier?: string; intervalMs?: number; plans?: Plan[]; seed?: number } = {},
): DrillReport {
  const rand = seeded(o.seed ?? 7);
  const intervalMs = o.intervalMs ?? 20;
  const n = o.plans?.length ?? o.moves ?? 20;
  const vm = o.vm ?? 'web1';
  const plans: Plan[] =
    o.plans ??
    Array.from({ length: n }, (_, i): Plan => {
      const mechanism: Mechanism =
        i === n - 1 && n > 2 ? 'cross-site-live-migration' : i % 5 === 3 ? 'drs' : 'live-migration';
      const hosts =
        mechanism === 'cross-site-live-migration' ? ['h1', 'h3'] : i % 2 ? ['h2', 'h1'] : ['h1', 'h2'];
      return {
        mechanism,
        from: hosts[0]!,
        to: hosts[1]!,
        durationMs: mechanism === 'cross-site-live-migration' ? 14_000 : 2_500 + Math.round(rand() * 2_000),
        outageMs:
          mechanism === 'cross-site-live-migration' ? 8_000 : i === 6 ? 2_300 : 80 + Math.round(rand() * 220),
      };
    });
  const samples: ProbeSample[] = [];
  const moves: DrillMoveInput[] = [];
  const outageWindows: TimeWindow[] = [];
  let t = T0 + 2_000;
  plans.forEach((p, i) => {
    const startedMs = t;
    const endedMs = t + p.durationMs;
    const outStart = endedMs - p.outageMs - 150;
    outageWindows.push({ startMs: outStart, endMs: outStart + p.outageMs });
    moves.push({
      index: i + 1,
      vm,
      mechanism: p.mechanism,
      from: p.from,
      to: p.to,
      startedMs,
      endedMs,
      libvirtDowntimeMs: Math.round(p.outageMs * 0.8),
      probe: null,
      sessionSurvived: p.outageMs < 5_000,
    });
    t = endedMs + 2_000 + Math.round(rand() * 1_000);
  });
  const endedAt = t;
  let seq = 0;
  for (let s = T0; s < endedAt; s += intervalMs) {
    const out = outageWindows.some((w) => s >= w.startMs && s < w.endMs);
    const rtt = out ? null : 0.4 + rand() * 0.6 + (rand() < 0.002 ? 2 + rand() * 3 : 0);
    samples.push({ address: '10.0.0.10', seq: seq++, sentAt: s, receivedAt: rtt === null ? null : s + rtt });
  }
  // After the switch-over the first replies are slower (ARP, caches), as seen in the lab.
  for (const w of outageWindows) {
    const after = samples.filter((x) => x.sentAt >= w.endMs).slice(0, 3);
    after.forEach((x, k) => {
      x.receivedAt = x.sentAt + 6 - k * 2 + rand();
    });
  }
  for (const m of moves) {
    const r = computeWindow(samples, { intervalMs, from: m.startedMs, to: m.endedMs });
    const longest = r.outages.reduce<(typeof r.outages)[number] | null>(
      (a, x) => (a === null || x.durationMs > a.durationMs ? x : a),
      null,
    );
    m.probe = {
      sent: r.sent,
      lost: r.lost,
      lossRate: r.lossRate,
      rttMinMs: r.rttMs?.min ?? null,
      rttMaxMs: r.rttMs?.max ?? null,
      rttAvgMs: r.rttMs?.avg ?? null,
      outageMs: r.outageMs,
      outageStartMs: longest?.start ?? null,
      outageEndMs: longest?.end ?? null,
    };
  }
  const whole = computeWindow(samples, { intervalMs });
  const rtt: RttPoint[] = samples.map((x) => ({
    tMs: x.sentAt,
    rttMs: x.receivedAt === null ? null : x.receivedAt - x.sentAt,
  }));
  return buildReport(
    {
      id: 'drill-20260203-100000',
      scenario: 'live-migration',
      startedAt: T0,
      endedAt,
      vms: [vm],
      tier: o.tier ?? 'core',
      parameters: { probeIntervalMs: intervalMs, sites: 'dc1, dc2', wanRateMbit: 100, postCopy: false },
      moves,
      rtt,
      outages: whole.outages.map((w) => ({ startMs: w.start, endMs: w.end })),
    },
    tiers,
  );
}
