import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createVm, guestLoad, type LabState, readState, startPing } from '../../lab/index.ts';
import { type RunningKeizokud, startKeizokud } from '../support/keizokud.ts';
import { sharedLab } from '../support/lab-fixture.ts';
import { startRedis } from '../support/redis.ts';
import { waitInventory as waitInventoryOf, waitJobEnd, whereIs } from '../support/vm-jobs.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Migration jobs, cancellation, timeouts, post-copy and crash recovery, on the lab through keizokud. */
describe('migration jobs against the lab', () => {
  let lab: LabState;
  let kz: RunningKeizokud;
  let redis: Awaited<ReturnType<typeof startRedis>>;
  let admin: string;

  const address = (vm: string) => lab.vms.find((v) => v.name === vm)!.address;
  const where = (vm: string) => whereIs(lab, vm);
  const migrate = (vm: string, body: Record<string, unknown>) =>
    kz.request('POST', `/v1/vms/${vm}/migrate`, admin, body);
  const waitJob = (id: string, timeoutMs?: number) => waitJobEnd(kz, admin, id, timeoutMs);
  const waitInventory = (vm: string, onHost: string) => waitInventoryOf(kz, admin, vm, onHost);

  beforeAll(async () => {
    redis = await startRedis();
    lab = sharedLab();
    await Promise.all([
      createVm(lab.id, { name: 'mg1', host: 'h1' }),
      createVm(lab.id, { name: 'mg2', host: 'h2' }),
      createVm(lab.id, { name: 'mg3', host: 'h1' }),
    ]);
    lab = readState(lab.id)!;
    kz = await startKeizokud(lab, redis.url, {
      migration: { sessionCheckPort: 7, progressIntervalMs: 200 },
      libvirt: { keepaliveIntervalSec: 1, keepaliveCount: 3 },
    });
    admin = await kz.token('admin');
    for (const vm of ['mg1', 'mg2', 'mg3'])
      await waitInventory(vm, readState(lab.id)!.vms.find((v) => v.name === vm)!.createdOn);
  }, 120_000);

  afterAll(async () => {
    for (const vm of ['mg1', 'mg2', 'mg3'])
      await guestLoad(address(vm), { dirty: 'stop' }).catch(() => undefined);
    await kz?.stop();
    await redis?.stop();
  });

  it('moves a VM live: job result with libvirt downtime, session kept, definition moved, audited as the controller', async () => {
    const r = await migrate('mg1', { to: 'h2' });
    expect(r.status, JSON.stringify(r.body)).toBe(202);
    const again = await migrate('mg1', { to: 'h2' });
    expect(again.status).toBe(409); // one job per VM
    expect(again.body.error.message).toMatch(/already has job mig-/);
    const job = await waitJob(r.body.id);
    expect(job.state, JSON.stringify(job.result)).toBe('succeeded');
    expect(job.result.host).toBe('h2');
    expect(job.result.libvirtDowntimeMs).toBeGreaterThan(0);
    expect(job.result.totalMs).toBeGreaterThan(0);
    expect(job.result.session).toMatchObject({ survived: true });
    expect(job.result.checks.map((c: { check: string }) => c.check)).toContain('cpu');
    expect(await where('mg1')).toEqual({ running: ['h2'], defined: ['h2'] });
    const audit = await kz.request('GET', '/v1/audit?actor=controller&target=mg1&limit=10', admin);
    expect(audit.body.entries.map((e: { action: string }) => e.action)).toEqual([
      'migration.finish',
      'migration.start',
    ]);
  });

  it('refuses at once, with the reason, a move to a missing host or one without room, and moves nothing', async () => {
    const missing = await migrate('mg2', { to: 'h9' });
    expect(missing.status).toBe(409);
    expect(missing.body.error.message).toBe('no host named "h9"');
    const same = await migrate('mg2', { to: 'h2' });
    expect(same.body.error.message).toBe('mg2 already runs on h2');
    const bad = await migrate('mg2', { to: 'h1', policy: { timeoutMs: 5 } });
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toMatch(/^body\.policy\.timeoutMs: must be >= 1000/);
    expect((await where('mg2')).running).toEqual(['h2']);
  });

  it('drives the move from the CLI with --wait and an exit code by outcome', async () => {
    await waitInventory('mg1', 'h2');
    const r = spawnSync(
      'node',
      ['bin/keizoku.mjs', 'vm', 'migrate', 'mg1', '--to', 'h1', '--wait', '--json'],
      {
        encoding: 'utf8',
        env: { ...process.env, KEIZOKU_URL: kz.url, KEIZOKU_TOKEN: admin, KEIZOKU_CONFIG: '' },
      },
    );
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ vm: 'mg1', state: 'succeeded', result: { host: 'h1' } });
  });

  it('converges a VM that dirties memory by switching to post-copy within the deadline', async () => {
    await waitInventory('mg1', 'h1');
    await guestLoad(address('mg1'), { dirty: 'start', mb: 48 });
    // 8 MiB/s: the first pass over the guest's memory takes about 12 s, time enough for the
    // guest to dirty its 48 MiB again even when it gets little CPU (at 16 MiB/s, on a machine
    // with one core kept busy, the guest dirtied too little and the move converged in pre-copy).
    const r = await migrate('mg1', {
      to: 'h2',
      policy: {
        autoConverge: false,
        postCopyAfterIterations: 2,
        bandwidthMiBs: 8,
        maxDowntimeMs: 1,
        timeoutMs: 60_000,
      },
    });
    expect(r.status, JSON.stringify(r.body)).toBe(202);
    const job = await waitJob(r.body.id);
    expect(job.state, JSON.stringify(job.result)).toBe('succeeded');
    expect(job.result.postCopy).toBe(true);
    // Within the policy's own deadline (timeoutMs above), which the job enforces: not a speed bound.
    expect(job.result.totalMs).toBeLessThan(60_000);
    expect((await where('mg1')).running).toEqual(['h2']);
  });

  it('converges it with auto-converge (CPU throttling) within the deadline', async () => {
    await waitInventory('mg1', 'h2');
    const r = await migrate('mg1', {
      to: 'h1',
      policy: {
        autoConverge: true,
        postCopyAfterIterations: 0,
        bandwidthMiBs: 16,
        maxDowntimeMs: 100,
        timeoutMs: 90_000,
      },
    });
    const job = await waitJob(r.body.id);
    expect(job.state, JSON.stringify(job.result)).toBe('succeeded');
    expect(job.result.postCopy).toBe(false);
    expect(job.result.iterations).toBeGreaterThan(1);
    expect((await where('mg1')).running).toEqual(['h1']);
  });

  it('aborts a move that cannot converge at the timeout; the VM keeps running on the source', async () => {
    await waitInventory('mg1', 'h1');
    // The guest's own answering under its memory load, before the move: the baseline.
    const before = startPing(address('mg1'), 50);
    await sleep(3_000);
    const base = await before.stop();
    const ping = startPing(address('mg1'), 50);
    const r = await migrate('mg1', {
      to: 'h2',
      policy: {
        autoConverge: false,
        postCopyAfterIterations: 0,
        bandwidthMiBs: 2,
        maxDowntimeMs: 1,
        timeoutMs: 4_000,
      },
    });
    const job = await waitJob(r.body.id);
    const seen = await ping.stop();
    expect(job.state).toBe('aborted');
    expect(job.result.reason).toMatch(/^timed out after 4000 ms; mg1 runs on h1$/);
    expect(await where('mg1')).toEqual({ running: ['h1'], defined: ['h1'] });
    // It kept running on the source all along: no pause longer than a few of the gaps the same
    // guest had under the same load just before (the loaded TCG guest drops pings of its own on
    // a busy machine, so a fixed loss share fails without any pause).
    console.log(
      `abort: ${seen.received}/${seen.sent} answered, longest gap ${seen.maxGapMs} ms; before: ${base.received}/${base.sent}, ${base.maxGapMs} ms`,
    );
    expect(seen.maxGapMs).toBeLessThan(Math.max(1_500, 4 * base.maxGapMs));
    // Clean-up, not part of the verdict: no later test uses mg1. Once in a full run the guest's
    // httpd refused this request right after the abort (the 48 MiB loop in a 96 MiB guest);
    // try a few times, and say so if it never answers.
    for (let i = 0; ; i++) {
      try {
        await guestLoad(address('mg1'), { dirty: 'stop' });
        break;
      } catch (e) {
        if (i === 4) {
          console.warn(`mg1: could not stop the dirtying loop: ${(e as Error).message}`);
          break;
        }
        await sleep(1_000);
      }
    }
  });

  it('cancels a running migration: libvirt aborts and the VM stays on the source', async () => {
    const r = await migrate('mg3', { to: 'h2', policy: { bandwidthMiBs: 1, autoConverge: false } });
    for (let i = 0; i < 100; i++) {
      const j = await kz.request('GET', `/v1/jobs/${r.body.id}`, admin);
      if (j.body.progress?.phase === 'migrating') break;
      await sleep(100);
    }
    const c = await kz.request('DELETE', `/v1/jobs/${r.body.id}`, admin);
    expect(c.status).toBe(202);
    const job = await waitJob(r.body.id);
    expect(job.state).toBe('cancelled');
    expect(await where('mg3')).toEqual({ running: ['h1'], defined: ['h1'] });
    const late = await kz.request('DELETE', `/v1/jobs/${r.body.id}`, admin);
    expect(late.status).toBe(409);
  });

  it('survives kill -9 of keizokud mid-move: after restart the job ends with the true outcome, the VM on one host', async () => {
    await waitInventory('mg3', 'h1');
    const r = await migrate('mg3', { to: 'h2', policy: { bandwidthMiBs: 2, autoConverge: false } });
    for (let i = 0; i < 100; i++) {
      const j = await kz.request('GET', `/v1/jobs/${r.body.id}`, admin);
      if (j.body.progress?.phase === 'migrating') break;
      await sleep(100);
    }
    await kz.kill('SIGKILL');
    await kz.restart();
    const job = await waitJob(r.body.id, 180_000);
    const placed = await where('mg3');
    expect(placed.running).toHaveLength(1);
    expect(placed.defined).toEqual(placed.running);
    expect(job.result.reconciled).toBe(true);
    expect(job.result.host).toBe(placed.running[0]);
    expect(job.state).toBe(placed.running[0] === 'h2' ? 'succeeded' : 'failed');
  }, 240_000);
});
