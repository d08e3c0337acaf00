import type { Redis } from 'ioredis';
import cron, { type ScheduledTask } from 'node-cron';
import type { DeepReadonly, Holiday, MaintenanceWindowConfig, ScheduleConfig } from '../config/index.ts';
import type { ClusterSnapshot } from '../core/model.ts';
import { planScheduledAction } from '../core/schedule.ts';
import type { PowerOutcome } from '../jobs/power-submit.ts';
import type { AuditLog } from '../store/audit.ts';
import { type RedisKeys, redisKeys } from '../store/keys.ts';
import type { PassResult, Reconciler } from './runner.ts';

/**
 * VM schedules (shut down at night and on holidays, start in the morning) and maintenance
 * windows, fired by node-cron in the configured time zone. Only the leader acts; every action
 * is audit-logged as the controller, and the last runs of each are kept in Redis for the API
 * (`scheduleRuns`, and `windowClosesAt` while a window is open, in store/keys.ts). A window's close time is kept in Redis, not in a timer, so the window closes on time also
 * after a restart or a change of leader in the middle of it: `windowCloser`, a leader-only
 * reconciler the daemon's LoopRunner runs every 5 s, closes the windows whose time is up.
 */

export interface ScheduleRun {
  at: number;
  action: 'stop' | 'start' | 'window-open' | 'window-close' | 'drill';
  vms: string[];
  failed: { vm: string; error: string }[];
  /** VMs the action was refused for, with the reason (e.g. a start while a host that might run the VM is unreachable). */
  refused?: { vm: string; reason: string }[];
  skipped: string | null;
}

export interface SchedulesOptions {
  schedules: readonly DeepReadonly<ScheduleConfig>[];
  windows: readonly DeepReadonly<MaintenanceWindowConfig>[];
  timeZone: string;
  holidays: readonly Holiday[];
  isLeader: () => boolean;
  /**
   * Resolves only while this replica's fencing token is the newest (LeaderLease.fence):
   * awaited right before each start, shutdown, maintenance step or drill, since leadership can
   * end within a run of many VMs.
   */
  fence?: () => Promise<void>;
  snapshot: () => ClusterSnapshot;
  /** Starts or shuts down a VM through the executor (jobs/power-submit.ts), as the controller. */
  power: (kind: 'start' | 'shutdown', vm: string, schedule: string) => Promise<PowerOutcome>;
  /** Enters or leaves maintenance on a host (the same path as the API). */
  maintenance: (host: string, action: 'enter' | 'exit', moveBack: boolean) => Promise<{ jobs: unknown[] }>;
  /** Drills on a cron schedule, and how to start one. */
  drills?: readonly {
    name: string;
    cron: string;
    scenario: string;
    vm: string;
    count?: number;
    to?: string;
  }[];
  runDrill?: (d: { scenario: string; vm: string; count?: number; to?: string }) => Promise<{ id: string }>;
  audit: AuditLog;
  redis: Redis;
  prefix: string;
  log: { info(o: object, msg: string): void; warn(o: object, msg: string): void };
}

export class SchedulesLoop {
  private tasks: { name: string; what: string; task: ScheduledTask }[] = [];

  /** Whether this replica may act now: it leads, and Redis confirms its token is the newest. */
  private async mayAct(): Promise<boolean> {
    if (!this.o.isLeader()) return false;
    try {
      await this.o.fence?.();
      return true;
    } catch (e) {
      this.o.log.warn({ err: (e as Error).message }, 'no longer the leader: scheduled actions stop');
      return false;
    }
  }

  /** Closes every open window whose time is up (for the LoopRunner; nothing to do without windows). */
  readonly windowCloser: Reconciler = {
    name: 'schedules',
    leaderOnly: true,
    intervalMs: 5_000,
    pass: (now) => this.closeDue(now),
  };

  private readonly keys: RedisKeys;

  constructor(private readonly o: SchedulesOptions) {
    this.keys = redisKeys(o.prefix);
  }

  start(): void {
    const opts = { timezone: this.o.timeZone, noOverlap: true };
    for (const s of this.o.schedules) {
      for (const action of ['stop', 'start'] as const) {
        const expr = s[action];
        if (!expr) continue;
        const task = cron.schedule(expr, (ctx) => this.fire(s, action, ctx.date), {
          ...opts,
          name: `${s.name}:${action}`,
        });
        this.tasks.push({ name: s.name, what: action, task });
      }
    }
    for (const d of this.o.drills ?? []) {
      const task = cron.schedule(d.cron, (ctx) => this.fireDrill(d, ctx.date), {
        ...opts,
        name: `${d.name}:drill`,
      });
      this.tasks.push({ name: d.name, what: 'drill', task });
    }
    for (const w of this.o.windows) {
      const task = cron.schedule(w.start, (ctx) => this.openWindow(w, ctx.date), {
        ...opts,
        name: `${w.name}:open`,
      });
      this.tasks.push({ name: w.name, what: 'window', task });
    }
  }

  /** Stops the cron tasks (the window closer stops with the LoopRunner). */
  async stop(): Promise<void> {
    for (const t of this.tasks) await t.task.destroy();
    this.tasks = [];
  }

  /** For the API: each schedule and window with its next times and last runs. */
  async describe(): Promise<object[]> {
    const next = (name: string, what: string) =>
      this.tasks
        .find((t) => t.name === name && t.what === what)
        ?.task.getNextRun()
        ?.getTime() ?? null;
    const runs = async (name: string) =>
      (await this.o.redis.lrange(this.key(name), 0, 19)).map((r) => JSON.parse(r) as ScheduleRun);
    const out: object[] = [];
    for (const s of this.o.schedules)
      out.push({
        name: s.name,
        kind: 'vm-schedule',
        vms: s.vms,
        stop: s.stop ?? null,
        start: s.start ?? null,
        skipHolidays: s.skipHolidays,
        timeZone: this.o.timeZone,
        nextStop: next(s.name, 'stop'),
        nextStart: next(s.name, 'start'),
        runs: await runs(s.name),
      });
    for (const d of this.o.drills ?? [])
      out.push({
        name: d.name,
        kind: 'drill',
        vms: [d.vm],
        start: d.cron,
        scenario: d.scenario,
        count: d.count,
        timeZone: this.o.timeZone,
        nextOpen: next(d.name, 'drill'),
        runs: await runs(d.name),
      });
    for (const w of this.o.windows)
      out.push({
        name: w.name,
        kind: 'maintenance-window',
        hosts: w.hosts,
        start: w.start,
        durationMinutes: w.durationMinutes,
        moveBack: w.moveBack,
        timeZone: this.o.timeZone,
        nextOpen: next(w.name, 'window'),
        openUntil: Number(await this.o.redis.get(this.closesAtKey(w.name))) || null,
        runs: await runs(w.name),
      });
    return out;
  }

  private closesAtKey(window: string): string {
    return this.keys.windowClosesAt(window);
  }

  /** Closes every open window whose time is up; deleting the key first means only one closes it. */
  private async closeDue(now: number): Promise<PassResult> {
    let failed = 0;
    for (const w of this.o.windows) {
      // Leadership can end within a pass: a deposed leader must not take a window's key.
      if (!this.o.isLeader()) break;
      try {
        const at = Number(await this.o.redis.get(this.closesAtKey(w.name)));
        if (!at || at > now) continue;
        if ((await this.o.redis.del(this.closesAtKey(w.name))) === 1) await this.closeWindow(w, now);
      } catch (e) {
        failed++;
        this.o.log.warn({ err: (e as Error).message, window: w.name }, 'closing maintenance window failed');
      }
    }
    return { result: failed ? 'partial' : 'success' };
  }

  private key(name: string): string {
    return this.keys.scheduleRuns(name);
  }

  private async record(name: string, run: ScheduleRun): Promise<void> {
    await this.o.redis.multi().lpush(this.key(name), JSON.stringify(run)).ltrim(this.key(name), 0, 19).exec();
    for (const vm of run.vms.length ? run.vms : [null]) {
      const refused = run.refused?.find((r) => r.vm === vm)?.reason;
      const failed = run.failed.find((f) => f.vm === vm)?.error;
      await this.o.audit.record({
        actor: 'controller',
        actorName: 'controller',
        action: `schedule.${run.action}`,
        target: vm,
        params: { schedule: name, skipped: run.skipped },
        outcome: run.skipped || refused ? 'rejected' : failed ? 'failed' : 'succeeded',
        message: run.skipped ?? refused ?? failed ?? null,
      });
    }
  }

  async fire(
    s: DeepReadonly<ScheduleConfig>,
    action: 'stop' | 'start',
    at: Date = new Date(),
  ): Promise<ScheduleRun | null> {
    if (!this.o.isLeader()) return null;
    const plan = planScheduledAction(this.o.snapshot(), s, action, at, this.o.timeZone, this.o.holidays);
    const run: ScheduleRun = {
      at: at.getTime(),
      action,
      vms: [],
      failed: [],
      refused: [],
      skipped: plan.skipped,
    };
    for (const vm of plan.vms) {
      run.vms.push(vm.name);
      if (!(await this.mayAct())) {
        run.refused!.push({ vm: vm.name, reason: 'this replica is no longer the leader' });
        continue;
      }
      try {
        const r = await this.o.power(action === 'stop' ? 'shutdown' : 'start', vm.name, s.name);
        if (!r.ok && r.why === 'failed') run.failed.push({ vm: vm.name, error: r.reason });
        else if (!r.ok) run.refused!.push({ vm: vm.name, reason: r.reason });
      } catch (e) {
        run.failed.push({ vm: vm.name, error: (e as Error).message });
      }
    }
    this.o.log.info(
      {
        schedule: s.name,
        action,
        vms: run.vms,
        skipped: run.skipped,
        failed: run.failed,
        refused: run.refused,
      },
      'schedule fired',
    );
    await this.record(s.name, run).catch((e: Error) =>
      this.o.log.warn({ err: e.message }, 'recording schedule run failed'),
    );
    return run;
  }

  private async fireDrill(
    d: { name: string; scenario: string; vm: string; count?: number; to?: string },
    at: Date,
  ): Promise<void> {
    if (!this.o.isLeader() || !this.o.runDrill) return;
    const run: ScheduleRun = { at: at.getTime(), action: 'drill', vms: [d.vm], failed: [], skipped: null };
    if (!(await this.mayAct())) return;
    try {
      const r = await this.o.runDrill(d);
      this.o.log.info({ drill: r.id, schedule: d.name }, 'scheduled drill queued');
    } catch (e) {
      run.failed.push({ vm: d.vm, error: (e as Error).message });
    }
    await this.record(d.name, run).catch(() => undefined);
  }

  private async openWindow(w: DeepReadonly<MaintenanceWindowConfig>, at: Date): Promise<void> {
    if (!this.o.isLeader()) return;
    // Before the evacuation: a crash in the middle of it still closes the window on time.
    const closesAt = at.getTime() + w.durationMinutes * 60_000;
    try {
      await this.o.redis.set(this.closesAtKey(w.name), String(closesAt));
    } catch (e) {
      // A window that could not be closed is not opened.
      this.o.log.warn({ err: (e as Error).message, window: w.name }, 'opening maintenance window failed');
      return;
    }
    for (const host of w.hosts) {
      const run: ScheduleRun = {
        at: at.getTime(),
        action: 'window-open',
        vms: [host],
        failed: [],
        skipped: null,
      };
      if (!(await this.mayAct())) return;
      try {
        await this.o.maintenance(host, 'enter', false);
      } catch (e) {
        run.failed.push({ vm: host, error: (e as Error).message });
      }
      await this.record(w.name, run).catch(() => undefined);
    }
  }

  private async closeWindow(w: DeepReadonly<MaintenanceWindowConfig>, now: number): Promise<void> {
    for (const host of w.hosts) {
      const run: ScheduleRun = {
        at: now,
        action: 'window-close',
        vms: [host],
        failed: [],
        skipped: null,
      };
      if (!(await this.mayAct())) return;
      try {
        await this.o.maintenance(host, 'exit', w.moveBack);
      } catch (e) {
        run.failed.push({ vm: host, error: (e as Error).message });
      }
      await this.record(w.name, run).catch(() => undefined);
    }
  }
}
