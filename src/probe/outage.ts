// The measurement core: outage windows, loss and RTT from probe samples. Pure: samples in,
// numbers out, no clock read. Definitions (with examples) are in docs/probe.md.

export interface ProbeSample {
  /** Which of the target's addresses (or URL, or session) was probed. */
  address: string;
  /** Sequence number, unique per address (duplicates of one are merged). */
  seq: number;
  /** When the probe left, ms since the epoch (fractions allowed). */
  sentAt: number;
  /** When its reply arrived, or null if none did. */
  receivedAt: number | null;
  /** The RTT as the prober measured it; receivedAt - sentAt when absent. */
  rttMs?: number;
}

export interface Outage {
  /** Send time of the first probe of the outage that left the target unreachable. */
  start: number;
  /** Arrival of the first in-time reply to a probe sent after a failed one; the window end if none came. */
  end: number;
  durationMs: number;
  /** Failed probes inside the outage. */
  lostCount: number;
  /** True when no reply ended it before the window closed (the real outage is at least this long). */
  open: boolean;
  /** True when the target was not seen reachable in the window before it (it may have started earlier). */
  atWindowStart: boolean;
}

export interface AddressCounts {
  sent: number;
  received: number;
  lost: number;
}

export interface WindowResult {
  /** Probes sent within the window, all addresses together: 実施回数. */
  sent: number;
  /** Probes answered within the timeout. */
  received: number;
  /** Failed probes (sent while no address of the target answered): 失敗回数. */
  lost: number;
  /** lost / sent (0 when nothing was sent): 失敗率. */
  lossRate: number;
  rttMs: { min: number; max: number; avg: number } | null;
  /** The longest outage (通信断), 0 when there was none. */
  outageMs: number;
  outages: Outage[];
  firstSentAt: number | null;
  lastReplyAt: number | null;
  /** Median time between consecutive probes of one address: the resolution actually achieved. */
  medianIntervalMs: number | null;
  perAddress: Record<string, AddressCounts>;
}

export interface WindowOptions {
  /** Only probes sent within [from, to] count; probes before `from` only seed which addresses answer. */
  from?: number;
  to?: number;
  /** A reply later than this after its probe counts as lost; an answer older than this is stale (default 1000 ms). */
  timeoutMs?: number;
  /** The nominal interval; not used by the arithmetic, which works on real send times. */
  intervalMs?: number;
}

export const DEFAULT_TIMEOUT_MS = 1_000;

const answered = (s: ProbeSample, timeoutMs: number): boolean =>
  s.receivedAt !== null && s.receivedAt >= s.sentAt && s.receivedAt - s.sentAt <= timeoutMs;

const bySendTime = (a: ProbeSample, b: ProbeSample): number =>
  a.sentAt - b.sentAt || (a.address < b.address ? -1 : a.address > b.address ? 1 : a.seq - b.seq);

/** One sample per (address, seq): an answered one over a lost one, then the earliest reply. Sorted by send time. */
export function dedupe(samples: readonly ProbeSample[]): ProbeSample[] {
  const byKey = new Map<string, ProbeSample>();
  for (const s of samples) {
    const k = `${s.address}\u0000${s.seq}`;
    const prev = byKey.get(k);
    const better =
      !prev ||
      (prev.receivedAt === null && s.receivedAt !== null) ||
      (prev.receivedAt !== null && s.receivedAt !== null && s.receivedAt < prev.receivedAt);
    if (better) byKey.set(k, s);
  }
  return [...byKey.values()].sort(bySendTime);
}

/**
 * Marks each probe failed or not. A probe fails when, once it is sent, no address of the target
 * counts as answering: an address answers while its latest probe was answered in time and was
 * sent no more than `timeoutMs` ago. With one address, failed = lost.
 */
function failures(
  all: readonly ProbeSample[],
  first: number,
  timeoutMs: number,
): { failed: boolean[]; upBefore: boolean } {
  const latest = new Map<string, { sentAt: number; ok: boolean }>();
  const up = (t: number) => [...latest.values()].some((l) => l.ok && t - l.sentAt <= timeoutMs);
  for (let i = 0; i < first; i++) {
    const s = all[i]!;
    latest.set(s.address, { sentAt: s.sentAt, ok: answered(s, timeoutMs) });
  }
  const firstAt = all[first]?.sentAt ?? 0;
  const upBefore = up(firstAt);
  const failed: boolean[] = [];
  for (let i = first; i < all.length; i++) {
    const s = all[i]!;
    latest.set(s.address, { sentAt: s.sentAt, ok: answered(s, timeoutMs) });
    failed.push(!up(s.sentAt));
  }
  return { failed, upBefore };
}

/**
 * Outages: each failed probe leaves the target unreachable from its send time to the earliest
 * in-time reply to any probe sent after it; overlapping such intervals merge into one outage.
 */
function findOutages(
  win: readonly ProbeSample[],
  failed: readonly boolean[],
  upBefore: boolean,
  timeoutMs: number,
  windowEnd: number,
): Outage[] {
  // earliestAfter[i]: the earliest in-time reply among probes i+1.. (reordering: a later probe may answer first).
  const earliestAfter = new Array<number>(win.length).fill(Number.POSITIVE_INFINITY);
  for (let i = win.length - 2; i >= 0; i--) {
    const next = win[i + 1]!;
    const r = answered(next, timeoutMs) ? next.receivedAt! : Number.POSITIVE_INFINITY;
    earliestAfter[i] = Math.min(earliestAfter[i + 1]!, r);
  }
  const outages: Outage[] = [];
  let cur: Outage | null = null;
  let seenUp = upBefore;
  for (let i = 0; i < win.length; i++) {
    if (!failed[i]) {
      seenUp = true;
      continue;
    }
    const t = win[i]!.sentAt;
    const until = earliestAfter[i]!;
    if (cur && t <= cur.end) {
      cur.end = Math.max(cur.end, until);
      cur.lostCount++;
      continue;
    }
    if (cur) outages.push(cur);
    cur = { start: t, end: until, durationMs: 0, lostCount: 1, open: false, atWindowStart: !seenUp };
  }
  if (cur) outages.push(cur);
  for (const o of outages) {
    if (!Number.isFinite(o.end)) {
      o.end = Math.max(windowEnd, o.start);
      o.open = true;
    }
    o.durationMs = o.end - o.start;
  }
  return outages;
}

function median(xs: number[]): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

function countsAndRtt(win: readonly ProbeSample[], timeoutMs: number) {
  const perAddress: Record<string, AddressCounts> = {};
  const rtts: number[] = [];
  const gaps: number[] = [];
  const lastSent = new Map<string, number>();
  let lastReplyAt: number | null = null;
  for (const s of win) {
    const pa = perAddress[s.address] ?? { sent: 0, received: 0, lost: 0 };
    perAddress[s.address] = pa;
    pa.sent++;
    const prev = lastSent.get(s.address);
    if (prev !== undefined) gaps.push(s.sentAt - prev);
    lastSent.set(s.address, s.sentAt);
    if (answered(s, timeoutMs)) {
      pa.received++;
      rtts.push(s.rttMs ?? s.receivedAt! - s.sentAt);
      lastReplyAt = Math.max(lastReplyAt ?? s.receivedAt!, s.receivedAt!);
    } else pa.lost++;
  }
  // A loop, not Math.min(...rtts): an hour of probes is more arguments than a call can take.
  const rttMs = rtts.length
    ? {
        min: rtts.reduce((a, b) => Math.min(a, b)),
        max: rtts.reduce((a, b) => Math.max(a, b)),
        avg: rtts.reduce((a, b) => a + b, 0) / rtts.length,
      }
    : null;
  return { perAddress, rttMs, lastReplyAt, medianIntervalMs: median(gaps) };
}

/**
 * Measures one target (one or more addresses) over a window: loss, RTT and outages. Samples of
 * all the target's addresses go in together; see docs/probe.md for the definitions.
 */
export function computeWindow(samples: readonly ProbeSample[], o: WindowOptions = {}): WindowResult {
  const timeoutMs = o.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const all = dedupe(samples).filter((s) => o.to === undefined || s.sentAt <= o.to);
  let first = all.findIndex((s) => o.from === undefined || s.sentAt >= o.from);
  if (first < 0) first = all.length;
  const win = all.slice(first);
  const { failed, upBefore } = failures(all, first, timeoutMs);
  const c = countsAndRtt(win, timeoutMs);
  const lastSentAt = win.at(-1)?.sentAt ?? Number.NEGATIVE_INFINITY;
  const windowEnd = o.to ?? Math.max(lastSentAt, c.lastReplyAt ?? lastSentAt);
  const outages = findOutages(win, failed, upBefore, timeoutMs, windowEnd);
  const lost = failed.filter(Boolean).length;
  const received = Object.values(c.perAddress).reduce((n, a) => n + a.received, 0);
  return {
    sent: win.length,
    received,
    lost,
    lossRate: win.length ? lost / win.length : 0,
    rttMs: c.rttMs,
    outageMs: outages.reduce((m, x) => Math.max(m, x.durationMs), 0),
    outages,
    firstSentAt: win[0]?.sentAt ?? null,
    lastReplyAt: c.lastReplyAt,
    medianIntervalMs: c.medianIntervalMs,
    perAddress: c.perAddress,
  };
}
