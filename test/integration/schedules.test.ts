import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createVm, type LabState, readState } from '../../lab/index.ts';
import { localDate } from '../../src/core/schedule.ts';
import { type RunningKeizokud, startKeizokud } from '../support/keizokud.ts';
import { sharedLab } from '../support/lab-fixture.ts';
import { startRedis } from '../support/redis.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A schedule with a short cron expression shuts a VM down and later starts it, through libvirt. */
describe('VM schedules against the lab', () => {
  let lab: LabState;
  let kz: RunningKeizokud;
  let redis: Awaited<ReturnType<typeof startRedis>>;
  let admin: string;

  beforeAll(async () => {
    redis = await startRedis();
    lab = sharedLab();
    await Promise.all([
      createVm(lab.id, { name: 'sc1', host: 'h2' }),
      createVm(lab.id, { name: 'sc2', host: 'h2' }),
    ]);
    lab = readState(lab.id)!;
    kz = await startKeizokud(lab, redis.url, {}, (config) => {
      // Today (in Tokyo) is on the calendar, so a start that skips holidays must not fire.
      const file = join(process.env.TMPDIR ?? '/tmp', `kz-holidays-${process.pid}.yaml`);
      writeFileSync(
        file,
        `holidays:\n  - { date: ${localDate(new Date(), 'Asia/Tokyo')}, name: test day }\n`,
      );
      config.holidaysFile = file;
      config.schedules = [
        {
          name: 'night',
          vms: ['sc1'],
          stop: '0,30 * * * * *',
          start: '15,45 * * * * *',
          skipHolidays: false,
        },
        { name: 'office', vms: ['nothing-*'], start: '* * * * * *', skipHolidays: true },
      ];
      config.vms = [{ match: { name: 'sc2' }, tier: 'frontend' }];
      config.drills = {
        dir: join(process.env.TMPDIR ?? '/tmp', `kz-drills-${process.pid}`),
        scheduled: [
          { name: 'drill-often', cron: '*/20 * * * * *', scenario: 'live-migration', vm: 'sc2', count: 1 },
        ],
      };
    });
    admin = await kz.token('admin');
  }, 120_000);

  afterAll(async () => {
    await kz?.stop();
    await redis?.stop();
  });

  const state = async () => (await kz.request('GET', '/v1/vms/sc1', admin)).body.state as string;
  const until = async (want: string, ms: number) => {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      if ((await state()) === want) return;
      await sleep(250);
    }
    const runs = (await kz.request('GET', '/v1/schedules/night', admin)).body.runs?.slice(0, 4);
    throw new Error(`sc1 never became ${want}; the schedule's last runs: ${JSON.stringify(runs)}`);
  };

  it('shuts the VM down at the stop time and starts it at the start time, audited as the controller', async () => {
    await until('running', 20_000);
    await until('shutoff', 45_000);
    await until('running', 30_000);
    // A run is recorded once its jobs have ended, a moment after the VM is seen running.
    type Run = { action: string; vms: string[] };
    let runs: Run[] = [];
    for (let i = 0; i < 40; i++) {
      runs = (await kz.request('GET', '/v1/schedules/night', admin)).body.runs as Run[];
      if (runs.some((r) => r.action === 'start' && r.vms.includes('sc1'))) break;
      await sleep(250);
    }
    expect(runs.some((r) => r.action === 'stop' && r.vms.includes('sc1'))).toBe(true);
    expect(runs.some((r) => r.action === 'start' && r.vms.includes('sc1'))).toBe(true);
    const audit = await kz.request('GET', '/v1/audit?actor=controller&target=sc1&limit=20', admin);
    const actions = audit.body.entries.map(
      (e: { action: string; outcome: string }) => `${e.action}:${e.outcome}`,
    );
    expect(actions).toContain('schedule.stop:succeeded');
    expect(actions).toContain('schedule.start:succeeded');
  }, 120_000);

  it('runs a scheduled drill as the controller, judged like any drill (no probe here: not measured)', async () => {
    interface Drill {
      status: string;
      requestedBy: string;
      movesDone: number;
      summary: { reason: string };
    }
    let drill: Drill | undefined;
    for (let i = 0; i < 120 && !drill; i++) {
      const list = (await kz.request('GET', '/v1/drills', admin)).body.drills as Drill[];
      drill = list.find((d) => d.status !== 'queued' && d.status !== 'running');
      if (!drill) await sleep(500);
    }
    expect(drill).toMatchObject({ requestedBy: 'controller', movesDone: 1, status: 'failed' });
    expect(drill!.summary.reason).toMatch(/could not be judged: #1 \(not measured\)/);
    const s = (await kz.request('GET', '/v1/schedules/drill-often', admin)).body;
    expect(s.kind).toBe('drill');
    expect(s.runs[0]).toMatchObject({ action: 'drill', vms: ['sc2'], failed: [] });
  }, 90_000);

  it('skips a start on a day of the holiday calendar and says so', async () => {
    const office = (await kz.request('GET', '/v1/schedules/office', admin)).body;
    expect(office.runs.length).toBeGreaterThan(0);
    expect(office.runs[0]).toMatchObject({
      action: 'start',
      vms: [],
      skipped: expect.stringMatching(/is a holiday \(test day\)$/),
    });
    const list = (await kz.request('GET', '/v1/schedules', admin)).body.schedules;
    expect(list.map((s: { name: string }) => s.name)).toEqual(['night', 'office', 'drill-often']);
    expect(list[0].nextStop).toBeGreaterThan(Date.now() - 1_000);
  });
});
