import { describe, expect, it } from 'vitest';
import { computeWindow, type ProbeSample } from '../../../src/probe/outage.ts';
import { PingParser } from '../../../src/probe/ping-parser.ts';

/** A stream every 10 ms from t=0; `lost` lists the sequence numbers with no reply; RTT 1 ms. */
function stream(address: string, n: number, lost: (seq: number) => boolean, t0 = 0, rtt = 1): ProbeSample[] {
  return Array.from({ length: n }, (_, seq) => ({
    address,
    seq,
    sentAt: t0 + seq * 10,
    receivedAt: lost(seq) ? null : t0 + seq * 10 + rtt,
  }));
}

describe('computeWindow', () => {
  it('measures one gap: first lost send to first reply after it', () => {
    const r = computeWindow(
      stream('a', 100, (s) => s >= 40 && s < 55),
      { intervalMs: 10 },
    );
    expect(r).toMatchObject({ sent: 100, lost: 15, lossRate: 0.15, outageMs: 151 });
    expect(r.outages).toEqual([{ start: 400, end: 551, durationMs: 151, lostSlots: 15, open: false }]);
    expect(r.rttMs).toEqual({ min: 1, max: 1, avg: 1 });
  });

  it('keeps the longest of several outages', () => {
    const r = computeWindow(
      stream('a', 100, (s) => (s >= 10 && s < 13) || (s >= 60 && s < 70)),
      { intervalMs: 10 },
    );
    expect(r.outages.map((o) => o.durationMs)).toEqual([31, 101]);
    expect(r.outageMs).toBe(101);
  });

  it('counts loss at the start of the window from the first send', () => {
    const r = computeWindow(
      stream('a', 20, (s) => s < 5),
      { intervalMs: 10 },
    );
    expect(r.outages[0]).toMatchObject({ start: 0, end: 51, open: false });
  });

  it('leaves an outage at the end of the window open, running to the window end', () => {
    const r = computeWindow(
      stream('a', 20, (s) => s >= 15),
      { intervalMs: 10, to: 300 },
    );
    expect(r.outages[0]).toEqual({ start: 150, end: 300, durationMs: 150, lostSlots: 5, open: true });
  });

  it('ignores duplicate replies and undoes reordering', () => {
    const base = stream('a', 30, (s) => s >= 10 && s < 20);
    const dup = { ...base[25]!, receivedAt: base[25]!.receivedAt! + 5 };
    const shuffled = [...base.slice(15), dup, ...base.slice(0, 15)];
    const r = computeWindow(shuffled, { intervalMs: 10 });
    expect(r).toMatchObject({ sent: 30, lost: 10, outageMs: 101 });
    expect(r.perAddress.a).toEqual({ sent: 30, received: 20 });
  });

  it('ends an outage at the earliest reply of any later probe, even out of order', () => {
    const s = stream('a', 30, (x) => x >= 10 && x < 20);
    s[20] = { ...s[20]!, receivedAt: 260 }; // the first probe after the gap is answered late...
    s[21] = { ...s[21]!, receivedAt: 212 }; // ...after the next one's reply
    expect(computeWindow(s, { intervalMs: 10 }).outages[0]).toMatchObject({ start: 100, end: 212 });
  });

  it('counts a reply later than the timeout as lost', () => {
    const s = stream('a', 10, () => false);
    s[5] = { ...s[5]!, receivedAt: s[5]!.sentAt + 2_000 };
    expect(computeWindow(s, { intervalMs: 10, timeoutMs: 1_000 })).toMatchObject({ lost: 1, outageMs: 11 });
  });

  it('treats two addresses as one target: reachable while either answers', () => {
    // The VM answers on its source-site address until t=500, then on its destination address from t=800.
    const a = stream('10.0.1.10', 100, (s) => s >= 50);
    const b = stream('10.0.2.10', 100, (s) => s < 80);
    const r = computeWindow([...a, ...b], { intervalMs: 10 });
    expect(r).toMatchObject({ sent: 100, lost: 30, outageMs: 301 });
    expect(r.outages[0]).toMatchObject({ start: 500, end: 801 });
    expect(r.perAddress['10.0.1.10']).toEqual({ sent: 100, received: 50 });
  });

  it('reports nothing for no samples and everything lost for silence', () => {
    expect(computeWindow([], { intervalMs: 10 })).toMatchObject({
      sent: 0,
      lost: 0,
      lossRate: 0,
      outageMs: 0,
      rttMs: null,
    });
    const r = computeWindow(
      stream('a', 10, () => true),
      { intervalMs: 10, to: 200 },
    );
    expect(r).toMatchObject({ sent: 10, lost: 10, lossRate: 1, outageMs: 200, rttMs: null });
  });
});

describe('PingParser', () => {
  // Probes leave every 10 ms from t=1000.000 s; -O reports a probe overdue when the next one leaves.
  const log = [
    'PING 10.100.1.10 (10.100.1.10) 56(84) bytes of data.',
    '[1000.000500] 64 bytes from 10.100.1.10: icmp_seq=1 ttl=64 time=0.500 ms',
    '[1000.010500] 64 bytes from 10.100.1.10: icmp_seq=2 ttl=64 time=0.500 ms',
    '[1000.030000] no answer yet for icmp_seq=3',
    '[1000.040000] no answer yet for icmp_seq=4',
    '[1000.050500] 64 bytes from 10.100.1.10: icmp_seq=6 ttl=64 time=0.500 ms',
    '[1000.050600] 64 bytes from 10.100.1.10: icmp_seq=6 ttl=64 time=0.600 ms (DUP!)',
    'garbage line',
    '[1000.060500] 64 bytes from 10.100.1.10: icmp_seq=7 ttl=64 time=0.500 ms',
  ].join('\n');

  it('reconstructs sends and losses, ignoring duplicates and noise, across chunk boundaries', () => {
    const p = new PingParser('10.100.1.10', 10);
    for (let i = 0; i < log.length; i += 17) p.push(log.slice(i, i + 17));
    p.push('\n');
    const s = p.samples();
    expect(s.map((x) => [x.seq, x.receivedAt === null])).toEqual([
      [1, false],
      [2, false],
      [3, true],
      [4, true],
      [5, true],
      [6, false],
      [7, false],
    ]);
    expect(s[0]!.sentAt).toBeCloseTo(1_000_000, 3); // arrival - RTT
    expect(s[2]!.sentAt).toBeCloseTo(1_000_020, 3); // reported overdue one interval after it left
    expect(s[4]!.sentAt).toBeCloseTo(1_000_040, 3); // never reported: from its answered neighbour, at the interval
    const r = computeWindow(s, { intervalMs: 10 });
    expect(r).toMatchObject({ sent: 7, lost: 3 });
    expect(r.outageMs).toBeCloseTo(30.5, 3); // 1000.020 (seq 3 sent) -> 1000.0505 (seq 6 reply)
  });

  it('follows icmp_seq across its wrap at 65536', () => {
    const p = new PingParser('a', 10);
    p.push(
      '[1.000000] 64 bytes from a: icmp_seq=65535 ttl=64 time=1.0 ms\n[1.010000] 64 bytes from a: icmp_seq=0 ttl=64 time=1.0 ms\n',
    );
    expect(p.samples().map((x) => x.seq)).toEqual([65535, 65536]);
  });
});
