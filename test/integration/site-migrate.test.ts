import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createVm,
  guestLoad,
  type LabState,
  parseGuestStatus,
  readState,
  startPing,
  waitFor,
} from '../../lab/index.ts';
import { type RunningKeizokud, startKeizokud } from '../support/keizokud.ts';
import { sharedLab } from '../support/lab-fixture.ts';
import { type RunningProbe, startProbeAgent } from '../support/probe-agent.ts';
import { startRedis } from '../support/redis.ts';
import { waitInventory, waitJobEnd, whereIs } from '../support/vm-jobs.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const MiB = 1024 * 1024;
/** The WAN rule's cap, below the lab's shaped WAN so that the cap, not the link, sets the pace. */
const CAP_MIBS = 8;
const PING_MS = 20;
/** What the guest's loop rewrites, over and over, while it moves. */
const DIRTY_MB = 8;

/** Gaps between consecutive replies (and the capture's ends), longest first. */
const gaps = (replies: readonly number[]) =>
  replies
    .slice(1)
    .map((t, i) => t - replies[i]!)
    .sort((a, b) => b - a);

/**
 * A live move across the lab's WAN (h1 in dc1 to h3 in dc2) by the migrate job, with the
 * cross-site rule of the VM's tier, of a VM with a local disk while its memory-dirtying loop
 * runs: the disk is copied, the cap is what libvirt runs the move with, the TCP session and the
 * loop survive, and the probe agent's outage is in the job's record.
 */
describe('cross-site live migration with a WAN rule', () => {
  let lab: LabState;
  let kz: RunningKeizokud;
  let probe: RunningProbe;
  let redis: Awaited<ReturnType<typeof startRedis>>;
  let admin: string;
  let address: string;

  beforeAll(async () => {
    redis = await startRedis();
    lab = sharedLab();
    await createVm(lab.id, { name: 'sx1', host: 'h1', disk: 'local', memoryMiB: 128 });
    lab = readState(lab.id)!;
    address = lab.vms.find((v) => v.name === 'sx1')!.address;
    kz = await startKeizokud(lab, redis.url, {
      migration: {
        sessionCheckPort: 7,
        progressIntervalMs: 200,
        crossSite: [
          {
            sites: ['dc1', 'dc2'],
            tier: 'core',
            bandwidthMiBs: CAP_MIBS,
            // The guest's loop rewrites the same bytes: xbzrle sends those pages as near-empty
            // deltas, so the move converges without auto-converge throttling the guest for
            // seconds (seen without it: 25 passes, gaps of 1-2 s while it copied).
            compression: ['xbzrle'],
            maxDowntimeMs: 300,
          },
          // Would apply to a VM without the core tier: not this one.
          { sites: ['dc1', 'dc2'], bandwidthMiBs: 50 },
        ],
      },
      vms: [
        { match: { name: 'sx1' }, tier: 'core', limits: 'standard', homeSite: 'dc1', recoverySite: 'dc2' },
      ],
    });
    admin = await kz.token('admin');
    await waitInventory(kz, admin, 'sx1', 'h1');
    probe = await startProbeAgent(kz, ['sx1'], PING_MS);
  }, 180_000);

  afterAll(async () => {
    await guestLoad(address, { dirty: 'stop' }).catch(() => undefined);
    await probe?.stop();
    await kz?.stop();
    await redis?.stop();
  });

  /**
   * One move of sx1 with its loop running, measured. `reset`: the guest was not the same guest
   * afterwards (its uptime started again, or its loop is gone). Under TCG this lab's QEMU 7.2
   * sometimes hands over a guest whose memory is inconsistent, and it panics right after
   * resuming (docs/operations.md); that is the lab's, not the move's.
   */
  const moveOnce = async (from: string, to: string) => {
    const src = lab.layout.hosts.find((h) => h.name === from)!;
    const started = parseGuestStatus(await guestLoad(address, { dirty: 'start', mb: DIRTY_MB }));
    expect(started.dirty).toBe('running');
    const ping = startPing(address, PING_MS);
    // The same ping, the loop running, a while before the move (printed for comparison).
    await sleep(3_000);
    const r = await kz.request('POST', '/v1/vms/sx1/migrate', admin, { to, copyStorage: true });
    expect(r.status, JSON.stringify(r.body)).toBe(202);
    // While it moves, libvirt's own view of the move's bandwidth (virsh migrate-getspeed).
    const speeds: string[] = [];
    let moveStart = 0;
    for (let i = 0; i < 600; i++) {
      const j = await kz.request('GET', `/v1/jobs/${r.body.id}`, admin);
      if (j.body.state !== 'active' && j.body.state !== 'waiting') break;
      if (j.body.progress?.phase === 'migrating') {
        moveStart ||= Date.now();
        const v = spawnSync('virsh', ['-c', src.uri, 'migrate-getspeed', 'sx1'], { encoding: 'utf8' });
        if (v.status === 0) speeds.push(v.stdout.trim());
      }
      await sleep(200);
    }
    const job = await waitJobEnd(kz, admin, r.body.id);
    await sleep(1_000);
    const seen = await ping.stop();
    const after = parseGuestStatus((await guestLoad(address).catch(() => '')) || 'down=1');
    const reset = after.dirty !== 'running' || !(Number(after.uptime) > Number(started.uptime));
    return { job, seen, speeds, moveStart, started, after, reset };
  };

  it('moves h1 to h3 with its disk and its dirtying loop, capped by the core rule; the outage is the switch-over', async (ctx) => {
    const h1 = lab.layout.hosts.find((h) => h.name === 'h1')!;
    expect(lab.layout.hosts.find((h) => h.name === 'h3')!.site).not.toBe(h1.site);
    // The cap is below the WAN's own rate, or the check below could not tell them apart.
    expect(CAP_MIBS * 8 * 1.048576).toBeLessThan(lab.wanRateMbit);
    // The lab's guest crash (moveOnce): such a move is reported with what keizoku recorded (a
    // reset it counted must not leave the session called kept), and the VM moves on, the other
    // way, up to three moves in all; every assertion below is on the first clean one.
    const route = [
      ['h1', 'h3'],
      ['h3', 'h1'],
      ['h1', 'h3'],
    ] as const;
    let m = await moveOnce(...route[0]);
    for (let i = 1; m.reset; i++) {
      console.log(
        `cross-site move ${route[i - 1]!.join(' -> ')}: the guest reset after the move (uptime ${m.started.uptime} -> ${m.after.uptime ?? 'no answer'}; guestResets ${m.job.result.guestResets}, session ${JSON.stringify(m.job.result.session)})`,
      );
      expect(m.job.state, JSON.stringify(m.job.result)).toBe('succeeded');
      if (m.job.result.guestResets > 0) expect(m.job.result.session).toMatchObject({ survived: false });
      // Three resets in a row: the lab gave no clean move to measure. Each was checked above;
      // the outage bounds cannot be, and the test says so as skipped rather than passed.
      if (i >= route.length) {
        console.log(
          'cross-site move: the guest reset after each of three moves (the lab under TCG); outage not measured',
        );
        ctx.skip();
        return;
      }
      // A guest that hung instead of resetting (seen: no answer for minutes) cannot move again.
      const back = await waitFor(
        'sx1 answering again',
        () =>
          guestLoad(address).then(
            () => true,
            () => false,
          ),
        60_000,
        500,
      ).then(
        () => true,
        () => false,
      );
      if (!back) {
        console.log(
          'cross-site move: the guest did not answer again within 60 s (hung, the lab under TCG); outage not measured',
        );
        ctx.skip();
        return;
      }
      const [from, to] = route[i]!;
      m = await moveOnce(from, to);
    }
    const { job, seen, speeds, moveStart, started, after } = m;
    const dest = job.result.host as string;
    const srcHost = dest === 'h3' ? 'h1' : 'h3';
    expect(job.state, JSON.stringify(job.result)).toBe('succeeded');
    expect(await whereIs(lab, 'sx1')).toEqual({ running: [dest], defined: [dest] });
    expect(job.result.settings).toMatchObject({
      bandwidthMiBs: CAP_MIBS,
      compression: ['xbzrle'],
      maxDowntimeMs: 300,
      crossSite: {
        fromSite: dest === 'h3' ? 'dc1' : 'dc2',
        toSite: dest === 'h3' ? 'dc2' : 'dc1',
        rule: 'migration.crossSite[0]',
      },
    });
    // The local disk went with it, and the loop kept running through the move.
    const disk = job.result.checks.find((c: { check: string }) => c.check === 'storage');
    expect(disk).toMatchObject({ disk: 'vda', ok: true, copy: true });
    expect(disk.detail).toMatch(new RegExp(`local to ${srcHost}\\) copied to ${dest}`));
    // The same guest, not a restarted one (a guest that reset after the switch-over answers ping
    // again within seconds, after the job's session check has ended): its uptime went on.
    expect(after.dirty).toBe('running');
    expect(Number(after.uptime)).toBeGreaterThan(Number(started.uptime));
    expect(job.result.guestResets).toBe(0);
    // Memory dirtied during the copy was sent again: more than one pass.
    expect(job.result.iterations).toBeGreaterThan(1);
    // What was sent, over the time libvirt took: at most the cap (10 % for QEMU's rate windows).
    const rateMiBs = job.result.dataTransferredBytes / MiB / (job.result.totalMs / 1000);
    const before = gaps(seen.replies.filter((t) => t < moveStart));
    const g = gaps(seen.replies);
    const agent = job.result.probe[0];
    console.log(
      `cross-site move: ${(job.result.dataTransferredBytes / MiB).toFixed(1)} MiB of memory in ${job.result.totalMs} ms = ${rateMiBs.toFixed(2)} MiB/s (cap ${CAP_MIBS}), ${job.result.iterations} passes; libvirt downtime ${job.result.libvirtDowntimeMs} ms; ping every ${PING_MS} ms ${seen.received}/${seen.sent}, longest gaps ${g.slice(0, 3).join(', ')} ms, before the move ${before[0]} ms; probe agent outage ${agent?.outageMs} ms (${agent?.lost}/${agent?.sent} lost)`,
    );
    expect(rateMiBs).toBeLessThanOrEqual(CAP_MIBS * 1.1);
    // libvirt's job holds the cap while memory is sent: its first reads come before (the job
    // exists from the begin phase; the cap is set with the transfer) and its last may come after
    // the transfer (libvirt then reports no cap again); every read in between is the cap.
    console.log(`migrate-getspeed during the move: ${speeds.join(', ')}`);
    const first = speeds.indexOf(String(CAP_MIBS));
    const last = speeds.lastIndexOf(String(CAP_MIBS));
    expect(first, 'libvirt never reported the cap').toBeGreaterThanOrEqual(0);
    expect(speeds.slice(first, last + 1).every((v) => v === String(CAP_MIBS))).toBe(true);
    expect(last - first + 1, 'reads at the cap').toBeGreaterThanOrEqual(3);
    // The session held, and the VM answered through the move: its longest silence is the
    // switch-over libvirt reports plus what the same guest's replies stalled by otherwise in
    // this run (the next longest gap, under the copy's load: resuming on the destination costs
    // about as much) and two ping intervals for where the pause falls between pings. A reset
    // guest, a stale location on the WAN or a throttled guest (seconds) cannot fit in that.
    expect(job.result.session).toMatchObject({ survived: true });
    const boundMs = job.result.libvirtDowntimeMs + g[1]! + 2 * PING_MS;
    expect(seen.received).toBeGreaterThan(seen.sent * 0.8);
    expect(g[0], `ping gap vs libvirt downtime ${job.result.libvirtDowntimeMs} ms`).toBeLessThanOrEqual(
      boundMs,
    );
    // The probe agent's outage is in the job's record, and within the same bound (its own
    // interval once more for where its window starts).
    expect(agent).toMatchObject({ probe: 'test-probe' });
    expect(agent.sent).toBeGreaterThan(50);
    expect(agent.outageMs).toBeLessThanOrEqual(boundMs + PING_MS);
  }, 720_000);
});
