import { describe, expect, it } from 'vitest';
import {
  DEFAULT_HA_CONFIG,
  emptyHaState,
  type HaInput,
  type HaState,
  stepHa,
} from '../../../../src/core/ha/machine.ts';
import type { FailoverPlacement } from '../../../../src/core/ha/restart-plan.ts';
import {
  applyAnswer,
  applyJob,
  applyStep,
  applySubmitted,
  type FailoverRecord,
  firstReply,
  settle,
  type TimelineContext,
} from '../../../../src/core/ha/timeline.ts';
import type { HostHealth } from '../../../../src/core/model.ts';
import { host, MiB, snap, vm } from '../planners/fixture.ts';

/** The records are the subject here, not the order of the classes: no priority gate. */
const CFG = { ...DEFAULT_HA_CONFIG, priorityGate: 'none' as const };

/**
 * The failover record folded from the real state machine's steps: a host with four HA VMs of
 * different priorities lost, declared down, fenced and recovered; each VM's job times, the
 * probe's first reply and its RTO; what opens no record (a partition) and what ends one
 * incomplete (back up before any fence confirmed it off).
 */

const PRIO: Record<string, number> = { a: 40, b: 30, c: 20, d: 10 };
const VMS = Object.keys(PRIO);
const placement: FailoverPlacement = {
  rulesOf: () => ({ affinityGroup: null, antiAffinityGroup: null }),
  cpuOvercommit: 4,
  memoryFraction: 1,
  haPriorityOf: (v) => PRIO[v] ?? null,
  tierRankOf: () => 0,
};
const LAST_SEEN = 900;
const ctx: TimelineContext = {
  lastSeenUpAt: (h) => (h === 'h1' ? LAST_SEEN : null),
  fenceMethod: () => 'lab',
  fenceRecord: (h) =>
    h === 'h1' ? { method: 'lab', at: 4_400, evidence: 'lab power: off', ref: 'failover:h1' } : null,
  vmInfo: (v) => ({ tier: 'frontend', priority: PRIO[v] ?? null }),
};

const ev = { connected: false, lastCallAgeMs: 100, icmp: false };
function input(h1: HostHealth, extra: Partial<HaInput> = {}): HaInput {
  const h1Up = h1 === 'up';
  return {
    health: { h1: { health: h1, evidence: ev }, h2: { health: 'up', evidence: { ...ev, connected: true } } },
    snapshot: snap(
      [
        host('h1', 'a', 4000, { health: h1, ...(h1Up ? { vms: VMS } : { lastKnownVms: VMS }) }),
        host('h2', 'a', 4000),
      ],
      h1Up ? VMS.map((v) => vm(v, 'h1', 100)) : [],
    ),
    placement,
    specOf: () => ({ vcpus: 1, memoryKiB: 100 * MiB }),
    ...extra,
  };
}

/** Runs the machine over the steps, folding each into the records as the ha loop does. */
function run(steps: [number, HaInput][], s0: HaState = emptyHaState(), r0: FailoverRecord[] = []) {
  let s = s0;
  let records = r0;
  let job = 0;
  for (const [t, i] of steps) {
    const out = stepHa(s, i, t, CFG);
    records = applyStep(
      records,
      { prev: s, next: out.state, events: out.events, restartResults: i.restartResults ?? [] },
      t,
      ctx,
    );
    s = out.state;
    for (const c of out.commands)
      if (c.kind === 'restart')
        records = applySubmitted(
          records,
          c.decision.actions.flatMap((a) =>
            a.kind === 'restart-elsewhere' ? [{ vm: a.vm, from: a.from, to: a.to, job: `job-${++job}` }] : [],
          ),
          { id: c.decision.id, reason: c.decision.reason },
          t,
        );
  }
  return { s, records };
}

const ok = (vms: string[]) => ({ restartResults: vms.map((v) => ({ vm: v, host: 'h2', ok: true })) });

describe('failover record', () => {
  const lost = () =>
    run([
      [0, input('up')],
      [1_000, input('unreachable')],
      [2_000, input('down')],
      [5_000, input('down')],
      [5_500, input('fenced', { fenceResults: [{ host: 'h1', attempt: 1, ok: true, powerOff: true }] })],
    ]);

  it('records detection, declaration, fence and placements of a lost host, in order', () => {
    const { records } = lost();
    expect(records).toHaveLength(1);
    const r = records[0]!;
    expect(r).toMatchObject({
      id: 'fo-h1-1000',
      host: 'h1',
      status: 'open',
      detectedAt: 1_000,
      lastSeenUpAt: LAST_SEEN,
      failureAt: LAST_SEEN,
      failureBasis: 'last-seen-up',
      declaredDownAt: 5_000,
      recoveringAt: 5_500,
      fence: { method: 'lab', attempts: 1, startedAt: 5_000, confirmedAt: 5_500, evidence: 'lab power: off' },
    });
    expect(r.events.map((e) => e.kind)).toEqual([
      'detected',
      'declared-down',
      'fence-started',
      'fenced',
      'recovering',
      ...VMS.flatMap(() => ['placed']),
      ...VMS.flatMap(() => ['submitted']),
    ]);
    expect(r.vms.map((v) => [v.vm, v.priority, v.status, v.to, v.job])).toEqual([
      ['a', 40, 'restarting', 'h2', 'job-1'],
      ['b', 30, 'restarting', 'h2', 'job-2'],
      ['c', 20, 'restarting', 'h2', 'job-3'],
      ['d', 10, 'restarting', 'h2', 'job-4'],
    ]);
    expect(r.vms.every((v) => v.decision !== null && v.reason?.includes('fenced'))).toBe(true);
  });

  it('ends done with an RTO per VM from the failure to the probe first reply', () => {
    const { s, records } = lost();
    let r = records[0]!;
    VMS.forEach((v, i) => {
      r = applyJob(r, v, `job-${i + 1}`, { startedAt: 5_600 + i * 100, endedAt: 6_000 + i * 100 });
    });
    const after = run([[6_500, input('fenced', ok(VMS))]], s, [r]);
    r = after.records[0]!;
    expect(r.recoveredAt).toBe(6_500);
    expect(r.vms.map((v) => [v.status, v.runningAt])).toEqual([
      ['running', 6_000],
      ['running', 6_100],
      ['running', 6_200],
      ['running', 6_300],
    ]);
    expect(settle(r, 7_000)).toBe(r);
    VMS.forEach((v, i) => {
      r = applyAnswer(r, v, {
        probe: 'p1',
        outageStartMs: 1_000,
        outageEndMs: 9_000 + i * 500,
        outageMs: 8_000 + i * 500,
        lost: 40,
      });
    });
    const done = settle(r, 12_000);
    expect(done.status).toBe('done');
    expect(done.endedAt).toBe(12_000);
    expect(done.vms.map((v) => [v.vm, v.answeringAt, v.rtoMs])).toEqual([
      ['a', 9_000, 9_000 - LAST_SEEN],
      ['b', 9_500, 9_500 - LAST_SEEN],
      ['c', 10_000, 10_000 - LAST_SEEN],
      ['d', 10_500, 10_500 - LAST_SEEN],
    ]);
    expect(done.events.filter((e) => e.kind === 'answering').map((e) => e.vm)).toEqual(VMS);
  });

  it('ends incomplete when a VM never answers within the wait', () => {
    const { s, records } = lost();
    let r = run([[6_500, input('fenced', ok(VMS))]], s, records).records[0]!;
    for (const v of ['a', 'b', 'c'])
      r = applyAnswer(r, v, {
        probe: 'p1',
        outageStartMs: 1_000,
        outageEndMs: 9_000,
        outageMs: 8_000,
        lost: 4,
      });
    expect(settle(r, 6_500 + 299_000).status).toBe('open');
    const end = settle(r, 6_500 + 300_000);
    expect(end.status).toBe('incomplete');
    expect(end.vms.find((v) => v.vm === 'd')).toMatchObject({ status: 'not-answering', rtoMs: null });
    expect(end.reason).toBe('1 of 4 VM(s) restarted were not seen answering');
  });

  it('keeps a failed restart and its next placement', () => {
    const { s, records } = lost();
    const fail = { restartResults: [{ vm: 'a', host: 'h2', ok: false, error: 'libvirt said no' }] };
    const r = run([[6_000, input('fenced', fail)]], s, records).records[0]!;
    const a = r.vms.find((v) => v.vm === 'a')!;
    expect(a.failed).toEqual([{ to: 'h2', job: 'job-1', error: 'libvirt said no' }]);
    expect(r.events.filter((e) => e.vm === 'a').map((e) => e.kind)).toContain('restart-failed');
  });

  it('opens no record for a host that is only partitioned', () => {
    const steps: [number, HaInput][] = [[0, input('up')]];
    for (let t = 1_000; t < 30_000; t += 1_000) steps.push([t, input(t % 2_000 ? 'partitioned' : 'up')]);
    expect(run(steps).records).toEqual([]);
  });

  it('ends incomplete when the host answers again before its fence was confirmed', () => {
    const { records } = run([
      [0, input('up')],
      [1_000, input('down')],
      [4_000, input('down')],
      [4_200, input('down', { fenceResults: [{ host: 'h1', attempt: 1, ok: false, powerOff: false }] })],
      [5_000, input('up')],
    ]);
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({
      status: 'incomplete',
      failureBasis: 'last-seen-up',
      fence: { attempts: 1, confirmedAt: null },
    });
    expect(records[0]!.fence.errors).toHaveLength(1);
    expect(records[0]!.events.map((e) => e.kind)).toEqual([
      'detected',
      'declared-down',
      'fence-started',
      'fence-failed',
      'back-up',
    ]);
  });

  it('counts from the first failed evidence when the host was never seen up', () => {
    const blind = { ...ctx, lastSeenUpAt: () => null };
    const s1 = stepHa(emptyHaState(), input('down'), 1_000, CFG);
    const s2 = stepHa(s1.state, input('down'), 4_000, CFG);
    const [r] = applyStep(
      [],
      { prev: s1.state, next: s2.state, events: s2.events, restartResults: [] },
      4_000,
      blind,
    );
    expect(r).toMatchObject({ failureAt: 1_000, failureBasis: 'first-failed-evidence', lastSeenUpAt: null });
  });
});

describe('firstReply', () => {
  const o = (startMs: number, endMs: number, open = false) => ({
    startMs,
    endMs,
    durationMs: endMs - startMs,
    lost: 1,
    open,
  });

  it('takes the first closed outage that ends after the restart began', () => {
    const v = { startedAt: 5_000, placedAt: 4_000 };
    expect(firstReply(v, [o(100, 300), o(1_000, 9_000), o(9_500, 9_800)])).toEqual({
      outageStartMs: 1_000,
      outageEndMs: 9_000,
      outageMs: 8_000,
      lost: 1,
    });
  });

  it('has none while the outage is still open or before any placement', () => {
    expect(
      firstReply({ startedAt: 5_000, placedAt: 4_000 }, [o(100, 300), o(1_000, 9_000, true)]),
    ).toBeNull();
    expect(firstReply({ startedAt: null, placedAt: null }, [o(1_000, 9_000)])).toBeNull();
  });
});
