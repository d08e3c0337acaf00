import { describe, expect, it } from 'vitest';
import { planRestarts, restartRefusals } from '../../../../src/core/planners/restart.ts';
import { host, placement, snap, vm } from './fixture.ts';

// The never-run-twice rule of a restart elsewhere, as submit and the executor check it.
describe('restartRefusals', () => {
  const a = { vm: 'vm1', from: 'h1', to: 'h2' };

  it('allows a restart once the old host is fenced and every other host is up', () => {
    const s = snap(
      [host('h1', 's1', 4096, { health: 'fenced', lastKnownVms: ['vm1'] }), host('h2', 's1', 4096)],
      [],
    );
    expect(restartRefusals(s, a)).toEqual([]);
  });

  it('refuses while the old host is only unreachable, partitioned or down', () => {
    for (const health of ['unreachable', 'partitioned', 'down', 'suspect'] as const) {
      const s = snap([host('h1', 's1', 4096, { health, lastKnownVms: ['vm1'] }), host('h2', 's1', 4096)], []);
      expect(restartRefusals(s, a)).toContain(`host h1 is ${health}, not fenced: it might still run vm1`);
    }
  });

  it('refuses when the VM runs somewhere, or a third host that last listed it is not up', () => {
    const running = snap(
      [host('h1', 's1', 4096, { health: 'fenced' }), host('h2', 's1', 4096), host('h3', 's1', 4096)],
      [vm('vm1', 'h3')],
    );
    expect(restartRefusals(running, a)).toEqual(['VM "vm1" is already running on h3']);
    const hidden = snap(
      [
        host('h1', 's1', 4096, { health: 'fenced' }),
        host('h2', 's1', 4096),
        host('h3', 's1', 4096, { health: 'unreachable', lastKnownVms: ['vm1'] }),
      ],
      [],
    );
    expect(restartRefusals(hidden, a)).toEqual([
      'host h3 is unreachable and last listed vm1: it might still run it there',
    ]);
  });

  it('refuses a target that is not up or is in maintenance, and the old host as target', () => {
    const s = snap(
      [host('h1', 's1', 4096, { health: 'fenced' }), host('h2', 's1', 4096, { maintenance: true })],
      [],
    );
    expect(restartRefusals(s, a)).toEqual(['target host h2 is in maintenance']);
    expect(restartRefusals(s, { ...a, to: 'h1' })).toContain('target host h1 is fenced');
  });
});

describe('planRestarts', () => {
  const lostHost = () => host('h1', 's1', 4096, { health: 'fenced', lastKnownVms: ['lo', 'hi', 'mid'] });
  const ctx = { id: 'dec-f', at: 1, ref: 'failover:h1' };
  const prio: Record<string, number> = { hi: 100, mid: 50, lo: 0 };
  const p = { ...placement, haPriorityOf: (v: string) => prio[v] ?? 0 };

  it('restarts higher priority first within the site, each placement committed before the next', () => {
    const s = snap([lostHost(), host('h2', 's1', 1000), host('h3', 's2', 8192)], []);
    const lost = [vm('lo', 'h1', 400), vm('hi', 'h1', 400), vm('mid', 'h1', 400)];
    const d = planRestarts(s, 'h1', lost, p, ctx);
    // h2 holds two of the three (1000 MiB); h3 is in another site.
    expect(d.actions).toEqual([
      { kind: 'restart-elsewhere', vm: 'hi', from: 'h1', to: 'h2' },
      { kind: 'restart-elsewhere', vm: 'mid', from: 'h1', to: 'h2' },
    ]);
    expect(d.ok).toBe(false);
    expect(d.refused.map((r) => r.vm)).toEqual(['lo']);
    expect(d.refused[0]!.reasons.join(' ')).toMatch(/h2: .*memory/i);
    expect(d.candidates.lo!.find((c) => c.host === 'h3')!.rejectedBy.map((r) => r.code)).toContain(
      'OtherSite',
    );
    expect(d.candidates.hi!.find((c) => c.host === 'h1')!.feasible).toBe(false);
  });

  it('keeps anti-affinity: two VMs of one group never land on the same host', () => {
    const s = snap([lostHost(), host('h2', 's1', 4096), host('h3', 's1', 4096)], []);
    const rules = {
      ...p,
      rulesOf: (v: string) => ({ affinityGroup: null, antiAffinityGroup: v === 'lo' ? null : 'db' }),
    };
    const d = planRestarts(s, 'h1', [vm('hi', 'h1'), vm('mid', 'h1')], rules, ctx);
    const targets = d.actions.map((a) => (a as { to: string }).to);
    expect(new Set(targets).size).toBe(2);
  });
});
