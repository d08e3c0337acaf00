import { describe, expect, it } from 'vitest';
import { DEFAULT_HA_CONFIG } from '../../../src/core/ha/machine.ts';
import type { FailoverRecord } from '../../../src/core/ha/timeline.ts';
import type { ClusterSnapshot, HostSnapshot } from '../../../src/core/model.ts';
import type { Decision } from '../../../src/core/plan.ts';
import type { FenceResult } from '../../../src/fence/run.ts';
import type { JobView } from '../../../src/jobs/views.ts';
import { FailoverTimeline } from '../../../src/loops/failover-timeline.ts';
import { HaLoop } from '../../../src/loops/ha.ts';
import type { FenceRecord } from '../../../src/store/fences.ts';
import type { HaPause, HaRecord } from '../../../src/store/ha.ts';
import { host, snap, vm } from '../core/planners/fixture.ts';

const DOWN = {
  connected: false,
  lastCallAgeMs: 9_000,
  icmp: false,
  witnessesUp: 0,
  witnessesDown: 3,
};

/** The loop's world: a cluster whose h1 is lost, fakes of the job system, fence and store. */
function world(
  o: {
    fence?: (h: string) => Promise<FenceResult>;
    declareAfterMs?: number;
    wake?: () => void;
    timeline?: () => FailoverTimeline;
    /** HA priority per VM h1 ran (null: its tier has no failover); default a: 5, b: null. */
    priorities?: Record<string, number | null>;
    priorityGate?: 'none' | 'running' | 'answer';
  } = {},
) {
  const priorities = o.priorities ?? { a: 5, b: null };
  const hosts = (h1: Partial<HostSnapshot>) => [
    host('h1', 's1', 4096, { vms: [], lastKnownVms: Object.keys(priorities), evidence: DOWN, ...h1 }),
    host('h2', 's1', 4096),
  ];
  const w = {
    snap: snap(hosts({ health: 'down' }), []) as ClusterSnapshot,
    stored: null as HaRecord | null,
    pause: null as HaPause | null,
    clears: [] as string[],
    submitted: [] as Decision[],
    jobState: 'active' as JobView['state'],
    fenced: [] as FenceRecord[],
    fences: 0,
    audits: [] as { action: string; outcome: string; target: string | null }[],
    h1: (x: Partial<HostSnapshot>) => {
      w.snap = { ...w.snap, hosts: new Map(hosts(x).map((h) => [h.name, h])) };
    },
  };
  const loop = () =>
    new HaLoop({
      snapshot: () => w.snap,
      jobs: {
        submit: async (d) => {
          w.submitted.push(d);
          const jobs = d.actions.map((a, i) =>
            a.kind === 'restart-elsewhere'
              ? { id: `job-${i}`, kind: a.kind, vm: a.vm, from: a.from, to: a.to }
              : a.kind === 'start'
                ? { id: `job-${w.submitted.length}-${i}`, kind: a.kind, vm: a.vm, to: a.host }
                : null,
          );
          return { decision: { ...d, jobs: [] }, jobs: jobs.filter(Boolean) } as never;
        },
        get: async (id) => ({ id, state: w.jobState, result: { reason: 'start failed' } }) as never,
      },
      fence:
        o.fence ??
        (async (h) => {
          w.fences++;
          return {
            host: h,
            method: 'lab',
            ok: true,
            confirmedOff: true,
            startedAt: 1,
            endedAt: 2,
            evidence: 'off',
          };
        }),
      recordFence: async (r) => {
        w.fenced.push(r);
      },
      store: {
        loadState: async () => (w.stored ? structuredClone(w.stored) : null),
        saveState: async (r) => {
          w.stored = structuredClone(r);
        },
        paused: async () => w.pause,
        takeClears: async () => w.clears.splice(0),
      },
      placement: {
        rulesOf: () => ({ affinityGroup: null, antiAffinityGroup: null }),
        cpuOvercommit: 4,
        memoryFraction: 1,
        // b's tier has no failover: it is never restarted.
        haPriorityOf: (v) => priorities[v] ?? null,
        tierRankOf: () => 0,
      },
      specOf: async () => ({ vcpus: 1, memoryKiB: 512 * 1024 }),
      config: {
        ...DEFAULT_HA_CONFIG,
        declareAfterMs: o.declareAfterMs ?? 0,
        fenceMethods: { h1: 'lab', h2: 'lab' },
        ...(o.priorityGate ? { priorityGate: o.priorityGate } : {}),
      },
      ...(o.wake ? { wake: o.wake } : {}),
      ...(o.timeline ? { timeline: o.timeline() } : {}),
      fenceCheck: async () => undefined,
      audit: {
        record: async (e) => {
          w.audits.push({ action: e.action, outcome: e.outcome, target: e.target });
          return e as never;
        },
      },
      log: { info() {}, warn() {} },
      intervalMs: 100,
    });
  return { w, loop };
}

const settle = () => new Promise((r) => setTimeout(r, 5));

describe('HaLoop', () => {
  it('fences a down host, restarts its HA VMs once the health says fenced, and ends done', async () => {
    const { w, loop } = world();
    const l = loop();
    await l.pass();
    await settle();
    expect(w.fences).toBe(1);
    expect(w.fenced.map((f) => [f.host, f.ref])).toEqual([['h1', 'failover:h1']]);
    expect(w.stored?.machine.hosts.h1?.phase).toBe('fencing');
    // The fence result waits for the health model: the executor checks `fenced`, not the machine.
    await l.pass();
    expect(w.submitted).toEqual([]);
    w.h1({ health: 'fenced' });
    await l.pass();
    expect(w.submitted).toHaveLength(1);
    expect(w.submitted[0]!.actions).toEqual([{ kind: 'restart-elsewhere', vm: 'a', from: 'h1', to: 'h2' }]);
    expect(w.submitted[0]!.ref).toBe('failover:h1');
    expect(w.stored?.jobs).toEqual({ a: { job: 'job-0', to: 'h2' } });
    // A new leader continues from the stored state: no second fence, no second restart.
    const next = loop();
    await next.pass();
    expect(w.fences).toBe(1);
    expect(w.submitted).toHaveLength(1);
    w.jobState = 'succeeded';
    await next.pass();
    expect(w.stored?.machine.hosts.h1?.phase).toBe('done');
    expect(w.stored?.jobs).toEqual({});
    const actions = w.audits.map((a) => a.action);
    expect(actions).toContain('host.fence');
    expect(actions.filter((a) => a === 'ha.phase').length).toBeGreaterThanOrEqual(4);
  });

  it('restarts nothing after a failed fence, audits it as failed, and retries after the backoff', async () => {
    let calls = 0;
    const { w, loop } = world({
      fence: async (h) => {
        calls++;
        return {
          host: h,
          method: 'ipmi',
          ok: false,
          confirmedOff: false,
          startedAt: 1,
          endedAt: 2,
          error: 'BMC did not answer',
          evidence: 'no answer',
        };
      },
    });
    const l = loop();
    await l.pass();
    await settle();
    await l.pass();
    expect(w.submitted).toEqual([]);
    expect(w.fenced).toEqual([]);
    expect(w.audits).toContainEqual({ action: 'host.fence', outcome: 'failed', target: 'h1' });
    expect(w.audits).toContainEqual({ action: 'ha.fence-failed', outcome: 'failed', target: 'h1' });
    expect(w.stored?.machine.hosts.h1?.nextFenceAt).not.toBeNull();
    expect(calls).toBe(1);
  });

  it('a restart whose job failed is planned again, never on the host that failed it while another remains', async () => {
    const { w, loop } = world();
    w.snap = snap(
      [
        host('h1', 's1', 4096, { health: 'down', lastKnownVms: ['a'], evidence: DOWN }),
        host('h2', 's1', 4096),
        host('h3', 's1', 2048),
      ],
      [],
    );
    const l = loop();
    await l.pass();
    await settle();
    w.snap = {
      ...w.snap,
      hosts: new Map(w.snap.hosts).set('h1', { ...w.snap.hosts.get('h1')!, health: 'fenced' }),
    };
    await l.pass();
    const first = w.submitted[0]!.actions[0] as { to: string };
    w.jobState = 'failed';
    await l.pass();
    expect(w.submitted).toHaveLength(2);
    const second = w.submitted[1]!.actions[0] as { to: string };
    expect(second.to).not.toBe(first.to);
  });

  it('declares nothing down while HA is paused', async () => {
    const { w, loop } = world();
    w.pause = { until: Date.now() + 60_000, since: Date.now(), by: 'ops', reason: 'switch reboot' };
    await loop().pass();
    await settle();
    expect(w.fences).toBe(0);
    expect(w.stored?.machine.hosts.h1?.phase).toBe('suspect');
  });

  it('wakes itself when the declare delay of a down host ends and when a fence finishes', async () => {
    let wakes = 0;
    const { w, loop } = world({ declareAfterMs: 30, wake: () => wakes++ });
    const l = loop();
    await l.pass();
    expect(w.stored?.machine.hosts.h1?.phase).toBe('suspect');
    await new Promise((r) => setTimeout(r, 60));
    expect(wakes).toBe(1);
    await l.pass();
    expect(w.stored?.machine.hosts.h1?.phase).toBe('fencing');
    await settle();
    expect(wakes).toBe(2);
    await l.close();
  });

  it('keeps a failover record from the fence to the probe reply, across a change of leader', async () => {
    const t0 = Date.now();
    const written = new Map<string, FailoverRecord>();
    const observed: [string, number][] = [];
    let outages: { startMs: number; endMs: number; durationMs: number; lost: number; open: boolean }[] = [];
    const timeline = () =>
      new FailoverTimeline({
        store: {
          put: async (rs) => {
            for (const r of rs) written.set(r.id, structuredClone(r));
          },
        },
        jobs: {
          get: async (id) =>
            ({
              id,
              state: w.jobState,
              result: { startedAt: t0 - 60, finishedAt: t0 - 50, reason: null },
            }) as never,
        },
        probeWindow: async () => [{ probe: 'p1', site: 's1', outages } as never],
        fenceRecordOf: () => ({
          host: 'h1',
          method: 'lab',
          at: t0,
          evidence: 'lab power: off',
          ref: 'failover:h1',
        }),
        // Its last ICMP reply came after its last read: the failure counts from the reply.
        lastIcmpReplyAt: () => t0 - 2_000,
        fenceMethodOf: () => 'lab',
        tierOf: () => 'frontend',
        haPriorityOf: (v) => (v === 'b' ? null : 5),
        fenceCheck: async () => undefined,
        metrics: {
          failoverRto: { observe: (l: { tier: string }, v: number) => observed.push([l.tier, v]) } as never,
        },
        log: { warn() {} },
      });
    const { w, loop } = world({ timeline });
    // h1's last read was 9 s (DOWN.lastCallAgeMs) before this snapshot.
    w.snap = { ...w.snap, takenAt: t0 };
    const l = loop();
    await l.pass();
    await settle();
    w.h1({ health: 'fenced' });
    await l.pass();
    const open = () => [...written.values()][0]!;
    expect(written.size).toBe(1);
    expect(open()).toMatchObject({ host: 'h1', status: 'open', fence: { evidence: 'lab power: off' } });
    expect(open().vms.map((v) => [v.vm, v.to, v.job, v.status])).toEqual([
      ['a', 'h2', 'job-0', 'restarting'],
    ]);
    expect(w.stored?.failovers?.map((f) => f.id)).toEqual([open().id]);
    // Another leader: the open record comes from the stored state.
    const next = loop();
    w.jobState = 'succeeded';
    await next.pass();
    expect(open().vms[0]).toMatchObject({
      status: 'running',
      startedAt: t0 - 60,
      endedAt: t0 - 50,
      runningAt: t0 - 50,
    });
    // The probe sees the VM silent, then its first reply: the next passes fold it in.
    const failureAt = open().failureAt;
    expect([failureAt, open().failureBasis]).toEqual([t0 - 2_000, 'last-seen-up']);
    outages = [{ startMs: failureAt + 100, endMs: t0 + 7_000, durationMs: 8_900, lost: 44, open: false }];
    await next.pass();
    await settle();
    await next.pass();
    expect(open()).toMatchObject({ status: 'done' });
    expect(open().vms[0]).toMatchObject({ status: 'answering', answeringAt: t0 + 7_000, rtoMs: 9_000 });
    expect(open().vms[0]!.probe).toEqual({
      probe: 'p1',
      outageStartMs: failureAt + 100,
      outageEndMs: t0 + 7_000,
      outageMs: 8_900,
      lost: 44,
    });
    expect(observed).toEqual([['frontend', 9]]);
    expect(w.stored?.failovers).toEqual([]);
  });

  describe('priority gate answer: the next class starts once the better one answers the probe', () => {
    const gated = (probeWindow: (vm: string) => Promise<never[]>) => {
      const wakes: number[] = [];
      const timeline = () =>
        new FailoverTimeline({
          store: { put: async () => undefined },
          jobs: { get: async (id) => ({ id, state: 'succeeded', result: { reason: null } }) as never },
          probeWindow,
          fenceRecordOf: () => null,
          fenceMethodOf: () => 'lab',
          tierOf: () => 'frontend',
          haPriorityOf: (v) => ({ hi: 9, lo: 1 })[v] ?? null,
          fenceCheck: async () => undefined,
          log: { warn() {} },
          wake: () => wakes.push(1),
        });
      const { w, loop } = world({ timeline, priorities: { hi: 9, lo: 1 }, priorityGate: 'answer' });
      return { w, l: loop(), wakes };
    };
    const starts = (w: { submitted: Decision[] }) =>
      w.submitted.flatMap((d) => d.actions.map((a) => (a.kind === 'restart-elsewhere' ? a.vm : a.kind)));

    it('asks the probe once hi runs, wakes on its answer, then starts lo', async () => {
      let hiAnswers = false;
      const { w, l, wakes } = gated(async (vm) =>
        vm === 'hi' && hiAnswers
          ? ([
              {
                probe: 'p1',
                site: 's1',
                outages: [{ startMs: 0, endMs: Date.now(), durationMs: 1, lost: 1, open: false }],
              },
            ] as never[])
          : ([
              {
                probe: 'p1',
                site: 's1',
                outages: [{ startMs: 0, endMs: 0, durationMs: 0, lost: 1, open: true }],
              },
            ] as never[]),
      );
      w.jobState = 'active';
      await l.pass();
      await settle();
      w.h1({ health: 'fenced' });
      await l.pass();
      expect(starts(w)).toEqual(['hi']);
      w.jobState = 'succeeded';
      await l.pass(); // hi runs: the probe is asked, it is still silent
      await settle();
      await l.pass();
      await settle();
      expect(starts(w)).toEqual(['hi']);
      hiAnswers = true;
      await l.pass(); // asked again: the answer is found in the background and wakes the loop
      await settle();
      expect(wakes.length).toBeGreaterThan(0);
      await l.pass();
      expect(starts(w)).toEqual(['hi', 'lo']);
    });

    it('a VM no probe agent reports on holds lo for three empty answers only', async () => {
      const { w, l } = gated(async () => []);
      await l.pass();
      await settle();
      w.h1({ health: 'fenced' });
      await l.pass();
      w.jobState = 'succeeded';
      for (let i = 0; i < 3; i++) {
        await l.pass();
        await settle();
        expect(starts(w)).toEqual(['hi']);
      }
      await l.pass();
      expect(starts(w)).toEqual(['hi', 'lo']);
    });
  });

  describe('VM-level HA: a VM whose QEMU died on an up host', () => {
    /** h1 and h2 up; `a` (HA) and `b` (no failover) as libvirt last reported them on h2. */
    const crashedOnH2 = (
      w: ReturnType<typeof world>['w'],
      observedAt: number,
      o: { a?: 'crashed' | 'running'; b?: 'crashed' } = {},
    ) => {
      const state = (x: string | undefined) =>
        x === 'crashed' ? { state: 'shutoff', crashed: true } : { state: 'running' };
      w.snap = snap(
        [host('h1', 's1', 4096), host('h2', 's1', 4096, { observedAt })],
        [vm('a', 'h2', 100, state(o.a ?? 'crashed')), vm('b', 'h2', 100, state(o.b))],
      );
    };
    const startsOf = (w: ReturnType<typeof world>['w']) =>
      w.submitted.flatMap((d) => d.actions).filter((a) => a.kind === 'start');

    it('restarts it in place, once per crash seen after the last restart; a VM without failover is left', async () => {
      const { w, loop } = world();
      const l = loop();
      crashedOnH2(w, Date.now(), { b: 'crashed' });
      await l.pass();
      expect(startsOf(w)).toEqual([{ kind: 'start', vm: 'a', host: 'h2' }]);
      expect(w.stored?.machine.vms.a?.phase).toBe('restarting');
      // The job runs: the same observation gives no second start.
      await l.pass();
      expect(startsOf(w)).toHaveLength(1);
      w.jobState = 'succeeded';
      await l.pass();
      expect(w.stored?.machine.vms.a?.phase).toBe('ok');
      // An observation from before the restart still says crashed: stale, not a new crash.
      await l.pass();
      expect(startsOf(w)).toHaveLength(1);
      // A new leader reads the restart's time from the saved state: still stale.
      await loop().pass();
      expect(startsOf(w)).toHaveLength(1);
      // A read after it that says crashed is a second death.
      w.jobState = 'active';
      crashedOnH2(w, Date.now() + 1_000, { b: 'crashed' });
      await l.pass();
      expect(startsOf(w)).toHaveLength(2);
      expect(w.audits.filter((a) => a.action === 'ha.vm').length).toBeGreaterThanOrEqual(2);
    });

    it('past restartsPerHour relocates it, then holds it in error until an operator clears it', async () => {
      const { w, loop } = world();
      const l = loop();
      let t = Date.now();
      const later = () => {
        t += 1_000;
        return t;
      };
      const crashAndRun = async () => {
        w.jobState = 'active';
        crashedOnH2(w, later());
        await l.pass();
        w.jobState = 'succeeded';
        await l.pass();
      };
      for (let i = 0; i < DEFAULT_HA_CONFIG.restartsPerHour; i++) await crashAndRun();
      expect(startsOf(w)).toHaveLength(DEFAULT_HA_CONFIG.restartsPerHour);
      // The next death relocates it to the other host.
      w.jobState = 'active';
      crashedOnH2(w, later());
      await l.pass();
      const last = w.submitted.at(-1)!.actions;
      expect(last).toEqual([{ kind: 'restart-elsewhere', vm: 'a', from: 'h2', to: 'h1' }]);
      w.jobState = 'succeeded';
      w.snap = snap(
        [host('h1', 's1', 4096, { observedAt: later() }), host('h2', 's1', 4096)],
        [vm('a', 'h1', 100, { state: 'shutoff', crashed: true })],
      );
      await l.pass();
      // Dead again after the relocation: error, nothing submitted, an alert.
      const before = w.submitted.length;
      w.snap = snap(
        [host('h1', 's1', 4096, { observedAt: later() }), host('h2', 's1', 4096)],
        [vm('a', 'h1', 100, { state: 'shutoff', crashed: true })],
      );
      await l.pass();
      expect(w.stored?.machine.vms.a?.phase).toBe('error');
      await l.pass();
      expect(w.submitted).toHaveLength(before);
      expect(w.audits).toContainEqual({ action: 'ha.alert', outcome: 'failed', target: 'a' });
      // Cleared by an operator: restarted where it is.
      w.clears.push('a');
      w.jobState = 'active';
      await l.pass();
      expect(w.submitted).toHaveLength(before + 1);
      expect(w.submitted.at(-1)!.actions).toEqual([{ kind: 'start', vm: 'a', host: 'h1' }]);
    });
  });
});
