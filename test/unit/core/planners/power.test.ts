import { describe, expect, it } from 'vitest';
import { planPower, recheckPower, startRefusals } from '../../../../src/core/planners/power.ts';
import { host, snap, vm, who } from './fixture.ts';

const ctx = (lastPlacement: string | null = null) => ({
  ...who,
  planner: 'operator' as const,
  lastPlacement,
});

describe('power planner: never start a VM twice', () => {
  const off = vm('web', 'h2', 100, { state: 'shutoff' });

  it('starts a shut-off VM where it is defined when every host is up', () => {
    const d = planPower(
      snap([host('h1', 'dc1', 1000), host('h2', 'dc1', 1000)], [off]),
      'start',
      'web',
      ctx('h2'),
    );
    expect(d).toMatchObject({ ok: true, actions: [{ kind: 'start', vm: 'web', host: 'h2' }], refused: [] });
    expect(d).toMatchObject({ id: 'dec-1', planner: 'operator', vms: ['web'], reason: 'start web on h2' });
  });

  it('refuses while the host it runs on is unreachable and last listed it (its copy elsewhere looks shut off)', () => {
    const s = snap(
      [host('h1', 'dc1', 1000, { health: 'unreachable', lastKnownVms: ['web'] }), host('h2', 'dc1', 1000)],
      [off],
    );
    const d = planPower(s, 'start', 'web', ctx());
    expect(d.ok).toBe(false);
    expect(d.actions).toEqual([]);
    expect(d.refused).toEqual([
      { vm: 'web', reasons: ['host h1 is unreachable and last listed web: it might still run it there'] },
    ]);
  });

  it('refuses when its last recorded placement is on a host that is not up, even with no listing', () => {
    const s = snap([host('h1', 'dc1', 1000, { health: 'partitioned' }), host('h2', 'dc1', 1000)], [off]);
    expect(startRefusals(s, 'web', 'h1')).toEqual([
      'web last ran on h1, which is partitioned: it might still run there',
    ]);
    // The same host, not up, but the VM never ran there: it may start.
    expect(startRefusals(s, 'web', 'h2')).toEqual([]);
  });

  it('refuses while any host is unknown (right after a restart), and while it runs or is split', () => {
    expect(
      startRefusals(
        snap([host('h1', 'dc1', 1000, { health: 'unknown' }), host('h2', 'dc1', 1000)], [off]),
        'web',
        null,
      ),
    ).toEqual(['host h1 is unknown (not observed yet): it might run web']);
    expect(
      startRefusals(
        snap([host('h2', 'dc1', 1000)], [vm('web', 'h2', 100, { state: 'paused' })]),
        'web',
        null,
      ),
    ).toEqual(['VM "web" is already paused on h2']);
    const split = {
      ...snap([host('h1', 'dc1', 1000), host('h2', 'dc1', 1000)], [off]),
      conflicts: [
        {
          vm: 'web',
          copies: [
            { host: 'h1', state: 'paused' },
            { host: 'h2', state: 'running' },
          ],
        },
      ],
    };
    expect(startRefusals(split, 'web', null)).toEqual(['VM "web" is active on h1 (paused) and h2 (running)']);
  });

  it('shuts down only a running VM and destroys a running or paused one, on a host that is up', () => {
    const s = snap([host('h2', 'dc1', 1000)], [off, vm('db', 'h2'), vm('p', 'h2', 100, { state: 'paused' })]);
    expect(planPower(s, 'shutdown', 'web', ctx()).refused).toEqual([
      { vm: 'web', reasons: ['VM "web" is shutoff, not running'] },
    ]);
    expect(planPower(s, 'shutdown', 'db', ctx()).ok).toBe(true);
    expect(planPower(s, 'shutdown', 'p', ctx()).ok).toBe(false);
    expect(planPower(s, 'destroy', 'p', ctx()).actions).toEqual([{ kind: 'destroy', vm: 'p', host: 'h2' }]);
    expect(planPower(s, 'start', 'nope', ctx()).refused).toEqual([
      { vm: 'nope', reasons: ['no VM named "nope"'] },
    ]);
  });

  it('is checked again by the executor right before acting', () => {
    const s = snap(
      [host('h1', 'dc1', 1000, { health: 'unreachable', lastKnownVms: ['web'] }), host('h2', 'dc1', 1000)],
      [off],
    );
    expect(recheckPower(s, { kind: 'start', vm: 'web', host: 'h2' }, null)).toEqual([
      'host h1 is unreachable and last listed web: it might still run it there',
    ]);
    expect(recheckPower(s, { kind: 'start', vm: 'web', host: 'h1' }, null)).toContain(
      'host h1 is unreachable',
    );
  });
});
