import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_HA_CONFIG,
  emptyHaState,
  type HaConfig,
  type HaEvent,
  type HaInput,
  type HaState,
  type PriorityGate,
  stepHa,
} from '../../../../src/core/ha/machine.ts';
import type { FailoverPlacement } from '../../../../src/core/ha/restart-plan.ts';
import type { HostHealth } from '../../../../src/core/model.ts';
import { host, MiB, snap } from '../planners/fixture.ts';

/**
 * The failover's priority gate: the next class (tier, then HA priority) starts only once the
 * better classes run (`running`) or answer the probe (`answer`, or a timeout after running).
 */

const ev = { connected: false, lastCallAgeMs: 1, icmp: false };

function world(prio: Record<string, number>, tier: Record<string, number> = {}, h2MiB = 4000) {
  const vms = Object.keys(prio).sort();
  const placement: FailoverPlacement = {
    rulesOf: () => ({ affinityGroup: null, antiAffinityGroup: null }),
    cpuOvercommit: 16,
    memoryFraction: 1,
    haPriorityOf: (v) => prio[v] ?? null,
    tierRankOf: (v) => tier[v] ?? 0,
  };
  const input = (h1: HostHealth, extra: Partial<HaInput> = {}): HaInput => ({
    health: { h1: { health: h1, evidence: ev }, h2: { health: 'up', evidence: { ...ev, connected: true } } },
    snapshot: snap([host('h1', 'a', 4000, { health: h1, lastKnownVms: vms }), host('h2', 'a', h2MiB)], []),
    placement,
    specOf: (v) => ({ vcpus: 1, memoryKiB: (v.startsWith('big') ? 3000 : 100) * MiB }),
    ...extra,
  });
  return { input };
}

const cfg = (priorityGate: PriorityGate, extra: Partial<HaConfig> = {}): HaConfig => ({
  ...DEFAULT_HA_CONFIG,
  declareAfterMs: 0,
  priorityGate,
  priorityGateTimeoutMs: 30_000,
  ...extra,
});

/** The VMs each restart command of a step starts elsewhere. */
const started = (out: ReturnType<typeof stepHa>) =>
  out.commands.flatMap((c) =>
    c.kind === 'restart'
      ? c.decision.actions.flatMap((a) => (a.kind === 'restart-elsewhere' ? [a.vm] : []))
      : [],
  );

/** Declared down, fenced and recovering: the state after the first restart decision. */
function fenced(w: ReturnType<typeof world>, c: HaConfig) {
  let s = stepHa(emptyHaState(), w.input('down'), 0, c).state;
  const out = stepHa(
    s,
    w.input('down', { fenceResults: [{ host: 'h1', attempt: 1, ok: true, powerOff: true }] }),
    100,
    c,
  );
  s = out.state;
  return { s, first: started(out), events: out.events };
}

const ok = (vm: string) => ({ vm, host: 'h2', ok: true });

describe('priority gate', () => {
  const prio = { a: 30, b: 20, c: 20, d: 10 };

  it('answer: each class starts once the one before it answers; siblings start together', () => {
    const w = world(prio);
    const c = cfg('answer');
    const { s: s0, first, events } = fenced(w, c);
    expect(first).toEqual(['a']);
    expect(events.map((e) => e.text)).toContain('VM d waits until VM a, of a higher priority, answers');
    expect(s0.hosts.h1!.gated).toEqual(['b', 'c', 'd']);
    let s = s0;
    const step = (t: number, extra: Partial<HaInput>) => {
      const out = stepHa(s, w.input('down', extra), t, c);
      s = out.state;
      return started(out);
    };
    expect(step(1000, { restartResults: [ok('a')] })).toEqual([]); // running, not answering yet
    expect(s.hosts.h1!.awaiting).toEqual({ a: 1000 });
    expect(step(2000, {})).toEqual([]);
    expect(step(3000, { answered: ['a'] }).sort()).toEqual(['b', 'c']);
    expect(step(4000, { restartResults: [ok('b'), ok('c')], answered: ['a'] })).toEqual([]);
    expect(step(5000, { answered: ['a', 'b'] })).toEqual([]); // c has not answered
    expect(step(6000, { answered: ['a', 'b', 'c'] })).toEqual(['d']);
    step(7000, { restartResults: [ok('d')] });
    expect(s.hosts.h1!.phase).toBe('done');
  });

  it('answer: a VM that never answers holds the next class only for the timeout', () => {
    const w = world(prio);
    const c = cfg('answer');
    let s = fenced(w, c).s;
    s = stepHa(s, w.input('down', { restartResults: [ok('a')] }), 1000, c).state;
    expect(started(stepHa(s, w.input('down'), 30_999, c))).toEqual([]);
    const out = stepHa(s, w.input('down'), 31_000, c);
    expect(started(out).sort()).toEqual(['b', 'c']);
    expect(out.events.map((e: HaEvent) => e.text)).toContain(
      'VM a gave no probe answer within 30s of running: it holds the next priority class no longer',
    );
  });

  it('running: the next class starts once the better one runs, without waiting for answers', () => {
    const w = world(prio);
    const c = cfg('running');
    let s = fenced(w, c).s;
    const out = stepHa(s, w.input('down', { restartResults: [ok('a')] }), 1000, c);
    expect(started(out).sort()).toEqual(['b', 'c']);
    s = out.state;
    expect(s.hosts.h1!.awaiting).toBeUndefined();
  });

  it('none: every VM starts at once, in priority order', () => {
    expect(fenced(world(prio), cfg('none')).first).toEqual(['a', 'b', 'c', 'd']);
  });

  it('tier comes before priority: a lower tier rank starts first whatever its priority', () => {
    expect(fenced(world({ x: 1, y: 99 }, { x: 0, y: 1 }), cfg('answer')).first).toEqual(['x']);
  });

  it('a better VM that fits nowhere blocks no one: the next class starts at the next step', () => {
    const w = world({ big: 30, b: 20 }, {}, 1000);
    const c = cfg('answer');
    const { s, first } = fenced(w, c);
    expect(first).toEqual([]);
    expect(s.hosts.h1!.pending).toEqual(['big']);
    const out = stepHa(s, w.input('down'), 200, c);
    expect(started(out)).toEqual(['b']);
  });

  it('a host back up before its gated VMs started hands them to VM-level HA in place', () => {
    const w = world(prio);
    const c = cfg('answer');
    const { s } = fenced(w, c);
    const out = stepHa(s, w.input('up'), 1000, c);
    const inPlace = out.commands.flatMap((x) =>
      x.kind === 'restart' ? x.decision.actions.flatMap((a) => (a.kind === 'start' ? [a.vm] : [])) : [],
    );
    expect(inPlace.sort()).toEqual(['b', 'c', 'd']);
    expect(out.state.hosts.h1!.gated).toEqual([]);
  });

  it('property: no VM starts while a better class is starting or not answering; all start in the end', () => {
    fc.assert(
      fc.property(
        fc.dictionary(fc.constantFrom('p', 'q', 'r', 's', 't', 'u'), fc.integer({ min: 0, max: 3 }), {
          minKeys: 1,
        }),
        fc.constantFrom<PriorityGate>('running', 'answer'),
        fc.array(fc.boolean(), { minLength: 40, maxLength: 40 }),
        (prio, gate, coin) => {
          const w = world(prio);
          // No timeout here: only answers open the gate.
          const c = cfg(gate, { priorityGateTimeoutMs: 1e9 });
          const better = (a: string, b: string) => prio[a]! > prio[b]!;
          let { s, first } = fenced(w, c);
          const startedAt = new Map<string, number>(first.map((v) => [v, 0]));
          const runningAt = new Map<string, number>();
          const answeredAt = new Map<string, number>();
          const check = (vm: string) => {
            for (const [o] of startedAt)
              if (better(o, vm)) {
                // A better VM must have run (and, with answer, answered) by this step.
                expect(runningAt.has(o)).toBe(true);
                if (gate === 'answer') expect(answeredAt.has(o)).toBe(true);
              }
          };
          for (const v of first) check(v);
          for (let i = 1; i <= 40; i++) {
            // Each step, a coin decides whether what started runs and what runs answers.
            const results = coin[i - 1] ? [...startedAt.keys()].filter((v) => !runningAt.has(v)) : [];
            for (const v of results) runningAt.set(v, i);
            for (const v of runningAt.keys()) if (coin[i - 1] && runningAt.get(v)! < i) answeredAt.set(v, i);
            const out = stepHa(
              s,
              w.input('down', { restartResults: results.map(ok), answered: [...answeredAt.keys()] }),
              100 + i * 1000,
              c,
            );
            s = out.state;
            for (const v of started(out)) {
              expect(startedAt.has(v)).toBe(false);
              check(v);
              startedAt.set(v, i);
            }
          }
          // Let everything run and answer: every VM has started exactly once.
          for (let i = 41; i < 41 + 2 * Object.keys(prio).length + 2; i++) {
            const results = [...startedAt.keys()].filter((v) => !runningAt.has(v));
            for (const v of results) runningAt.set(v, i);
            const out = stepHa(
              s,
              w.input('down', { restartResults: results.map(ok), answered: [...runningAt.keys()] }),
              100 + i * 1000,
              c,
            );
            s = out.state;
            for (const v of started(out)) {
              expect(startedAt.has(v)).toBe(false);
              startedAt.set(v, i);
            }
          }
          expect([...startedAt.keys()].sort()).toEqual(Object.keys(prio).sort());
        },
      ),
      { numRuns: 200 },
    );
  });
});

// The machine's state stays plain JSON with the gate's fields in it (it is persisted every step).
it('the gated state round-trips through JSON', () => {
  const w = world({ a: 2, b: 1 });
  const { s } = fenced(w, cfg('answer'));
  const back = JSON.parse(JSON.stringify(s)) as HaState;
  expect(
    started(
      stepHa(back, w.input('down', { restartResults: [ok('a')], answered: ['a'] }), 5000, cfg('answer')),
    ),
  ).toEqual(['b']);
});
