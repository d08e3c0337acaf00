import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createVm, guestLoad, type LabState, readState, virsh } from '../../lab/index.ts';
import type { LibvirtClient } from '../../src/libvirt/index.ts';
import { type RunningKeizokud, startKeizokud } from '../support/keizokud.ts';
import { sharedLab } from '../support/lab-fixture.ts';
import { cpuShare, openLabClient } from '../support/libvirt.ts';
import { startRedis } from '../support/redis.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const VM = 'burst1';
const CAP = 50;
const BURST = 90;
const HOLD_S = 10;

/**
 * Burst protection on the lab: a guest whose limits profile caps its CPU at 50 % and allows a
 * burst to 90 % runs alone on h1 (h2 idle, same site). Its burner runs against the cap; h1 has
 * room, so DRS raises the cap (a drs decision with a raise-cpu-cap action) instead of moving
 * the guest, and once the burner stops and the raise's hold ends the profile's cap is back.
 */
describe('DRS burst protection against the lab', () => {
  let lab: LabState;
  let redis: Awaited<ReturnType<typeof startRedis>>;
  let kz: RunningKeizokud | null = null;
  let h1: LibvirtClient | null = null;
  let dir: string;
  const address = () => lab.vms.find((v) => v.name === VM)!.address;
  /** The VM's vcpu_quota as `virsh schedinfo` shows it on h1, µs per period. */
  const quota = async () => {
    const out = (await virsh(lab.layout.hosts[0]!, ['schedinfo', VM, '--live'])).stdout;
    return Number(out.match(/^vcpu_quota\s*:\s*(-?\d+)/m)?.[1]);
  };
  const waitQuota = async (want: number, timeoutMs: number) => {
    const t0 = Date.now();
    while ((await quota()) !== want && Date.now() - t0 < timeoutMs) await sleep(250);
    return Date.now() - t0;
  };

  beforeAll(async () => {
    redis = await startRedis();
    lab = sharedLab();
    await createVm(lab.id, { name: VM, host: 'h1' });
    lab = readState(lab.id)!;
    dir = mkdtempSync(join(tmpdir(), 'keizokud-burst-'));
    const limitsFile = join(dir, 'limits.yaml');
    writeFileSync(
      limitsFile,
      [
        'profiles:',
        '  burst-cap:',
        '    cpu:',
        `      quotaPercent: ${CAP}`,
        `      burstQuotaPercent: ${BURST}`,
        `      burstHoldSeconds: ${HOLD_S}`,
        '',
      ].join('\n'),
    );
    kz = await startKeizokud(lab, redis.url, {
      // Level 3: h1 is relieved only above 85 %, so nothing here pays for a move.
      drs: { mode: 'automatic', aggressiveness: 3, intervalSec: 30 },
      loops: { inventoryIntervalMs: 1_000, limitsIntervalMs: 1_000 },
      policies: { limitsFile },
      vms: [{ match: { name: VM }, tier: 'frontend-seasonal', limits: 'burst-cap' }],
    });
    h1 = await openLabClient(lab, 'h1');
  }, 120_000);

  afterAll(async () => {
    await guestLoad(address(), { burn: 'stop' }).catch(() => undefined);
    await h1?.close();
    await kz?.stop();
    await redis?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('raises the cap of a bursting guest its host has room for instead of moving it, and puts it back after', async () => {
    const admin = await kz!.token('admin');
    // The limits loop applies the profile's cap; then 30 quiet seconds, so that the long window
    // holds the idle guest and its burst shows as one.
    expect(await waitQuota(CAP * 1_000, 30_000)).toBeLessThan(30_000);
    await sleep(30_000);

    const burnAt = Date.now();
    await guestLoad(address(), { burn: 'start' });
    const capped = await cpuShare(h1!, VM, 3_000);
    const jobs = async () =>
      (await kz!.request('GET', `/v1/jobs?reason=drs:burst:h1&vm=${VM}`, admin)).body.jobs as {
        id: string;
        state: string;
      }[];
    let raised: { id: string; state: string } | undefined;
    while (!raised && Date.now() - burnAt < 90_000) {
      raised = (await jobs()).find((j) => j.state === 'succeeded' || j.state === 'failed');
      if (!raised) await sleep(250);
    }
    const raisedMs = Date.now() - burnAt;
    expect(raised, 'no drs:burst job within 90 s of the burner start').toBeDefined();
    expect(raised!.state).toBe('succeeded');
    const quotaRaised = await quota();
    const burst = await cpuShare(h1!, VM, 3_000);
    console.log(
      `DRS burst: cap raised ${raisedMs} ms after the burner's start; CPU of ${VM} capped ${capped.toFixed(2)}, raised ${burst.toFixed(2)}; vcpu_quota ${quotaRaised}`,
    );
    // libvirt holds the allowance's cap, and the guest uses what it was given: more than under
    // its own cap in this run (a figure of the same run, not a speed).
    expect(quotaRaised).toBe(BURST * 1_000);
    expect(burst).toBeGreaterThan(capped * 1.3);

    const d = (await kz!.request('GET', `/v1/vms/${VM}/decisions?limit=5`, admin)).body.decisions.find(
      (x: { actions: { kind: string }[] }) => x.actions.some((a) => a.kind === 'raise-cpu-cap'),
    );
    expect(d, 'no decision with a raise-cpu-cap action').toBeDefined();
    expect(d.planner).toBe('drs');
    expect(d.reason).toMatch(
      new RegExp(
        `^burst protection: ${VM} bursts against its cap of ${CAP} % per vCPU; h1 has [\\d.]+ vCPUs free`,
      ),
    );
    expect(d.actions[0]).toMatchObject({ kind: 'raise-cpu-cap', vm: VM, host: 'h1', quotaPercent: BURST });
    const e = (await kz!.request('GET', `/v1/drs/explain/${VM}`, admin)).body;
    expect(e.explanation.verdict, JSON.stringify(e.explanation)).toBe('cap-raised');
    // Raised, not moved: no migration job, still on h1.
    expect((await kz!.request('GET', `/v1/jobs?reason=drs:h1&vm=${VM}`, admin)).body.jobs).toEqual([]);
    expect((await kz!.request('GET', `/v1/vms/${VM}`, admin)).body.host).toBe('h1');
    const metrics = await fetch(kz!.metricsUrl).then((r) => r.text());
    expect(metrics).toMatch(/keizoku_drs_cap_raises_total\{outcome="submitted",kind="raise"\} 1\b/);

    // The burst ends: DRS stops renewing, the raise lapses and the limits loop puts the cap back.
    const stopAt = Date.now();
    const status = await guestLoad(address(), { burn: 'stop' });
    expect(status).toMatch(/burn=stopped/);
    const restoredMs = await waitQuota(CAP * 1_000, (HOLD_S + 20) * 1_000);
    console.log(`DRS burst: profile cap back ${Date.now() - stopAt} ms after the burner stopped`);
    expect(await quota(), `cap not back ${restoredMs} ms after the burst`).toBe(CAP * 1_000);
    expect((await kz!.request('GET', `/v1/vms/${VM}`, admin)).body.host).toBe('h1');
  }, 240_000);
});
