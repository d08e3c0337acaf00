import { describe, expect, it } from 'vitest';
import { computeWindow } from '../../../src/probe/outage.ts';
import { PingProber } from '../../../src/probe/ping-prober.ts';
import { alive } from '../../support/process.ts';

describe('PingProber', () => {
  it('pings 127.0.0.1 every 20 ms from one long-lived ping: replies, no outage, stopped by pid', async () => {
    const prober = new PingProber('127.0.0.1', { intervalMs: 20 });
    prober.start();
    const pid = prober.pid!;
    expect(pid).toBeGreaterThan(0);
    await new Promise((r) => setTimeout(r, 1_000));
    expect(prober.pid).toBe(pid); // still the same process: none spawned per packet
    const samples = await prober.stop();
    expect(alive(pid)).toBe(false);
    const w = computeWindow(samples);
    expect(w.received).toBeGreaterThan(10);
    expect(w).toMatchObject({ lost: 0, outageMs: 0, outages: [] });
    // RTTs are read in ms from ping's reply lines: on loopback far below the pace of the same
    // run (a unit mix-up, seconds or microseconds, would put the average above it).
    expect(w.rttMs!.avg).toBeLessThan(w.medianIntervalMs! / 4);
    // iputils paces -i 0.02 at about 24 ms here (docs/probe.md), also with a core kept busy;
    // never faster than asked. The upper bound protects one long-lived ping at -i 0.02: a
    // process per packet, or a wrong -i, would be paced far more slowly.
    expect(w.medianIntervalMs!).toBeGreaterThanOrEqual(19.5);
    expect(w.medianIntervalMs!).toBeLessThan(2 * 20);
    expect(prober.restarts).toBe(0);
  });

  it('restarts a ping that exits, with backoff, and counts a run that never probed as a lost probe', async () => {
    let t = 1_000;
    const prober = new PingProber('127.0.0.1', {
      intervalMs: 20,
      command: 'false', // exits at once without output, like ping with no route
      restartMinMs: 10,
      restartMaxMs: 40,
      now: () => (t += 100),
    });
    prober.start();
    while (prober.restarts < 3) await new Promise((r) => setTimeout(r, 5));
    const samples = await prober.stop();
    expect(samples.length).toBeGreaterThanOrEqual(3);
    expect(samples.every((s) => s.receivedAt === null && s.address === '127.0.0.1')).toBe(true);
    expect(new Set(samples.map((s) => s.seq)).size).toBe(samples.length);
    expect(computeWindow(samples).outages[0]).toMatchObject({ start: 1_100, open: true });
  });

  it('keeps the last stderr line of the command for diagnosis', async () => {
    // `ls` rejects ping's options on stderr; no name lookup, no traffic.
    const prober = new PingProber('127.0.0.1', { intervalMs: 20, command: 'ls', restartMinMs: 1_000 });
    prober.start();
    while (prober.lastError === null) await new Promise((r) => setTimeout(r, 5));
    await prober.stop();
    expect(prober.lastError).toMatch(/^(ls: |Try )/);
  });

  it('refuses intervals below what iputils allows', () => {
    expect(() => new PingProber('127.0.0.1', { intervalMs: 1 })).toThrow(RangeError);
  });
});
