// The studies' table row for one target over one period: 実施回数 (sent), 失敗回数 (lost),
// 失敗率 (lossRate), RTT min/max/avg and 通信断 (the longest outage) with when it ran, plus
// every outage. Pure: a thin, flat and rounded view of computeWindow (docs/probe.md).
import { computeWindow, DEFAULT_TIMEOUT_MS, type ProbeSample } from './outage.ts';

export interface OutageWindow {
  startMs: number;
  endMs: number;
  durationMs: number;
  /** Probes sent during it that no address answered. */
  lost: number;
  /** No reply ended it before the period closed: the real outage is at least this long. */
  open: boolean;
  /** The target was not seen reachable before it in the period: it may have started earlier. */
  atWindowStart: boolean;
}

export interface WindowStats {
  fromMs: number;
  toMs: number;
  sent: number;
  lost: number;
  lossRate: number;
  rttMinMs: number | null;
  rttMaxMs: number | null;
  rttAvgMs: number | null;
  /** The longest outage, 0 when there was none. */
  outageMs: number;
  outageStartMs: number | null;
  outageEndMs: number | null;
  outages: OutageWindow[];
}

export interface WindowStatsOptions {
  /** A reply later than this counts as lost (default 1000 ms). */
  timeoutMs?: number;
}

/** Rounds to the microsecond: the -D timestamps carry no more. */
const us = (x: number): number => Math.round(x * 1000) / 1000;

/**
 * Loss, RTT and outages of one target's samples (all its addresses together) sent within
 * [fromMs, toMs]. Samples before `fromMs` may be passed: they only tell whether the target was
 * reachable when the period opened. An outage still running at `toMs` ends there, marked open.
 */
export function windowStats(
  samples: readonly ProbeSample[],
  fromMs: number,
  toMs: number,
  o: WindowStatsOptions = {},
): WindowStats {
  const w = computeWindow(samples, {
    from: fromMs,
    to: toMs,
    timeoutMs: o.timeoutMs ?? DEFAULT_TIMEOUT_MS,
  });
  let longest: (typeof w.outages)[number] | null = null;
  for (const x of w.outages) if (!longest || x.durationMs > longest.durationMs) longest = x;
  return {
    fromMs,
    toMs,
    sent: w.sent,
    lost: w.lost,
    lossRate: Math.round(w.lossRate * 1e6) / 1e6,
    rttMinMs: w.rttMs ? us(w.rttMs.min) : null,
    rttMaxMs: w.rttMs ? us(w.rttMs.max) : null,
    rttAvgMs: w.rttMs ? us(w.rttMs.avg) : null,
    outageMs: longest ? us(longest.durationMs) : 0,
    outageStartMs: longest ? us(longest.start) : null,
    outageEndMs: longest ? us(longest.end) : null,
    outages: w.outages.map((x) => ({
      startMs: us(x.start),
      endMs: us(x.end),
      durationMs: us(x.durationMs),
      lost: x.lostCount,
      open: x.open,
      atWindowStart: x.atWindowStart,
    })),
  };
}
