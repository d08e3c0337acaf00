import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { HostHealth } from '../../../../src/core/model.ts';
import {
  planEnterMaintenance,
  planExitMaintenance,
  refusalText,
} from '../../../../src/core/planners/evacuate.ts';
import { planMigration } from '../../../../src/core/planners/migrate.ts';
import { host, placement, snap, vm, who } from './fixture.ts';

describe('evacuation planner', () => {
  it('moves every active VM of the host within its site, with every candidate judged', () => {
    const s = snap(
      [host('h1', 'dc1', 1000), host('h2', 'dc1', 1000), host('h3', 'dc2', 9000)],
      [vm('a', 'h1', 300), vm('b', 'h1', 200), vm('off', 'h1', 100, { state: 'shutoff' })],
    );
    const d = planEnterMaintenance(s, 'h1', placement, {}, who);
    expect(d.ok).toBe(true);
    expect(d.actions).toEqual([
      { kind: 'migrate', vm: 'b', from: 'h1', to: 'h2', copyStorage: 'auto' },
      { kind: 'migrate', vm: 'a', from: 'h1', to: 'h2', copyStorage: 'auto' },
    ]);
    expect(d.vms).toEqual(['b', 'a']);
    // Every host is a candidate in the record: the emptied one and the other site's, rejected.
    expect(d.candidates.b!.map((c) => [c.host, c.feasible, c.rejectedBy.map((v) => v.code)])).toEqual([
      ['h2', true, []],
      ['h1', false, expect.arrayContaining(['SameHost'])],
      ['h3', false, ['OtherSite']],
    ]);
    expect(d.planner).toBe('evacuate');
  });

  it('refuses a host that is not up (its VMs cannot be seen) instead of an empty plan', () => {
    for (const health of ['unreachable', 'partitioned', 'unknown', 'suspect'] as HostHealth[]) {
      const s = snap([host('h1', 'dc1', 1000, { health }), host('h2', 'dc1', 1000)], []);
      const d = planEnterMaintenance(s, 'h1', placement, {}, who);
      expect(d.ok, health).toBe(false);
      expect(d.actions).toEqual([]);
      expect(refusalText(d)).toBe(`host h1 is ${health}: the VMs on it are not known`);
    }
  });

  it("is all or nothing: one VM that fits nowhere leaves no actions, with each host's reason", () => {
    const s = snap(
      [host('h1', 'dc1', 1000), host('h2', 'dc1', 500)],
      [vm('small', 'h1', 100), vm('big', 'h1', 450)],
    );
    const d = planEnterMaintenance(s, 'h1', placement, {}, who);
    expect(d.ok).toBe(false);
    expect(d.actions).toEqual([]);
    expect(refusalText(d)).toBe('big: h2: host h2 has 400 MiB of guest memory free, big needs 450 MiB');
  });

  it('never plans a host over its memory, and moves every VM or none (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 50, max: 600 }), { maxLength: 8 }),
        fc.integer({ min: 200, max: 2000 }),
        (mems, cap) => {
          const s = snap(
            [host('h1', 'dc1', 10_000), host('h2', 'dc1', cap), host('h3', 'dc1', cap)],
            mems.map((m, i) => vm(`v${i}`, 'h1', m)),
          );
          const d = planEnterMaintenance(s, 'h1', placement, {}, who);
          const used = new Map<string, number>();
          for (const a of d.actions)
            if (a.kind === 'migrate')
              used.set(a.to, (used.get(a.to) ?? 0) + s.vms.get(a.vm)!.memoryKiB / 1024);
          for (const [h, u] of used) expect(u).toBeLessThanOrEqual(s.hosts.get(h)!.memoryKiB / 1024);
          expect(d.actions.length).toBe(d.ok ? mems.length : 0);
        },
      ),
    );
  });

  it('moves back only what still runs elsewhere, and refuses moveBack to a host that is not up', () => {
    const s = snap(
      [host('h1', 'dc1', 1000), host('h2', 'dc1', 1000)],
      [vm('a', 'h2'), vm('b', 'h1'), vm('c', 'h2', 100, { state: 'shutoff' })],
    );
    const ev = [
      { vm: 'a', to: 'h2' },
      { vm: 'b', to: 'h2' },
      { vm: 'c', to: 'h2' },
      { vm: 'gone', to: 'h2' },
    ];
    expect(planExitMaintenance(s, 'h1', ev, { moveBack: true }, who).actions).toEqual([
      { kind: 'migrate', vm: 'a', from: 'h2', to: 'h1', copyStorage: 'auto' },
    ]);
    expect(planExitMaintenance(s, 'h1', ev, { moveBack: false }, who)).toMatchObject({
      ok: true,
      actions: [],
    });
    const down = snap(
      [host('h1', 'dc1', 1000, { health: 'unreachable' }), host('h2', 'dc1', 1000)],
      [vm('a', 'h2')],
    );
    expect(refusalText(planExitMaintenance(down, 'h1', ev, { moveBack: true }, who))).toBe(
      'host h1 is unreachable: its VMs cannot move back',
    );
  });
});

describe('migration planner', () => {
  const s = snap(
    [host('h1', 'dc1', 1000), host('h2', 'dc1', 300), host('h3', 'dc1', 1000), host('h4', 'dc2', 5000)],
    [vm('a', 'h1', 200), vm('x', 'h3', 100)],
  );
  const ctx = { ...who, planner: 'operator' as const };

  it('chooses the best host of the site and keeps every verdict', () => {
    const d = planMigration(s, 'a', { copyStorage: false }, placement, ctx);
    expect(d.ok).toBe(true);
    expect(d.actions).toEqual([{ kind: 'migrate', vm: 'a', from: 'h1', to: 'h3', copyStorage: false }]);
    expect(d.candidates.a!.map((c) => c.host)).toEqual(['h3', 'h2']);
    expect(d.candidates.a!.every((c) => c.feasible && c.rejectedBy.length === 0 && c.score > 0)).toBe(true);
    expect(d.reason).toBe('move a to the best host of dc1: h3');
  });

  it('refuses a given destination with the reasons, as filter verdicts in the candidates', () => {
    const small = snap([host('h1', 'dc1', 1000), host('h2', 'dc1', 150)], [vm('a', 'h1', 200)]);
    const d = planMigration(small, 'a', { to: 'h2', copyStorage: false }, placement, ctx);
    expect(d.ok).toBe(false);
    expect(d.refused).toEqual([
      { vm: 'a', reasons: ['host h2 has 150 MiB of guest memory free, a needs 200 MiB'] },
    ]);
    expect(d.candidates.a![0]).toMatchObject({
      host: 'h2',
      feasible: false,
      rejectedBy: [{ reason: expect.stringMatching(/^host h2 has/) }],
    });
    expect(planMigration(small, 'a', { copyStorage: false }, placement, ctx).refused[0]!.reasons).toEqual([
      'no host in site dc1 can take a',
    ]);
  });
});
