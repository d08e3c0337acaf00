import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  checkAdmission,
  restartsSurelyFit,
  unprotectedOn,
  whatIf,
} from '../../../../src/core/ha/admission.ts';
import {
  DEFAULT_HA_CONFIG,
  emptyHaState,
  type HaInput,
  type HaState,
  stepHa,
} from '../../../../src/core/ha/machine.ts';
import { type FailoverPlacement, planRestarts } from '../../../../src/core/ha/restart-plan.ts';
import type { ClusterSnapshot, HostHealth } from '../../../../src/core/model.ts';
import { host, MiB, snap, vm } from '../planners/fixture.ts';

const rules: Record<string, { affinityGroup: string | null; antiAffinityGroup: string | null }> = {};
const prio: Record<string, number> = {};
const placement: FailoverPlacement = {
  rulesOf: (v) => rules[v] ?? { affinityGroup: null, antiAffinityGroup: null },
  cpuOvercommit: 4,
  memoryFraction: 1,
  haPriorityOf: (v) => prio[v] ?? 0,
  tierRankOf: () => 0,
};
const ctx = { id: 'dec-1', at: 0, ref: 'test', requestedBy: { id: 'c', name: 'c' } };
const req = (name: string, from: string, memMiB = 100, failedOn: string[] = []) => ({
  vm: name,
  from,
  vcpus: 1,
  memoryKiB: memMiB * MiB,
  failedOn,
});

describe('planRestarts', () => {
  const cluster = () =>
    snap([host('h1', 'a', 1000, { health: 'fenced' }), host('h2', 'a', 300), host('h3', 'a', 300)], []);

  it('places higher priority first and refuses what fits nowhere, with reasons', () => {
    prio.big = 1;
    prio.small = 9;
    const d = planRestarts(
      cluster(),
      [req('big', 'h1', 250), req('small', 'h1', 250), req('x', 'h1', 250)],
      placement,
      ctx,
    );
    expect(d.planner).toBe('failover');
    expect(d.vms).toEqual(['small', 'big', 'x']);
    expect(d.actions.map((a) => a.kind === 'restart-elsewhere' && a.to)).toEqual(['h2', 'h3']);
    expect(d.ok).toBe(false);
    expect(d.refused[0]!.vm).toBe('x');
    expect(d.refused[0]!.reasons.join(' ')).toMatch(/guest memory free/);
    delete prio.big;
    delete prio.small;
  });

  it('keeps anti-affinity and keep-together', () => {
    rules.a1 = { affinityGroup: null, antiAffinityGroup: 'g' };
    rules.a2 = { affinityGroup: null, antiAffinityGroup: 'g' };
    rules.t1 = { affinityGroup: 'k', antiAffinityGroup: null };
    rules.t2 = { affinityGroup: 'k', antiAffinityGroup: null };
    const d = planRestarts(
      cluster(),
      [req('a1', 'h1', 10), req('a2', 'h1', 10), req('t1', 'h1', 10), req('t2', 'h1', 10)],
      placement,
      ctx,
    );
    const to = Object.fromEntries(d.actions.map((a) => (a.kind === 'restart-elsewhere' ? [a.vm, a.to] : [])));
    expect(to.a1).not.toBe(to.a2);
    expect(to.t1).toBe(to.t2);
    for (const k of Object.keys(rules)) delete rules[k];
  });

  it('holds a keep-together group back whole when one member fits nowhere', () => {
    rules.t1 = { affinityGroup: 'k', antiAffinityGroup: null };
    rules.t2 = { affinityGroup: 'k', antiAffinityGroup: null };
    const d = planRestarts(
      cluster(),
      [req('t1', 'h1', 200), req('t2', 'h1', 200), req('x', 'h1', 250)],
      placement,
      ctx,
    );
    // t1 alone would fit on h2 or h3, but t2 could never join it there: neither is placed,
    // and the room goes to x.
    expect(d.actions).toEqual([{ kind: 'restart-elsewhere', vm: 'x', from: 'h1', to: 'h2' }]);
    expect(d.refused.map((r) => r.vm).sort()).toEqual(['t1', 't2']);
    expect(d.refused[0]!.reasons[0]).toMatch(/keep-together group "k" \(t1, t2\) fits on no single host/);
    for (const k of Object.keys(rules)) delete rules[k];
  });

  it('avoids a host that failed for the VM while another fits, uses it when none does', () => {
    const d = planRestarts(cluster(), [req('v', 'h1', 10, ['h2'])], placement, ctx);
    expect(d.actions[0]).toMatchObject({ to: 'h3' });
    const only = planRestarts(cluster(), [req('v', 'h1', 10, ['h2', 'h3'])], placement, ctx);
    expect(only.actions).toHaveLength(1);
  });
});

describe('admission', () => {
  const two = (): ClusterSnapshot =>
    snap([host('h1', 'a', 1000), host('h2', 'a', 1000)], [vm('v1', 'h1', 400), vm('v2', 'h2', 400)]);

  it('whatIf plans the restarts of the failed host', () => {
    const d = whatIf(two(), ['h1'], placement, ctx);
    expect(d.actions).toEqual([{ kind: 'restart-elsewhere', vm: 'v1', from: 'h1', to: 'h2' }]);
  });

  it('refuses a start that breaks one tolerated failure, admits one that does not', () => {
    expect(
      checkAdmission(two(), { vm: 'v3', host: 'h1', vcpus: 1, memoryKiB: 100 * MiB }, placement, {
        toleratedHostFailures: 1,
      }),
    ).toBeNull();
    const r = checkAdmission(two(), { vm: 'v3', host: 'h1', vcpus: 1, memoryKiB: 300 * MiB }, placement, {
      toleratedHostFailures: 1,
    });
    expect(r?.code).toBe('HaFailuresNotTolerated');
    expect(r?.reason).toMatch(/unable to restart if h1 failed/);
  });

  it('whatIf is the plan the state machine runs once those hosts are fenced, and names the VMs it leaves down', () => {
    prio.hi = 9;
    prio.lo = 1;
    const notHa: FailoverPlacement = {
      ...placement,
      haPriorityOf: (v) => (v === 'plain' ? null : (prio[v] ?? 0)),
    };
    const vms = [vm('lo', 'h1', 300), vm('hi', 'h1', 300), vm('plain', 'h1', 100), vm('busy', 'h2', 500)];
    const before = snap([host('h1', 'a', 1000), host('h2', 'a', 1000), host('h3', 'a', 400)], vms);
    const planned = whatIf(before, ['h1'], notHa, ctx);
    expect(unprotectedOn(before, ['h1'], notHa)).toEqual(['plain']);
    expect(planned.vms).toEqual(['hi', 'lo']);

    // The machine: h1 seen up with its VMs, then fenced (its VMs gone from the snapshot).
    const spec = (v: string) => vms.find((x) => x.name === v) ?? null;
    const ev = { connected: false, lastCallAgeMs: 1, icmp: false };
    const health = (h1: HostHealth) =>
      Object.fromEntries(
        ['h1', 'h2', 'h3'].map((h) => [h, { health: h === 'h1' ? h1 : 'up', evidence: ev }]),
      );
    const lost = snap(
      [
        host('h1', 'a', 1000, { health: 'fenced', lastKnownVms: ['lo', 'hi', 'plain'] }),
        host('h2', 'a', 1000),
        host('h3', 'a', 400),
      ],
      vms.filter((v) => v.host !== 'h1'),
    );
    const base = { placement: notHa, specOf: spec };
    const s1 = stepHa(
      emptyHaState(),
      { ...base, health: health('up'), snapshot: before },
      0,
      DEFAULT_HA_CONFIG,
    );
    const s2 = stepHa(s1.state, { ...base, health: health('fenced'), snapshot: lost }, 1000, {
      ...DEFAULT_HA_CONFIG,
      priorityGate: 'none',
    });
    const restart = s2.commands.find((c) => c.kind === 'restart');
    expect(restart?.kind === 'restart' && restart.decision.actions).toEqual(planned.actions);
    // With the priority gate (the default) the same placements come class by class: hi, then lo
    // once hi runs and answers.
    const g2 = stepHa(
      s1.state,
      { ...base, health: health('fenced'), snapshot: lost },
      1000,
      DEFAULT_HA_CONFIG,
    );
    const hiTo = planned.actions[0]!.kind === 'restart-elsewhere' ? planned.actions[0]!.to : '';
    const withHi = snap(
      [
        host('h1', 'a', 1000, { health: 'fenced', lastKnownVms: ['lo', 'hi', 'plain'] }),
        host('h2', 'a', 1000),
        host('h3', 'a', 400),
      ],
      [...vms.filter((v) => v.host !== 'h1'), vm('hi', hiTo, 300)],
    );
    const g3 = stepHa(
      g2.state,
      {
        ...base,
        health: health('fenced'),
        snapshot: withHi,
        restartResults: [{ vm: 'hi', host: hiTo, ok: true }],
        answered: ['hi'],
      },
      2000,
      DEFAULT_HA_CONFIG,
    );
    const classes = [g2, g3].flatMap((o) =>
      o.commands.flatMap((c) => (c.kind === 'restart' ? c.decision.actions : [])),
    );
    expect(classes).toEqual(planned.actions);
    expect(planned.actions.map((a) => a.kind === 'restart-elsewhere' && [a.vm, a.from])).toEqual([
      ['hi', 'h1'],
      ['lo', 'h1'],
    ]);
    expect(planned.ok).toBe(true);
    delete prio.hi;
    delete prio.lo;
  });

  it('keeps a capacity share free', () => {
    const r = checkAdmission(two(), { vm: 'v3', host: 'h1', vcpus: 1, memoryKiB: 800 * MiB }, placement, {
      reservedShare: 0.25,
    });
    expect(r?.code).toBe('HaCapacityReserved');
  });
});

describe('stepHa', () => {
  const ev = { connected: false, lastCallAgeMs: 1, icmp: false };
  const input = (h1: HostHealth, extra: Partial<HaInput> = {}): HaInput => ({
    health: { h1: { health: h1, evidence: ev }, h2: { health: 'up', evidence: { ...ev, connected: true } } },
    snapshot: snap([host('h1', 'a', 1000, { health: h1, lastKnownVms: ['v1'] }), host('h2', 'a', 1000)], []),
    placement,
    specOf: () => ({ vcpus: 1, memoryKiB: 100 * MiB }),
    ...extra,
  });
  const cfg = DEFAULT_HA_CONFIG;
  const run = (steps: [number, HaInput][], s0: HaState = emptyHaState()) => {
    let s = s0;
    const commands = [];
    for (const [t, i] of steps) {
      const out = stepHa(s, i, t, cfg);
      s = out.state;
      commands.push(...out.commands.map((c) => ({ t, c })));
    }
    return { s, commands };
  };

  it('declares down only after declareAfterMs, fences, then restarts after a confirmed fence', () => {
    const { s, commands } = run([
      [0, input('up')],
      [1000, input('down')],
      [3000, input('down')],
      [4000, input('down')],
      [4500, input('down', { fenceResults: [{ host: 'h1', attempt: 1, ok: true, powerOff: true }] })],
    ]);
    expect(commands[0]).toMatchObject({ t: 4000, c: { kind: 'fence', host: 'h1', attempt: 1 } });
    expect(commands[1]).toMatchObject({ t: 4500, c: { kind: 'restart' } });
    expect(s.hosts.h1!.phase).toBe('recovering');
  });

  it('never restarts a partitioned or unreachable host', () => {
    const steps: [number, HaInput][] = [];
    for (let t = 0; t < 60_000; t += 1000) steps.push([t, input(t % 2000 ? 'partitioned' : 'unreachable')]);
    expect(run(steps).commands).toEqual([]);
  });

  it('a failed fence backs off with an alert and no restart', () => {
    const { commands } = run([
      [0, input('down')],
      [3000, input('down')],
      [3100, input('down', { fenceResults: [{ host: 'h1', attempt: 1, ok: false, powerOff: false }] })],
      [4000, input('down')],
      [5100, input('down')],
    ]);
    expect(commands.map((c) => [c.t, c.c.kind])).toEqual([
      [3000, 'fence'],
      [5100, 'fence'],
    ]);
  });

  it('pause stops declaring; method none waits for the disk lock', () => {
    expect(
      run([
        [0, input('down', { pausedUntil: 99_999 })],
        [5000, input('down', { pausedUntil: 99_999 })],
      ]).commands,
    ).toEqual([]);
    const none = { ...cfg, fenceMethods: { h1: 'none' as const } };
    let s = stepHa(emptyHaState(), input('down'), 0, none).state;
    const out = stepHa(s, input('down'), 4000, none);
    expect(out.commands).toEqual([]);
    s = stepHa(out.state, input('down', { diskLocksExpired: ['h1'] }), 5000, none).state;
    expect(s.hosts.h1!.phase).toBe('recovering');
  });

  it('VM-level HA: in place up to the limit, then relocation, then error', () => {
    let s = emptyHaState();
    const kinds: string[] = [];
    for (let i = 0; i < 5; i++) {
      const out = stepHa(s, input('up', { vmDied: [{ vm: 'v9', host: 'h1' }] }), i * 1000, cfg);
      s = out.state;
      kinds.push(
        out.commands.map((c) => (c.kind === 'restart' ? c.decision.actions[0]!.kind : c.kind)).join(),
      );
    }
    expect(kinds).toEqual(['start', 'start', 'start', 'restart-elsewhere', '']);
    expect(s.vms.v9!.phase).toBe('error');
  });
  it('a fence record it did not write (an operator confirm-off) recovers without a fence', () => {
    const { s, commands } = run([
      [0, input('up')],
      [1000, input('partitioned')],
      [2000, input('fenced')],
    ]);
    expect(commands.map((c) => c.c.kind)).toEqual(['restart']);
    const d = commands[0]!.c;
    expect(d.kind === 'restart' && d.decision.actions).toEqual([
      { kind: 'restart-elsewhere', vm: 'v1', from: 'h1', to: 'h2' },
    ]);
    expect(s.hosts.h1!.phase).toBe('recovering');
  });

  it('a host back before it is declared down: the HA VMs it lost restart in place', () => {
    const at = (health: HostHealth, listed: string[] = [], elsewhere: string[] = []): HaInput =>
      input(health, {
        health: { h1: { health, evidence: ev }, h2: { health: 'up', evidence: ev } },
        snapshot: snap(
          [
            host('h1', 'a', 1000, { health, vms: health === 'up' ? listed : [] }),
            host('h2', 'a', 1000, { vms: elsewhere }),
          ],
          [...(health === 'up' ? listed : []).map((v) => vm(v, 'h1')), ...elsewhere.map((v) => vm(v, 'h2'))],
        ),
      });
    const starts = (last: HaInput) =>
      run([
        [0, at('up', ['v1', 'v2'])],
        [1000, at('down')],
        [2000, last],
      ]).commands.map((c) => (c.c.kind === 'restart' ? c.c.decision.actions : c.c.kind));
    expect(starts(at('up', ['v2']))).toEqual([[{ kind: 'start', vm: 'v1', host: 'h1' }]]);
    // Still listed, or running elsewhere (moved meanwhile): nothing to restart.
    expect(starts(at('up', ['v1', 'v2']))).toEqual([]);
    expect(starts(at('up', ['v2'], ['v1']))).toEqual([]);
  });
});

describe('admission quick test', () => {
  /** The exhaustive rule the quick test must agree with: every combination through whatIf. */
  function exhaustive(
    s: ClusterSnapshot,
    change: { vm: string; host: string; vcpus: number; memoryKiB: number },
    p: FailoverPlacement,
    n: number,
  ): string | null {
    const after: ClusterSnapshot = {
      ...s,
      vms: new Map(s.vms).set(change.vm, vm(change.vm, change.host, 0, change)),
    };
    const up = [...after.hosts.values()].filter((h) => h.health === 'up').map((h) => h.name);
    const sets = (from: string[], k: number): string[][] =>
      k === 0 ? [[]] : from.flatMap((x, i) => sets(from.slice(i + 1), k - 1).map((r) => [x, ...r]));
    for (const fail of sets(up.sort(), Math.min(n, up.length))) {
      const a = whatIf(after, fail, p, ctx).refused.length;
      if (a > 0 && a > whatIf(s, fail, p, ctx).refused.length) return 'HaFailuresNotTolerated';
    }
    return null;
  }

  it('agrees with trying every combination, and never skips one whose plan refuses', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ mem: fc.integer({ min: 1, max: 16 }), site: fc.constantFrom('a', 'b') }), {
          minLength: 2,
          maxLength: 6,
        }),
        fc.array(
          fc.record({
            host: fc.nat(),
            mem: fc.integer({ min: 1, max: 6 }),
            vcpus: fc.integer({ min: 1, max: 4 }),
            anti: fc.constantFrom(null, 'g1', 'g2'),
            together: fc.constantFrom(null, null, null, 'k'),
            ha: fc.boolean(),
          }),
          { maxLength: 14 },
        ),
        fc.record({ host: fc.nat(), mem: fc.integer({ min: 1, max: 8 }) }),
        fc.integer({ min: 1, max: 2 }),
        (hs, vs, ch, n) => {
          const hosts = hs.map((h, i) => host(`h${i}`, h.site, h.mem * 1024, { cpus: 2 }));
          const vms = vs.map((v, i) =>
            vm(`v${i}`, `h${v.host % hs.length}`, v.mem * 1024, { vcpus: v.vcpus }),
          );
          const p: FailoverPlacement = {
            rulesOf: (name) => {
              const v = vs[Number(name.slice(1))];
              return { affinityGroup: v?.together ?? null, antiAffinityGroup: v?.anti ?? null };
            },
            cpuOvercommit: 2,
            memoryFraction: 1,
            haPriorityOf: (name) => (name === 'new' || vs[Number(name.slice(1))]?.ha ? 0 : null),
            tierRankOf: () => 0,
          };
          const s = snap(hosts, vms);
          const change = {
            vm: 'new',
            host: `h${ch.host % hs.length}`,
            vcpus: 1,
            memoryKiB: ch.mem * 1024 * MiB,
          };
          const got = checkAdmission(s, change, p, { toleratedHostFailures: n })?.code ?? null;
          expect(got).toBe(exhaustive(s, change, p, n));
          const after: ClusterSnapshot = {
            ...s,
            vms: new Map(s.vms).set('new', vm('new', change.host, ch.mem * 1024)),
          };
          for (const h of hosts)
            if (restartsSurelyFit(after, [h.name], p))
              expect(whatIf(after, [h.name], p, ctx).refused).toEqual([]);
        },
      ),
      { numRuns: 300 },
    );
  });
});
