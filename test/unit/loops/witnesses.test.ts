import { describe, expect, it } from 'vitest';
import { WitnessLoop } from '../../../src/loops/witnesses.ts';
import { host, snap } from '../core/planners/fixture.ts';

describe('WitnessLoop', () => {
  it('asks the agents only about lost hosts, about the VMs they last ran, and keeps the votes', async () => {
    const asked: string[] = [];
    let changes = 0;
    const s = snap(
      [
        host('h1', 's1', 4096, { health: 'unreachable', lastKnownVms: ['a', 'b'] }),
        host('h2', 's1', 4096, { lastKnownVms: ['c'] }),
      ],
      [],
    );
    const loop = new WitnessLoop({
      snapshot: () => s,
      windows: async (vm, from, to) => {
        asked.push(`${vm}:${to - from}`);
        return [
          { probe: 'p1', sent: 30, lost: 30 },
          { probe: 'p2', sent: 30, lost: vm === 'b' ? 0 : 30 },
        ];
      },
      intervalMs: 500,
      onChange: () => changes++,
    });
    await loop.pass(10_000);
    expect(asked).toEqual(['a:3000', 'b:3000']);
    expect(loop.of('h1')).toEqual({ up: 1, down: 1, total: 2 });
    expect(loop.of('h2')).toBeNull();
    await loop.pass(11_000);
    expect(changes).toBe(1);
  });
});
