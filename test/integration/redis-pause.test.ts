import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createVm, guestLoad, type LabState, readState, virsh } from '../../lab/index.ts';
import { type RunningKeizokud, startKeizokud } from '../support/keizokud.ts';
import { sharedLab } from '../support/lab-fixture.ts';
import { startRedis } from '../support/redis.ts';
import { waitInventory as waitInventoryOf, waitJobEnd, whereIs } from '../support/vm-jobs.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * F14: Redis goes away (CLIENT PAUSE ALL) in the middle of a slow move. keizokud keeps watching
 * libvirt's job meanwhile: the timeout is enforced during the pause, and the job ends with what
 * libvirt did, the VM on exactly one host.
 */
describe('F14: a migration while Redis is paused', () => {
  let lab: LabState;
  let kz: RunningKeizokud;
  let redis: Awaited<ReturnType<typeof startRedis>>;
  let admin: string;

  const address = (vm: string) => lab.vms.find((v) => v.name === vm)!.address;
  const where = (vm: string) => whereIs(lab, vm);
  const hostOf = (name: string) => lab.layout.hosts.find((h) => h.name === name)!;
  /** libvirt's own view of the move: the job type virsh domjobinfo reports on the source. */
  const libvirtJob = async (vm: string, on: string) => {
    const r = await virsh(hostOf(on), ['domjobinfo', vm]).catch(() => ({ stdout: '' }));
    return /Job type:\s+(\S+)/.exec(r.stdout)?.[1] ?? 'None';
  };
  const pauseRedis = (ms: number) => {
    const r = spawnSync('redis-cli', ['-p', String(redis.port), 'CLIENT', 'PAUSE', String(ms), 'ALL'], {
      encoding: 'utf8',
    });
    expect(r.stdout.trim(), r.stderr).toBe('OK');
  };
  const waitJob = (id: string, timeoutMs?: number) => waitJobEnd(kz, admin, id, timeoutMs);
  const waitMigrating = async (id: string) => {
    for (let i = 0; i < 200; i++) {
      const j = await kz.request('GET', `/v1/jobs/${id}`, admin);
      if (j.body.progress?.phase === 'migrating' && j.body.progress.dataProcessedBytes > 0) return;
      await sleep(100);
    }
    throw new Error(`job ${id} never reached the migrating phase`);
  };
  const waitInventory = (vm: string, onHost: string) => waitInventoryOf(kz, admin, vm, onHost);

  beforeAll(async () => {
    redis = await startRedis();
    lab = sharedLab();
    await Promise.all([
      createVm(lab.id, { name: 'rp1', host: 'h1' }),
      createVm(lab.id, { name: 'rp2', host: 'h1' }),
    ]);
    lab = readState(lab.id)!;
    kz = await startKeizokud(lab, redis.url, { migration: { progressIntervalMs: 200 } });
    admin = await kz.token('admin');
    for (const vm of ['rp1', 'rp2']) await waitInventory(vm, 'h1');
  }, 180_000);

  afterAll(async () => {
    for (const vm of ['rp1', 'rp2']) await guestLoad(address(vm), { dirty: 'stop' }).catch(() => undefined);
    await kz?.stop();
    await redis?.stop();
  });

  it('F14: the timeout is enforced while Redis is paused; the job ends aborted and the VM runs on the source only', async () => {
    await guestLoad(address('rp1'), { dirty: 'start', mb: 48 });
    const r = await kz.request('POST', '/v1/vms/rp1/migrate', admin, {
      to: 'h2',
      policy: {
        autoConverge: false,
        postCopyAfterIterations: 0,
        bandwidthMiBs: 2,
        maxDowntimeMs: 1,
        timeoutMs: 3_000,
      },
    });
    expect(r.status, JSON.stringify(r.body)).toBe(202);
    await waitMigrating(r.body.id);
    const pausedUntil = Date.now() + 5_000;
    pauseRedis(5_000);
    // libvirt's job ends while Redis is still paused: keizokud aborted it at the timeout
    // without waiting for Redis (before the fix, the watch loop waited on its heartbeat).
    let jobType = await libvirtJob('rp1', 'h1');
    while (jobType !== 'None' && Date.now() < pausedUntil - 300) {
      await sleep(100);
      jobType = await libvirtJob('rp1', 'h1');
    }
    const endedDuringPause = jobType === 'None' && Date.now() < pausedUntil;
    expect(endedDuringPause, `libvirt's job on h1 is still ${jobType} at the end of the pause`).toBe(true);
    const job = await waitJob(r.body.id);
    expect(job.state, JSON.stringify(job.result)).toBe('aborted');
    expect(job.result.reason).toBe('timed out after 3000 ms; rp1 runs on h1');
    expect(await where('rp1')).toEqual({ running: ['h1'], defined: ['h1'] });
    await guestLoad(address('rp1'), { dirty: 'stop' }).catch(() => undefined);
  });

  it('F14: a move that completes while Redis is paused ends succeeded, as libvirt says, on the destination only', async () => {
    const r = await kz.request('POST', '/v1/vms/rp2/migrate', admin, {
      to: 'h2',
      policy: { autoConverge: false, postCopyAfterIterations: 0, bandwidthMiBs: 8, timeoutMs: 120_000 },
    });
    expect(r.status, JSON.stringify(r.body)).toBe(202);
    await waitMigrating(r.body.id);
    pauseRedis(5_000);
    const job = await waitJob(r.body.id);
    const placed = await where('rp2');
    expect(placed).toEqual({ running: ['h2'], defined: ['h2'] });
    expect(job.state, JSON.stringify(job.result)).toBe('succeeded');
    expect(job.result).toMatchObject({ host: 'h2', reconciled: false });
  });
});
