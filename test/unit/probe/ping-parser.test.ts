import { describe, expect, it } from 'vitest';
import { computeWindow } from '../../../src/probe/outage.ts';
import { PingParser } from '../../../src/probe/ping-parser.ts';

// Recorded with iputils 20221126 between two network namespaces joined by a veth pair:
// `ping -D -O -n -i 0.01 -W 1 10.9.0.2`, the peer's address deleted for 300 ms (sleep 0.3) and
// added back. At -i 0.01 this ping really sends every 16 ms (see docs/probe.md).
const VETH_GAP = `PING 10.9.0.2 (10.9.0.2) 56(84) bytes of data.
[1795414242.550065] 64 bytes from 10.9.0.2: icmp_seq=28 ttl=64 time=0.036 ms
[1795414242.566061] 64 bytes from 10.9.0.2: icmp_seq=29 ttl=64 time=0.033 ms
[1795414242.582101] 64 bytes from 10.9.0.2: icmp_seq=30 ttl=64 time=0.045 ms
[1795414242.598090] 64 bytes from 10.9.0.2: icmp_seq=31 ttl=64 time=0.042 ms
[1795414242.630094] no answer yet for icmp_seq=32
[1795414242.646001] no answer yet for icmp_seq=33
[1795414242.661995] no answer yet for icmp_seq=34
[1795414242.677990] no answer yet for icmp_seq=35
[1795414242.693973] no answer yet for icmp_seq=36
[1795414242.709975] no answer yet for icmp_seq=37
[1795414242.725985] no answer yet for icmp_seq=38
[1795414242.741992] no answer yet for icmp_seq=39
[1795414242.757981] no answer yet for icmp_seq=40
[1795414242.773952] no answer yet for icmp_seq=41
[1795414242.789952] no answer yet for icmp_seq=42
[1795414242.805982] no answer yet for icmp_seq=43
[1795414242.821982] no answer yet for icmp_seq=44
[1795414242.837987] no answer yet for icmp_seq=45
[1795414242.853951] no answer yet for icmp_seq=46
[1795414242.869983] no answer yet for icmp_seq=47
[1795414242.885983] no answer yet for icmp_seq=48
[1795414242.901989] no answer yet for icmp_seq=49
[1795414242.917978] no answer yet for icmp_seq=50
[1795414242.918048] 64 bytes from 10.9.0.2: icmp_seq=51 ttl=64 time=0.039 ms
[1795414242.934053] 64 bytes from 10.9.0.2: icmp_seq=52 ttl=64 time=0.043 ms
[1795414242.950047] 64 bytes from 10.9.0.2: icmp_seq=53 ttl=64 time=0.046 ms

--- 10.9.0.2 ping statistics ---
76 packets transmitted, 57 received, 25% packet loss, time 1202ms
rtt min/avg/max/mdev = 0.029/0.045/0.337/0.039 ms
`;

// Recorded: `ping -v -D -O -n -b -i 0.05 -c 4 10.8.0.255` on a bridge with two hosts that
// answer broadcasts; the second answer to each probe is a duplicate (-v prints ident=).
const DUPLICATES = `ping: sock4.fd: 3 (socktype: SOCK_RAW), sock6.fd: 4 (socktype: SOCK_RAW), hints.ai_family: AF_UNSPEC

WARNING: pinging broadcast address
ai->ai_family: AF_INET, ai->ai_canonname: '10.8.0.255'
PING 10.8.0.255 (10.8.0.255) 56(84) bytes of data.
[1795414259.913823] 64 bytes from 10.8.0.5: icmp_seq=1 ident=30647 ttl=64 time=0.057 ms
[1795414259.913829] 64 bytes from 10.8.0.4: icmp_seq=1 ident=30647 ttl=64 time=0.066 ms (DUP!)
[1795414259.966133] 64 bytes from 10.8.0.5: icmp_seq=2 ident=30647 ttl=64 time=0.055 ms
[1795414259.966190] 64 bytes from 10.8.0.4: icmp_seq=2 ident=30647 ttl=64 time=0.062 ms (DUP!)
[1795414260.022126] 64 bytes from 10.8.0.5: icmp_seq=3 ident=30647 ttl=64 time=0.059 ms
[1795414260.022182] 64 bytes from 10.8.0.4: icmp_seq=3 ident=30647 ttl=64 time=0.066 ms (DUP!)
[1795414260.078058] 64 bytes from 10.8.0.5: icmp_seq=4 ident=30647 ttl=64 time=0.058 ms
`;

// Recorded: `ping -D -O -n -i 0.1 10.9.0.77`, an address on the link that no host has. ARP
// never resolves: after seq 12 the send blocks (socket buffer full), ping repeats the overdue
// line for 12 without sending, then the queued probes come back as ICMP errors (abridged).
const UNRESOLVED = `PING 10.9.0.77 (10.9.0.77) 56(84) bytes of data.
[1795414263.554000] no answer yet for icmp_seq=1
[1795414263.657999] no answer yet for icmp_seq=2
[1795414263.762026] no answer yet for icmp_seq=3
[1795414263.866033] no answer yet for icmp_seq=4
[1795414263.969998] no answer yet for icmp_seq=5
[1795414264.074007] no answer yet for icmp_seq=6
[1795414264.178002] no answer yet for icmp_seq=7
[1795414264.282489] no answer yet for icmp_seq=8
[1795414264.386006] no answer yet for icmp_seq=9
[1795414264.490014] no answer yet for icmp_seq=10
[1795414264.593964] no answer yet for icmp_seq=11
[1795414264.697986] no answer yet for icmp_seq=12
[1795414264.798225] no answer yet for icmp_seq=12
[1795414266.403895] no answer yet for icmp_seq=12
[1795414266.504239] no answer yet for icmp_seq=12
[1795414266.506152] From 10.9.0.1 icmp_seq=1 Destination Host Unreachable
[1795414266.506231] From 10.9.0.1 icmp_seq=12 Destination Host Unreachable
[1795414266.604398] no answer yet for icmp_seq=12
[1795414266.705956] no answer yet for icmp_seq=13
[1795414266.809980] no answer yet for icmp_seq=14
[1795414266.914010] no answer yet for icmp_seq=15
`;

const T0 = 1795414242_000;

function parse(text: string, chunk = text.length, address = 'a', intervalMs = 10): PingParser {
  const p = new PingParser(address, intervalMs);
  for (let i = 0; i < text.length; i += chunk) p.push(text.slice(i, i + chunk));
  p.end();
  return p;
}

describe('PingParser on recorded iputils output', () => {
  it('reconstructs a gap: replies give exact send times, overdue lines date the next probe', () => {
    const s = parse(VETH_GAP, 7, '10.9.0.2').samples();
    expect(s.map((x) => x.seq)).toEqual(Array.from({ length: 26 }, (_, i) => 28 + i));
    expect(s.filter((x) => x.receivedAt === null).map((x) => x.seq)).toEqual(
      Array.from({ length: 19 }, (_, i) => 32 + i),
    );
    const at = (seq: number) => s.find((x) => x.seq === seq)!;
    expect(at(31).sentAt - T0).toBeCloseTo(598.048, 3); // reply 598.090 - RTT 0.042
    expect(at(33).sentAt - T0).toBeCloseTo(630.094, 3); // "no answer yet for 32" printed as 33 left
    expect(at(32).sentAt - T0).toBeCloseTo(614.071, 3); // between 31 and 33
    expect(at(51)).toMatchObject({ receivedAt: T0 + 918.048, rttMs: 0.039 });
    const w = computeWindow(s);
    expect(w).toMatchObject({ sent: 26, lost: 19 });
    expect(w.medianIntervalMs).toBeCloseTo(16, 0);
    expect(w.outages).toHaveLength(1);
    // 300 ms without the address, seen as 614.071 -> 918.048.
    expect(w.outageMs).toBeCloseTo(303.977, 3);
  });

  it('gives the same samples whatever the chunking', () => {
    const whole = parse(VETH_GAP).samples();
    expect(parse(VETH_GAP, 1).samples()).toEqual(whole);
    expect(parse(VETH_GAP, 64).samples()).toEqual(whole);
  });

  it('ignores (DUP!) replies and the lines -v adds', () => {
    const s = parse(DUPLICATES, 13, '10.8.0.255', 50).samples();
    expect(s.map((x) => [x.seq, x.rttMs])).toEqual([
      [1, 0.057],
      [2, 0.055],
      [3, 0.059],
      [4, 0.058],
    ]);
    expect(s[0]!.receivedAt! - T0).toBeCloseTo(17_913.823, 3);
  });

  it('does not invent probes while ping repeats an overdue line without sending; errors are losses', () => {
    const s = parse(UNRESOLVED, 100, '10.9.0.77', 100).samples();
    expect(s.map((x) => x.seq)).toEqual(Array.from({ length: 15 }, (_, i) => i + 1));
    expect(s.every((x) => x.receivedAt === null)).toBe(true);
    const at = (seq: number) => s.find((x) => x.seq === seq)!.sentAt - (T0 + 20_000);
    expect(at(2)).toBeCloseTo(1_554.0, 3);
    expect(at(12)).toBeCloseTo(2_593.964, 3); // the overdue line of 11
    expect(at(13)).toBeCloseTo(4_604.398, 3); // the last "no answer yet for 12": 13 left then
    expect(at(1)).toBeCloseTo(1_554.0 - 104, 0); // before the first dated probe: at the median pace
    const w = computeWindow(s, { to: T0 + 25_000 });
    expect(w).toMatchObject({ sent: 15, lost: 15, lossRate: 1 });
    expect(w.outages[0]).toMatchObject({ open: true, atWindowStart: true });
  });

  it('skips garbage, headers, statistics, truncated and corrupted replies', () => {
    const p = parse(
      [
        'PING 127.0.0.1 (127.0.0.1) 56(84) bytes of data.',
        'garbage line',
        '64 bytes from 127.0.0.1: icmp_seq=1 ttl=64 time=0.05 ms', // no -D timestamp
        '[12.000100] 64 bytes from 127.0.0.1: icmp_seq=2 ttl=64 time=0.100 ms',
        '[12.010100] 64 bytes from 127.0.0.1: icmp_seq=3 ttl=64 (truncated)',
        '[12.020100] 64 bytes from 127.0.0.1: icmp_seq=4 ttl=64 time=0.100 ms (BAD CHECKSUM!)',
        '[12.030100] 64 bytes from 127.0.0.1: icmp_seq=5 ttl=64 time=0.100 ms',
        'ping: sendmsg: Network is unreachable',
        '3 packets transmitted, 2 received',
      ].join('\n'),
    );
    expect(p.samples().map((x) => [x.seq, x.receivedAt])).toEqual([
      [2, 12_000.1],
      [3, null],
      [4, null],
      [5, 12_030.1],
    ]);
    expect(p.samples()[1]!.sentAt).toBeCloseTo(12_010, 6);
  });

  it('reads IPv6 sources and RTTs of 100 ms and more', () => {
    const s = parse(
      '[1.000000] 64 bytes from 2001:db8::1: icmp_seq=1 ttl=64 time=123 ms\n[1.200000] 64 bytes from 2001:db8::1: icmp_seq=2 ttl=64 time=12.5 ms\n',
    ).samples();
    expect(s.map((x) => [x.sentAt, x.rttMs])).toEqual([
      [877, 123],
      [1187.5, 12.5],
    ]);
  });

  it('follows icmp_seq across its wrap at 65536, also for a late line from before the wrap', () => {
    const s = parse(
      [
        '[1.000000] 64 bytes from a: icmp_seq=65534 ttl=64 time=1.0 ms',
        '[1.020000] 64 bytes from a: icmp_seq=0 ttl=64 time=1.0 ms',
        '[1.025000] 64 bytes from a: icmp_seq=65535 ttl=64 time=16.0 ms',
        '[1.030000] 64 bytes from a: icmp_seq=1 ttl=64 time=1.0 ms',
      ].join('\n'),
    ).samples();
    expect(s.map((x) => x.seq)).toEqual([65534, 65535, 65536, 65537]);
    expect(s.every((x) => x.receivedAt !== null)).toBe(true);
  });

  it('waits for the rest of a line split across chunks, and parses a last line without newline at end()', () => {
    const p = new PingParser('a', 10);
    p.push('[1.000000] 64 bytes from a: icmp_se');
    expect(p.samples()).toEqual([]);
    p.push('q=1 ttl=64 time=1.0 ms\n[1.010000] 64 bytes from a: icmp_seq=2 ttl=64 time=1.0 ms');
    expect(p.samples()).toHaveLength(1);
    p.end();
    expect(p.samples()).toHaveLength(2);
  });

  it('discards old probes without moving the send times of the ones it keeps', () => {
    const p = parse(VETH_GAP);
    const before = p.samples();
    const cut = before.find((x) => x.seq === 33)!.sentAt;
    p.discardBefore(cut);
    const after = p.samples();
    expect(after[0]!.seq).toBe(33);
    expect(after).toEqual(before.filter((x) => x.seq >= 33));
    // A late line about a discarded probe does not bring it back.
    p.push('[1795414243.000000] 64 bytes from 10.9.0.2: icmp_seq=32 ttl=64 time=400 ms\n');
    expect(p.samples()[0]!.seq).toBe(33);
    p.discardBefore(Number.POSITIVE_INFINITY);
    expect(p.samples()).toEqual([]);
    p.push('[1795414243.000000] 64 bytes from 10.9.0.2: icmp_seq=60 ttl=64 time=0.1 ms\n');
    expect(p.samples().map((x) => x.seq)).toEqual([60]);
  });
});
