import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type HealthInput, icmpVerdict, judgeHealth } from '../../../src/core/health.ts';
import type { HostHealth } from '../../../src/core/model.ts';

const NOW = 1_000_000;
const T = { suspectAfterMs: 30_000, icmpFreshMs: 6_000 };
const ago = (ms: number) => NOW - ms;

const connected = (o: Partial<HealthInput> = {}): HealthInput => ({
  connected: true,
  connectedAt: ago(600_000),
  lastSuccessAt: ago(1_000),
  lastAttemptAt: ago(1_000),
  ...o,
});
const lost = (o: Partial<HealthInput> = {}): HealthInput => ({
  connected: false,
  connectedAt: null,
  lastSuccessAt: ago(60_000),
  lastAttemptAt: ago(1_000),
  ...o,
});
const answers = { lastReplyAt: ago(500), lastSentAt: ago(500) };
const silent = { lastReplyAt: ago(60_000), lastSentAt: ago(500) };

describe('judgeHealth: one row per transition', () => {
  const rows: [string, HostHealth | null, HealthInput, HostHealth][] = [
    ['never observed', null, { connected: false, lastSuccessAt: null, lastAttemptAt: null }, 'unknown'],
    [
      'first connect, first read in flight',
      null,
      connected({ lastSuccessAt: null, lastAttemptAt: ago(100), connectedAt: ago(200) }),
      'unknown',
    ],
    ['first read done', 'unknown', connected(), 'up'],
    ['first connect failed', 'unknown', lost({ lastSuccessAt: null }), 'unreachable'],
    [
      'first connect in flight, ICMP answers: nothing lost yet',
      'unknown',
      lost({ lastSuccessAt: null, connecting: true, icmp: answers }),
      'unknown',
    ],
    [
      'a reconnect in flight, ICMP answers: partitioned still',
      'partitioned',
      lost({ connecting: true, icmp: answers }),
      'partitioned',
    ],
    ['read fresh', 'up', connected(), 'up'],
    [
      'read 20 s old, next one in flight',
      'up',
      connected({ lastSuccessAt: ago(20_000), lastAttemptAt: ago(5_000) }),
      'up',
    ],
    [
      'nothing asked since the last read (the controller is slow, not the host)',
      'up',
      connected({ lastSuccessAt: ago(90_000), lastAttemptAt: ago(90_000) }),
      'up',
    ],
    [
      'reads started, none answered for 31 s (F17)',
      'up',
      connected({ lastSuccessAt: ago(31_000), lastAttemptAt: ago(1_000) }),
      'suspect',
    ],
    [
      'the last read took 15 s (a busy controller), answered 20 s ago, the next in flight',
      'up',
      connected({ lastSuccessAt: ago(35_000), lastAnswerAt: ago(20_000), lastAttemptAt: ago(19_000) }),
      'up',
    ],
    [
      'the last read answered 31 s ago, reads started since',
      'up',
      connected({ lastSuccessAt: ago(40_000), lastAnswerAt: ago(31_000), lastAttemptAt: ago(30_000) }),
      'suspect',
    ],
    ['a read answered', 'suspect', connected(), 'up'],
    ['keepalives stop too', 'suspect', lost({ lastSuccessAt: ago(45_000) }), 'unreachable'],
    ['link down, no ICMP', 'up', lost(), 'unreachable'],
    ['link down, ICMP silent', 'up', lost({ icmp: silent }), 'unreachable'],
    ['link down, ICMP answers', 'up', lost({ icmp: answers }), 'partitioned'],
    [
      'witnesses see its VMs answer',
      'unreachable',
      lost({ icmp: silent, witnesses: { up: 1, down: 2 } }),
      'partitioned',
    ],
    ['ICMP stops answering', 'partitioned', lost({ icmp: silent }), 'unreachable'],
    [
      'ICMP silent, 2 of 3 witnesses see its VMs silent',
      'unreachable',
      lost({ icmp: silent, witnesses: { up: 0, down: 2, total: 3 } }),
      'down',
    ],
    [
      'not down on half the witnesses',
      'unreachable',
      lost({ icmp: silent, witnesses: { up: 0, down: 1, total: 2 } }),
      'unreachable',
    ],
    ['not down without ICMP evidence', 'unreachable', lost({ witnesses: { up: 0, down: 3 } }), 'unreachable'],
    ['not down without witnesses (today: never down)', 'unreachable', lost({ icmp: silent }), 'unreachable'],
    [
      'reconnected, first read in flight: stays unreachable',
      'unreachable',
      connected({ connectedAt: ago(100), lastSuccessAt: ago(60_000), lastAttemptAt: ago(50) }),
      'unreachable',
    ],
    [
      'reconnected, first read done: up',
      'unreachable',
      connected({ connectedAt: ago(2_000), lastSuccessAt: ago(1_000) }),
      'up',
    ],
    [
      'reconnected, reads hang for 31 s: suspect',
      'unreachable',
      connected({ connectedAt: ago(31_000), lastSuccessAt: ago(90_000), lastAttemptAt: ago(1_000) }),
      'suspect',
    ],
    [
      'up, but the read is from before a reconnect: not up on old data',
      'up',
      connected({ connectedAt: ago(100), lastSuccessAt: ago(1_000), lastAttemptAt: ago(50) }),
      'unreachable',
    ],
    ['fenced', 'unreachable', lost({ fencedAt: ago(10_000) }), 'fenced'],
    ['fenced wins over ICMP', 'partitioned', lost({ icmp: answers, fencedAt: ago(10_000) }), 'fenced'],
    ['it answered after the fence (powered on again)', 'fenced', connected({ fencedAt: ago(10_000) }), 'up'],
    ['the link is back', 'down', connected({ connectedAt: ago(5_000) }), 'up'],
    [
      'the link is back, first read in flight: unreachable, not down',
      'down',
      connected({ connectedAt: ago(100), lastSuccessAt: null, lastAttemptAt: ago(50) }),
      'unreachable',
    ],
    ['never read, ICMP answers', 'unknown', lost({ lastSuccessAt: null, icmp: answers }), 'partitioned'],
  ];
  for (const [what, prev, input, want] of rows) {
    it(`${prev ?? 'none'} -> ${want}: ${what}`, () => {
      const previous = prev ? { health: prev, since: ago(300_000) } : null;
      const j = judgeHealth({ ...input, previous }, NOW, T);
      expect(j.health).toBe(want);
      if (want === 'unknown') expect(j.since).toBeNull();
      else expect(j.since).toBe(prev === want ? ago(300_000) : NOW);
    });
  }
});

describe('judgeHealth evidence', () => {
  it('carries the link, the age of the last read, ICMP and the witnesses', () => {
    const j = judgeHealth(lost({ icmp: answers, witnesses: { up: 1, down: 0 } }), NOW, T);
    expect(j.evidence).toEqual({
      connected: false,
      lastCallAgeMs: 60_000,
      icmp: true,
      witnessesUp: 1,
      witnessesDown: 0,
    });
    expect(judgeHealth(lost({ fencedAt: ago(1) }), NOW, T).evidence.fenced).toBe(true);
    expect(judgeHealth(connected(), NOW, T).evidence).toEqual({
      connected: true,
      lastCallAgeMs: 1_000,
      icmp: null,
    });
  });

  it('uses the documented defaults when no thresholds are given', () => {
    const hung = connected({ lastSuccessAt: ago(29_000), lastAttemptAt: ago(1_000) });
    expect(judgeHealth(hung, NOW).health).toBe('up');
    expect(judgeHealth({ ...hung, lastSuccessAt: ago(31_000) }, NOW).health).toBe('suspect');
  });
});

describe('icmpVerdict', () => {
  it('answers, is silent, or was not probed', () => {
    expect(icmpVerdict(null, NOW, 6_000)).toBeNull();
    expect(icmpVerdict({ lastReplyAt: null, lastSentAt: null }, NOW, 6_000)).toBeNull();
    expect(icmpVerdict(answers, NOW, 6_000)).toBe(true);
    expect(icmpVerdict(silent, NOW, 6_000)).toBe(false);
    // The prober stopped sending: neither answering nor silent.
    expect(icmpVerdict({ lastReplyAt: ago(60_000), lastSentAt: ago(60_000) }, NOW, 6_000)).toBeNull();
  });
});

describe('judgeHealth properties', () => {
  const input = fc.record({
    connected: fc.boolean(),
    connectedAt: fc.option(fc.integer({ min: 0, max: NOW })),
    lastSuccessAt: fc.option(fc.integer({ min: 0, max: NOW })),
    lastAttemptAt: fc.option(fc.integer({ min: 0, max: NOW })),
    icmp: fc.option(
      fc.record({
        lastReplyAt: fc.option(fc.integer({ min: 0, max: NOW })),
        lastSentAt: fc.option(fc.integer({ min: 0, max: NOW })),
      }),
    ),
    fencedAt: fc.option(fc.integer({ min: 0, max: NOW })),
  });
  const health = fc.constantFrom<HostHealth>(
    'up',
    'suspect',
    'unreachable',
    'partitioned',
    'down',
    'fenced',
    'unknown',
  );

  it('keeps since while the health stays, and sets it to now when it changes', () => {
    fc.assert(
      fc.property(input, health, fc.integer({ min: 0, max: NOW }), (i, prev, since) => {
        const j = judgeHealth({ ...i, previous: { health: prev, since } }, NOW, T);
        if (j.health === 'unknown') return j.since === null;
        return j.since === (j.health === prev ? since : NOW);
      }),
    );
  });

  it('is up or suspect only while connected, partitioned only while not, never down without witnesses', () => {
    const seen = new Set<HostHealth>();
    fc.assert(
      fc.property(input, health, (i, prev) => {
        const j = judgeHealth({ ...i, previous: { health: prev, since: 0 } }, NOW, T);
        seen.add(j.health);
        if (j.health === 'up' || j.health === 'suspect') expect(i.connected).toBe(true);
        if (j.health === 'partitioned') expect(i.connected).toBe(false);
        if (j.health === 'fenced') expect(i.fencedAt).not.toBeNull();
        expect(j.health).not.toBe('down');
      }),
      { numRuns: 500, seed: 20261202 },
    );
    // The implications above hold vacuously for a state the inputs never reach: each is reached.
    expect([...seen].sort()).toEqual(['fenced', 'partitioned', 'suspect', 'unknown', 'unreachable', 'up']);
  });
});
