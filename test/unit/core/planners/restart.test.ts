import { describe, expect, it } from 'vitest';
import { restartRefusals } from '../../../../src/core/planners/restart.ts';
import { host, snap, vm } from './fixture.ts';

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

  it('allows a relocation from an up host that lists the VM shut off, never from one that runs it', () => {
    const hosts = [host('h1', 's1', 4096), host('h2', 's1', 4096)];
    expect(
      restartRefusals(snap(hosts, [vm('vm1', 'h1', 100, { state: 'shutoff', crashed: true })]), a),
    ).toEqual([]);
    expect(restartRefusals(snap(hosts, [vm('vm1', 'h1')]), a)).toEqual(['VM "vm1" is already running on h1']);
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
