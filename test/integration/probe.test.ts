import { beforeAll, describe, expect, it } from 'vitest';
import {
  createVm,
  fenceHost,
  healHost,
  type LabState,
  readState,
  startPing,
  virshMigrate,
} from '../../lab/index.ts';
import { computeWindow } from '../../src/probe/outage.ts';
import { PingProber } from '../../src/probe/ping-prober.ts';
import { TcpSessionCheck } from '../../src/probe/tcp-session.ts';
import { sharedLab } from '../support/lab-fixture.ts';

const INTERVAL_MS = 20;

/**
 * The probe's outage of a raw virsh live migration, checked against an independent capture:
 * a second ping -D whose longest gap between replies is computed by the lab's own parser.
 */
describe('probe against the lab', () => {
  let lab: LabState;

  beforeAll(async () => {
    lab = sharedLab();
    await createVm(lab.id, { name: 'pr1', host: 'h1' });
    lab = readState(lab.id)!;
  });

  it('measures a live migration within a site, agreeing with an independent ping capture', async () => {
    const address = lab.vms.find((v) => v.name === 'pr1')!.address;
    const prober = new PingProber(address, { intervalMs: INTERVAL_MS });
    prober.start();
    const independent = startPing(address, INTERVAL_MS);
    await new Promise((r) => setTimeout(r, 500));
    const m = await virshMigrate(lab, 'pr1', 'h1', 'h2');
    await new Promise((r) => setTimeout(r, 500));
    const [samples, capture] = await Promise.all([prober.stop(), independent.stop()]);
    const w = computeWindow(samples, { intervalMs: INTERVAL_MS });
    console.log(
      `probe: sent ${w.sent}, lost ${w.lost}, outage ${w.outageMs.toFixed(1)} ms; independent longest gap ${capture.maxGapMs} ms; libvirt downtime ${m.downtimeMs} ms`,
    );
    expect(w.sent).toBeGreaterThan(30);
    expect(w.outages.every((o) => !o.open)).toBe(true);
    // Both views of the same move agree within two probe intervals (plus ping's own pacing).
    expect(Math.abs(w.outageMs - capture.maxGapMs)).toBeLessThanOrEqual(2 * INTERVAL_MS + 16);
  });

  it('keeps a TCP session to the guest through a live migration, and loses it when the host is fenced', async () => {
    const address = lab.vms.find((v) => v.name === 'pr1')!.address; // on h2 after the previous test
    const session = new TcpSessionCheck({ host: address, port: 7, heartbeatMs: 50, breakAfterMs: 3_000 });
    await session.start();
    await virshMigrate(lab, 'pr1', 'h2', 'h1');
    await new Promise((r) => setTimeout(r, 500));
    const moved = session.stop();
    console.log(`session through migration: ${JSON.stringify(moved)}`);
    expect(moved).toMatchObject({ survived: true });
    expect(moved.echoed).toBeGreaterThan(10);

    const lost = new TcpSessionCheck({ host: address, port: 7, heartbeatMs: 50, breakAfterMs: 1_000 });
    await lost.start();
    await fenceHost(lab.id, 'h1');
    try {
      await new Promise((r) => setTimeout(r, 2_000));
      const r = lost.stop();
      expect(r.survived).toBe(false);
      expect(r.reason).toMatch(/no echo/);
    } finally {
      await healHost(lab.id, 'h1');
    }
  });
});
