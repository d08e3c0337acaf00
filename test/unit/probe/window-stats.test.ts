import { describe, expect, it } from 'vitest';
import type { ProbeSample } from '../../../src/probe/outage.ts';
import { PingParser } from '../../../src/probe/ping-parser.ts';
import { windowStats } from '../../../src/probe/window-stats.ts';

/** Probes every `every` ms from t0; `lost(seq)` says which got no reply; replies after `rtt` ms. */
function stream(
  address: string,
  n: number,
  lost: (seq: number) => boolean,
  o: { t0?: number; every?: number; rtt?: number } = {},
): ProbeSample[] {
  const { t0 = 0, every = 10, rtt = 1 } = o;
  return Array.from({ length: n }, (_, seq) => ({
    address,
    seq,
    sentAt: t0 + seq * every,
    receivedAt: lost(seq) ? null : t0 + seq * every + rtt,
  }));
}

describe('windowStats: the studies table row', () => {
  it('gives sent, lost, loss rate, RTT and the longest outage with its start and end', () => {
    const s = stream('a', 100, (x) => (x >= 20 && x < 25) || (x >= 60 && x < 72));
    s[3] = { ...s[3]!, receivedAt: s[3]!.sentAt + 4.5 };
    expect(windowStats(s, 0, 990)).toEqual({
      fromMs: 0,
      toMs: 990,
      sent: 100,
      lost: 17,
      lossRate: 0.17,
      rttMinMs: 1,
      rttMaxMs: 4.5,
      rttAvgMs: Math.round(((82 + 4.5) / 83) * 1000) / 1000,
      outageMs: 121,
      outageStartMs: 600,
      outageEndMs: 721,
      outages: [
        { startMs: 200, endMs: 251, durationMs: 51, lost: 5, open: false, atWindowStart: false },
        { startMs: 600, endMs: 721, durationMs: 121, lost: 12, open: false, atWindowStart: false },
      ],
    });
  });

  it('an empty period: nothing sent, no RTT, no outage', () => {
    expect(
      windowStats(
        stream('a', 10, () => false),
        5_000,
        6_000,
      ),
    ).toMatchObject({
      sent: 0,
      lost: 0,
      lossRate: 0,
      rttMinMs: null,
      outageMs: 0,
      outageStartMs: null,
      outageEndMs: null,
      outages: [],
    });
  });

  it('loss at the start of the period: from its first send, flagged when it may have begun before', () => {
    const s = stream('a', 50, (x) => x >= 15 && x < 25);
    // The loss begins with the period's first probe; probes before it (passed in) saw the target up.
    const r = windowStats(s, 150, 490);
    expect(r).toMatchObject({ sent: 35, lost: 10 });
    expect(r.outages).toEqual([
      { startMs: 150, endMs: 251, durationMs: 101, lost: 10, open: false, atWindowStart: false },
    ]);
    // Without the probes before the period, the outage may have started earlier: flagged.
    const alone = windowStats(
      s.filter((x) => x.sentAt >= 150),
      150,
      490,
    );
    expect(alone.outages[0]).toMatchObject({ startMs: 150, endMs: 251, atWindowStart: true });
    // The period opens in the middle of an outage that began at 100: counted from 150, flagged.
    expect(
      windowStats(
        stream('a', 50, (x) => x >= 10 && x < 25),
        150,
        490,
      ).outages[0],
    ).toMatchObject({
      startMs: 150,
      atWindowStart: true,
    });
  });

  it('loss at the end of the period: the outage runs to the end of the period and is open', () => {
    const r = windowStats(
      stream('a', 50, (x) => x >= 40),
      0,
      480,
    );
    expect(r).toMatchObject({ sent: 49, lost: 9, outageMs: 80, outageStartMs: 400, outageEndMs: 480 });
    expect(r.outages).toEqual([
      { startMs: 400, endMs: 480, durationMs: 80, lost: 9, open: true, atWindowStart: false },
    ]);
  });

  it('reordered samples and replies that overtake each other', () => {
    const s = stream('a', 40, (x) => x >= 10 && x < 20);
    s[20] = { ...s[20]!, receivedAt: 235 }; // the first probe after the gap answers late...
    s[21] = { ...s[21]!, receivedAt: 213 }; // ...after the second one's reply
    const shuffled = [...s.slice(25), ...s.slice(0, 10).reverse(), ...s.slice(10, 25)];
    const r = windowStats(shuffled, 0, 400);
    expect(r).toMatchObject({ sent: 40, lost: 10, outageStartMs: 100, outageEndMs: 213, outageMs: 113 });
    expect(r.rttMaxMs).toBe(35);
  });

  it('duplicate replies count once, the earliest one', () => {
    const s = stream('a', 30, (x) => x >= 10 && x < 15);
    const dups = [
      { ...s[15]!, receivedAt: s[15]!.receivedAt! + 7 },
      { ...s[16]!, receivedAt: null },
      { ...s[2]!, receivedAt: s[2]!.receivedAt! + 50 },
    ];
    const r = windowStats([...s, ...dups], 0, 300);
    expect(r).toMatchObject({ sent: 30, lost: 5, rttMaxMs: 1, outageMs: 51, outageEndMs: 151 });
  });

  it('two addresses sent at their own pace: reachable while either answers', () => {
    // A (every 16 ms, like iputils at -i 0.01) answers until t=480; B (every 13 ms, another
    // phase) from t=780. No slot grid: each probe is judged at its real send time.
    const a = stream('10.0.1.10', 80, (x) => x * 16 >= 480, { every: 16 });
    const b = stream('10.0.2.10', 100, (x) => 7 + x * 13 < 780, { t0: 7, every: 13 });
    const r = windowStats([...a, ...b], 0, 1_200);
    expect(r.outages).toHaveLength(1);
    // First send that neither answered: A's probe at 480. First reply after it: B's at 787+1.
    expect(r).toMatchObject({ outageStartMs: 480, outageEndMs: 788, outageMs: 308 });
    // Sent in [0, 1200]: A 76, B 92. Failed: A's from 480 to 784 (20; B's next probe is at 787)
    // and B's from 488 to 774 (23).
    expect(r).toMatchObject({ sent: 76 + 92, lost: 20 + 23 });
  });

  it('two addresses: one dead all along does not count as loss while the other answers', () => {
    const a = stream('10.0.1.10', 60, () => false, { every: 16 });
    const dead = stream('10.0.2.10', 60, () => true, { t0: 5, every: 16 });
    expect(windowStats([...a, ...dead], 0, 1_000)).toMatchObject({ lost: 0, outageMs: 0 });
  });

  it('a recorded iputils stream at -i 0.01: the 300 ms cut measured from the probes themselves', () => {
    const log = [
      '[1795414242.582101] 64 bytes from 10.9.0.2: icmp_seq=30 ttl=64 time=0.045 ms',
      '[1795414242.598090] 64 bytes from 10.9.0.2: icmp_seq=31 ttl=64 time=0.042 ms',
      ...Array.from(
        { length: 19 },
        (_, i) => `[${(1795414242.630094 + i * 0.016).toFixed(6)}] no answer yet for icmp_seq=${32 + i}`,
      ),
      '[1795414242.918048] 64 bytes from 10.9.0.2: icmp_seq=51 ttl=64 time=0.039 ms',
      '[1795414242.934053] 64 bytes from 10.9.0.2: icmp_seq=52 ttl=64 time=0.043 ms',
      '',
    ].join('\n');
    const p = new PingParser('10.9.0.2', 10);
    p.push(log);
    const from = 1795414242_500;
    const r = windowStats(p.samples(), from, from + 1_000);
    expect(r).toMatchObject({ sent: 23, lost: 19 });
    // seq 32 left when the line about 31 would have... it is dated between 31's send and 33's.
    expect(r.outageStartMs! - 1795414242_598).toBeGreaterThan(10);
    expect(r.outageStartMs! - 1795414242_598).toBeLessThan(22);
    expect(r.outageEndMs).toBeCloseTo(1795414242_918.048, 3);
    expect(r.outageMs).toBeGreaterThan(290);
    expect(r.outageMs).toBeLessThan(310);
  });
});
