import { describe, expect, it, vi } from 'vitest';
import { FpingParser } from '../../../src/probe/fping-parser.ts';
import { FpingPool } from '../../../src/probe/fping-pool.ts';
import { HostPinger } from '../../../src/probe/host-pinger.ts';
import { computeWindow } from '../../../src/probe/outage.ts';
import { alive } from '../../support/process.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('FpingParser', () => {
  it('dates replies exactly, timeouts by the timeout, and infers probes fping has not printed yet', () => {
    const p = new FpingParser(['10.0.0.1', '10.0.0.2'], 10, 1000);
    p.push('[1000.00050] 10.0.0.1 : [0], 64 bytes, 0.500 ms (0.500 avg, 0% loss)\n');
    p.push('[1000.01050] 10.0.0.1 : [1], 64 bytes, 0.500 ms (0.500 avg, 0% loss)\n[1000.0');
    // seq 2 and 3 of .1 not printed yet (late replies or timeouts to come); 4 answered.
    p.push('4050] 10.0.0.1 : [4], 64 bytes, 0.500 ms (0.500 avg, 0% loss)\n');
    p.push('[1000.04100] 10.0.0.1 : duplicate for [4], 64 bytes, 1.000 ms\n');
    p.push('[1001.00000] 10.0.0.2 : [0], timed out (NaN avg, 100% loss)\n');
    p.push('fping: garbage\n[1001.01000] 10.0.0.3 : [0], 64 bytes, 0.1 ms (0.1 avg, 0% loss)\n');
    const one = p.samples('10.0.0.1');
    expect(one.map((s) => s.seq)).toEqual([0, 1, 2, 3, 4]);
    expect(one.map((s) => Math.round(s.sentAt * 10) / 10)).toEqual([
      1_000_000, 1_000_010, 1_000_020, 1_000_030, 1_000_040,
    ]);
    expect(one.map((s) => s.receivedAt === null)).toEqual([false, false, true, true, false]);
    // seq 3 answers late, seq 2 times out: still the same probes.
    p.push('[1000.04100] 10.0.0.1 : [3], 64 bytes, 11.000 ms (3 avg, 0% loss)\n');
    p.push('[1001.02000] 10.0.0.1 : [2], timed out (3 avg, 20% loss)\n');
    const again = p.samples('10.0.0.1');
    expect(again.map((s) => s.receivedAt === null)).toEqual([false, false, true, false, false]);
    expect(again[3]!.sentAt).toBeCloseTo(1_000_030, 6);
    expect(p.samples('10.0.0.2')).toEqual([
      { address: '10.0.0.2', seq: 0, sentAt: 1_000_000, receivedAt: null },
    ]);
    expect(p.samples('10.0.0.3')).toEqual([]);
    p.discardBefore('10.0.0.1', 1_000_025);
    expect(p.samples('10.0.0.1').map((s) => s.seq)).toEqual([3, 4]);
  });
});

describe('FpingPool', () => {
  it('probes several addresses at 10 ms from one fping, without loss, and restarts it when one leaves', async () => {
    const pool = new FpingPool({ intervalMs: 10, timeoutMs: 1000 });
    const probers = ['127.0.0.2', '127.0.0.3', '127.0.0.4'].map((a) => pool.prober(a));
    for (const p of probers) p.start();
    await sleep(1_200);
    const pids = pool.pids();
    expect(pids).toHaveLength(1); // one process for all three
    expect(probers.map((p) => p.pid)).toEqual([pids[0], pids[0], pids[0]]);
    const gone = await probers[2]!.stop();
    expect(gone.length).toBeGreaterThan(50);
    await sleep(1_200);
    expect(pool.pids()).toHaveLength(1);
    expect(pool.pids()[0]).not.toBe(pids[0]);
    expect(alive(pids[0]!)).toBe(false);
    const last = pool.pids()[0]!;
    for (const p of probers.slice(0, 2)) {
      const w = computeWindow(p.samples());
      expect(w.lost).toBe(0);
      expect(w.outages).toEqual([]);
      expect(w.received).toBeGreaterThan(100); // two runs of ~1.2 s at 100 Hz
      // Each address is paced at the 10 ms asked for (-p), never faster, and not 10 ms between
      // any two packets (that would be 30 ms per address with three). A median of fping's own
      // send times: 10.0 ms here with a core kept busy too, so 1.5 x leaves a busy machine room.
      expect(w.medianIntervalMs!).toBeGreaterThan(9);
      expect(w.medianIntervalMs!).toBeLessThan(10 * 1.5);
      // Sequence numbers stay unique across the restart.
      const seqs = p.samples().map((s) => s.seq);
      expect(new Set(seqs).size).toBe(seqs.length);
    }
    await pool.stop();
    expect(alive(last)).toBe(false);
    expect(pool.pids()).toEqual([]);
  });

  it('starts a group again with backoff when fping fails, counting a run that never probed as lost', async () => {
    let t = 5_000;
    const pool = new FpingPool({
      intervalMs: 10,
      timeoutMs: 1000,
      command: 'false',
      restartMinMs: 20,
      now: () => t++,
    });
    const p = pool.prober('127.0.0.2');
    p.start();
    // At least two failed runs (the second after its backoff), however slowly this machine
    // spawns them: waited for, not timed.
    const deadline = Date.now() + 20_000;
    while (p.samples().length < 2 && Date.now() < deadline) await sleep(50);
    await pool.stop();
    const s = p.samples();
    expect(s.length).toBeGreaterThanOrEqual(2);
    expect(s.every((x) => x.receivedAt === null)).toBe(true);
    expect(new Set(s.map((x) => x.seq)).size).toBe(s.length);
  });

  it('splits addresses into groups no bigger than fping sequence numbers allow', async () => {
    const pool = new FpingPool({ intervalMs: 10, timeoutMs: 1000, groupSize: 2 });
    const probers = ['127.0.0.2', '127.0.0.3', '127.0.0.4'].map((a) => pool.prober(a));
    for (const p of probers) p.start();
    await sleep(500);
    expect(pool.pids()).toHaveLength(2);
    await pool.stop();
    expect(() => new FpingPool({ intervalMs: 5, timeoutMs: 1000 })).toThrow(RangeError);
  });
});

describe('HostPinger', () => {
  it("works out an address's last reply and probe again only once fping said more about it", async () => {
    const pinger = new HostPinger(['127.0.0.2'], { intervalMs: 50, timeoutMs: 200 });
    try {
      await sleep(400);
      const samples = vi.spyOn(FpingPool.prototype, 'samples');
      const first = pinger.last('127.0.0.2')!;
      expect(first.lastReplyAt).not.toBeNull();
      const worked = samples.mock.calls.length;
      expect(worked).toBeGreaterThan(0);
      // Nothing new from fping in between (no I/O ran): the same answer, not worked out again.
      expect(pinger.last('127.0.0.2')).toEqual(first);
      expect(samples.mock.calls.length).toBe(worked);
      await sleep(200);
      const later = pinger.last('127.0.0.2')!;
      expect(later.lastReplyAt!).toBeGreaterThan(first.lastReplyAt!);
      samples.mockRestore();
    } finally {
      await pinger.stop();
    }
  });
});
