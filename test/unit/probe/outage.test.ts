import { describe, expect, it } from 'vitest';
import { computeWindow, dedupe, type ProbeSample } from '../../../src/probe/outage.ts';

/** Probes every 10 ms from t0; `lost(seq)` says which got no reply; replies after `rtt` ms. */
function stream(address: string, n: number, lost: (seq: number) => boolean, t0 = 0, rtt = 1): ProbeSample[] {
  return Array.from({ length: n }, (_, seq) => ({
    address,
    seq,
    sentAt: t0 + seq * 10,
    receivedAt: lost(seq) ? null : t0 + seq * 10 + rtt,
  }));
}

describe('computeWindow: one address', () => {
  it('measures one gap from the first lost send to the first reply after it', () => {
    const r = computeWindow(
      stream('a', 100, (s) => s >= 40 && s < 55),
      { timeoutMs: 1_000 },
    );
    expect(r).toMatchObject({ sent: 100, received: 85, lost: 15, lossRate: 0.15, outageMs: 151 });
    expect(r.outages).toEqual([
      { start: 400, end: 551, durationMs: 151, lostCount: 15, open: false, atWindowStart: false },
    ]);
    expect(r.rttMs).toEqual({ min: 1, max: 1, avg: 1 });
    expect(r).toMatchObject({ firstSentAt: 0, lastReplyAt: 991, medianIntervalMs: 10 });
    expect(r.perAddress).toEqual({ a: { sent: 100, received: 85, lost: 15 } });
  });

  it('reports every outage and keeps the longest as the outage', () => {
    const r = computeWindow(stream('a', 100, (s) => (s >= 10 && s < 13) || (s >= 60 && s < 70)));
    expect(r.outages.map((o) => [o.start, o.durationMs, o.lostCount])).toEqual([
      [100, 31, 3],
      [600, 101, 10],
    ]);
    expect(r.outageMs).toBe(101);
  });

  it('a window that opens with loss: the outage starts at the first send and is marked', () => {
    const r = computeWindow(
      stream('a', 20, (s) => s < 5),
      { from: 0 },
    );
    expect(r.outages).toEqual([
      { start: 0, end: 51, durationMs: 51, lostCount: 5, open: false, atWindowStart: true },
    ]);
  });

  it('loss at the start is not "at window start" when probes before the window saw the target up', () => {
    const r = computeWindow(
      stream('a', 40, (s) => s >= 20 && s < 25),
      { from: 200 },
    );
    expect(r).toMatchObject({ sent: 20, lost: 5, firstSentAt: 200 });
    expect(r.outages[0]).toMatchObject({ start: 200, end: 251, atWindowStart: false });
  });

  it('a window that closes during loss: the outage runs to the window end and is open', () => {
    const r = computeWindow(
      stream('a', 20, (s) => s >= 15),
      { to: 300 },
    );
    expect(r.outages).toEqual([
      { start: 150, end: 300, durationMs: 150, lostCount: 5, open: true, atWindowStart: false },
    ]);
    // Without `to`, the window ends at the last thing seen: the last send here.
    expect(computeWindow(stream('a', 20, (s) => s >= 15)).outages[0]).toMatchObject({ end: 190, open: true });
  });

  it('only counts probes sent inside [from, to]', () => {
    const r = computeWindow(
      stream('a', 100, (s) => s % 10 === 0),
      { from: 205, to: 494 },
    );
    // sends at 210..490: 29 probes, of which 300 and 400 are lost
    expect(r).toMatchObject({ sent: 29, lost: 2, firstSentAt: 210 });
  });

  it('ignores duplicate replies and undoes reordering of the samples', () => {
    const base = stream('a', 30, (s) => s >= 10 && s < 20);
    const dupLate = { ...base[25]!, receivedAt: base[25]!.receivedAt! + 5 };
    const dupLost = { ...base[5]!, receivedAt: null };
    const shuffled = [...base.slice(15), dupLate, ...base.slice(0, 15), dupLost].reverse();
    const r = computeWindow(shuffled);
    expect(r).toMatchObject({ sent: 30, received: 20, lost: 10, outageMs: 101 });
    expect(dedupe(shuffled)).toEqual(base);
  });

  it('ends an outage at the earliest reply to any later probe, even when replies overtake each other', () => {
    const s = stream('a', 30, (x) => x >= 10 && x < 20);
    s[20] = { ...s[20]!, receivedAt: 260 }; // the first probe after the gap is answered late...
    s[21] = { ...s[21]!, receivedAt: 212 }; // ...after the next one's reply
    expect(computeWindow(s).outages[0]).toMatchObject({ start: 100, end: 212 });
  });

  it('a late reply to a probe sent before the loss does not end the outage', () => {
    const s = stream('a', 30, (x) => x >= 10 && x < 20);
    s[9] = { ...s[9]!, receivedAt: 150 }; // sent at 90, answered in the middle of the gap
    expect(computeWindow(s).outages).toEqual([
      { start: 100, end: 201, durationMs: 101, lostCount: 10, open: false, atWindowStart: false },
    ]);
  });

  it('counts a reply later than the timeout as lost', () => {
    const s = stream('a', 10, () => false);
    s[5] = { ...s[5]!, receivedAt: s[5]!.sentAt + 2_000 };
    expect(computeWindow(s, { timeoutMs: 1_000 })).toMatchObject({ received: 9, lost: 1, outageMs: 11 });
    expect(computeWindow(s, { timeoutMs: 3_000 })).toMatchObject({ lost: 0, outageMs: 0 });
  });

  it('merges overlapping outages when the RTT is longer than the interval', () => {
    // RTT 30 ms at 10 ms: probe 10 answers at 130, but probe 11 (sent 110, before that reply) is lost too.
    const s = stream('a', 20, (x) => x < 10 || x === 11, 0, 30);
    const r = computeWindow(s);
    expect(r.outages).toEqual([
      { start: 0, end: 150, durationMs: 150, lostCount: 11, open: false, atWindowStart: true },
    ]);
  });

  it('handles no samples, all lost, one reply and one loss', () => {
    expect(computeWindow([], { from: 0, to: 100 })).toEqual({
      sent: 0,
      received: 0,
      lost: 0,
      lossRate: 0,
      rttMs: null,
      outageMs: 0,
      outages: [],
      firstSentAt: null,
      lastReplyAt: null,
      medianIntervalMs: null,
      perAddress: {},
    });
    const silent = computeWindow(
      stream('a', 10, () => true),
      { from: 0, to: 200 },
    );
    expect(silent).toMatchObject({
      sent: 10,
      lost: 10,
      lossRate: 1,
      rttMs: null,
      outageMs: 200,
      lastReplyAt: null,
    });
    expect(silent.outages).toEqual([
      { start: 0, end: 200, durationMs: 200, lostCount: 10, open: true, atWindowStart: true },
    ]);
    const one = computeWindow([{ address: 'a', seq: 1, sentAt: 5, receivedAt: 5.4, rttMs: 0.4 }]);
    expect(one).toMatchObject({ sent: 1, received: 1, lost: 0, outageMs: 0, medianIntervalMs: null });
    expect(one.rttMs).toEqual({ min: 0.4, max: 0.4, avg: 0.4 });
    const lostOne = computeWindow([{ address: 'a', seq: 1, sentAt: 5, receivedAt: null }], { to: 20 });
    expect(lostOne.outages).toEqual([
      { start: 5, end: 20, durationMs: 15, lostCount: 1, open: true, atWindowStart: true },
    ]);
  });
});

describe('computeWindow: several addresses of one target', () => {
  // Source-site address A answers until t=500; destination-site address B (probed 5 ms later
  // in each interval) answers from t=805. Every probe is still counted as sent.
  const a = stream('10.0.1.10', 100, (s) => s >= 50);
  const b = stream('10.0.2.10', 100, (s) => s < 80, 5);

  it('is reachable while any address answers: the outage is the gap between A stopping and B starting', () => {
    const r = computeWindow([...a, ...b]);
    expect(r.outages).toEqual([
      { start: 500, end: 806, durationMs: 306, lostCount: 61, open: false, atWindowStart: false },
    ]);
    // Failed = sent while neither answered: A's 500..800 (31) and B's 505..795 (30).
    expect(r).toMatchObject({ sent: 200, received: 70, lost: 61, outageMs: 306 });
    expect(r.perAddress).toEqual({
      '10.0.1.10': { sent: 100, received: 50, lost: 50 },
      '10.0.2.10': { sent: 100, received: 20, lost: 80 },
    });
  });

  it('sees no outage when the addresses overlap, however much each one loses', () => {
    const early = stream('10.0.2.10', 100, (s) => s < 40, 5);
    const r = computeWindow([...a, ...early]);
    expect(r).toMatchObject({ lost: 0, outageMs: 0, outages: [] });
  });

  it('stops trusting an address whose probes stopped coming once its last answer is older than the timeout', () => {
    const aStops = stream('10.0.1.10', 50, () => false); // last probe at 490, answered; then nothing
    const bDead = stream('10.0.2.10', 100, () => true, 5);
    const r = computeWindow([...aStops, ...bDead], { timeoutMs: 100, to: 1_000 });
    expect(r.outages[0]).toMatchObject({ start: 595, open: true, end: 1_000 });
  });

  it('gives the same answer whatever order the streams come in', () => {
    const merged = computeWindow([...a, ...b]);
    expect(computeWindow([...b.reverse(), ...a])).toEqual(merged);
  });
});
