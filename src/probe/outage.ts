// The measurement core: outage windows, loss and RTT from probe samples. Pure: samples in,
// numbers out, no clock read. Definitions are in docs/probe.md.

export interface ProbeSample {
  /** Which of the target's addresses was probed. */
  address: string;
  seq: number;
  /** When the probe left, ms since the epoch (fractions allowed). */
  sentAt: number;
  /** When its reply arrived, or null if none did. */
  receivedAt: number | null;
}

export interface Outage {
  /** Send time of the first probe of the window that no address answered. */
  start: number;
  /** Arrival of the first reply to a probe sent after `start`; the window's end if none came. */
  end: number;
  durationMs: number;
  lostSlots: number;
  /** True when the window closed before any reply came back. */
  open: boolean;
}

export interface WindowResult {
  /** Send slots (one per interval across all addresses): what the studies call 実施回数. */
  sent: number;
  /** Slots in which no address answered: 失敗回数. */
  lost: number;
  /** lost / sent: 失敗率. */
  lossRate: number;
  rttMs: { min: number; max: number; avg: number } | null;
  /** The longest outage (通信断), 0 when there was none. */
  outageMs: number;
  outages: Outage[];
  perAddress: Record<string, { sent: number; received: number }>;
}

export interface WindowOptions {
  intervalMs: number;
  /** A reply later than this after its probe counts as lost (default 1000 ms). */
  timeoutMs?: number;
  /** Only probes sent within [from, to] count; `to` also closes an open outage. */
  from?: number;
  to?: number;
}

const replied = (s: ProbeSample, timeoutMs: number) =>
  s.receivedAt !== null && s.receivedAt - s.sentAt <= timeoutMs;

/** Duplicate replies (same address and sequence) keep the earliest; reordering is undone by send time. */
export function dedupe(samples: readonly ProbeSample[]): ProbeSample[] {
  const byKey = new Map<string, ProbeSample>();
  for (const s of samples) {
    const k = `${s.address}\u0000${s.seq}`;
    const prev = byKey.get(k);
    if (
      !prev ||
      (prev.receivedAt === null && s.receivedAt !== null) ||
      (s.receivedAt !== null && prev.receivedAt !== null && s.receivedAt < prev.receivedAt)
    ) {
      byKey.set(k, prev ? { ...s, sentAt: Math.min(prev.sentAt, s.sentAt) } : s);
    }
  }
  return [...byKey.values()].sort((a, b) => a.sentAt - b.sentAt);
}

/**
 * Measures one target (one or more addresses) over a window. Probes are grouped into send
 * slots of `intervalMs`; a slot is reachable when any address answered a probe of it in time.
 * An outage runs from the send time of the first unreachable slot to the arrival of the first
 * reply to a probe of a later slot.
 */
export function computeWindow(samples: readonly ProbeSample[], o: WindowOptions): WindowResult {
  const timeoutMs = o.timeoutMs ?? 1_000;
  const inWindow = dedupe(samples).filter(
    (s) => (o.from === undefined || s.sentAt >= o.from) && (o.to === undefined || s.sentAt <= o.to),
  );
  const perAddress: WindowResult['perAddress'] = {};
  const rtts: number[] = [];
  const slots = new Map<number, { sentAt: number; firstReply: number | null }>();
  const base = inWindow[0]?.sentAt ?? 0;
  for (const s of inWindow) {
    const pa = perAddress[s.address] ?? { sent: 0, received: 0 };
    perAddress[s.address] = pa;
    pa.sent++;
    const ok = replied(s, timeoutMs);
    if (ok) {
      pa.received++;
      rtts.push(s.receivedAt! - s.sentAt);
    }
    const idx = Math.round((s.sentAt - base) / o.intervalMs);
    const slot = slots.get(idx) ?? { sentAt: s.sentAt, firstReply: null };
    slot.sentAt = Math.min(slot.sentAt, s.sentAt);
    if (ok)
      slot.firstReply = slot.firstReply === null ? s.receivedAt! : Math.min(slot.firstReply, s.receivedAt!);
    slots.set(idx, slot);
  }
  const ordered = [...slots.entries()].sort((a, b) => a[0] - b[0]).map(([, v]) => v);
  // Earliest reply among slots i..end: with reordering, a later probe's reply may come first.
  const firstReplyFrom: number[] = new Array(ordered.length + 1).fill(Number.POSITIVE_INFINITY);
  for (let i = ordered.length - 1; i >= 0; i--)
    firstReplyFrom[i] = Math.min(firstReplyFrom[i + 1]!, ordered[i]!.firstReply ?? Number.POSITIVE_INFINITY);
  const outages: Outage[] = [];
  let current = null as { start: number; lost: number } | null;
  ordered.forEach((slot, i) => {
    if (slot.firstReply === null) {
      if (current) current.lost++;
      else current = { start: slot.sentAt, lost: 1 };
    } else if (current) {
      const end = firstReplyFrom[i]!;
      outages.push({
        start: current.start,
        end,
        durationMs: end - current.start,
        lostSlots: current.lost,
        open: false,
      });
      current = null;
    }
  });
  if (current) {
    const last = ordered.at(-1)!;
    const end = o.to ?? last.sentAt + timeoutMs;
    outages.push({
      start: current.start,
      end,
      durationMs: end - current.start,
      lostSlots: current.lost,
      open: true,
    });
  }
  const lost = ordered.filter((s) => s.firstReply === null).length;
  return {
    sent: ordered.length,
    lost,
    lossRate: ordered.length ? lost / ordered.length : 0,
    rttMs: rtts.length
      ? { min: Math.min(...rtts), max: Math.max(...rtts), avg: rtts.reduce((a, b) => a + b, 0) / rtts.length }
      : null,
    outageMs: Math.max(0, ...outages.map((x) => x.durationMs)),
    outages,
    perAddress,
  };
}
