import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { runScenarioDir } from '../../../../src/cli/commands/ha.ts';
import { type FailoverPlacement, planRestarts } from '../../../../src/core/ha/restart-plan.ts';
import { HOST_EVENTS, parseScenario, simulate } from '../../../../src/core/ha/simulate.ts';
import { host, MiB, snap } from '../planners/fixture.ts';

const ROOT = 'test/fixtures/ha-scenarios';

describe('failover scenarios', () => {
  const dirs = readdirSync(ROOT).sort();
  it('has scenarios', () => expect(dirs.length).toBeGreaterThanOrEqual(30));
  for (const d of dirs)
    it(d, async () => {
      const r = await runScenarioDir(join(ROOT, d));
      expect(r.violations).toEqual([]);
      expect(r.missingExpected).toBe(false);
      expect(r.diff).toBeNull();
    });

  it('names the file and field of bad input', () => {
    const bad =
      'durationS: 10\ncluster:\n  hosts: [{ name: h1, memoryMiB: 1 }]\n  vms: [{ name: v, host: h9 }]\n';
    expect(() => parseScenario(bad, 'x/scenario.yaml')).toThrow(
      'x/scenario.yaml: cluster.vms[0].host: no host named "h9"',
    );
  });

  it('keeps the invariants over random event sequences', () => {
    // An operator confirming a powered host off is an operator error, not a case to survive.
    const kinds = HOST_EVENTS.filter((k) => k !== 'operator-confirm-off');
    const at = fc.integer({ min: 0, max: 40 });
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            fc.record({ at, do: fc.constantFrom(...kinds), host: fc.constantFrom('h1', 'h2', 'h3') }),
            fc.record({ at, do: fc.constant('vm-crash'), vm: fc.constantFrom('a', 'b', 'c') }),
            fc.record({ at, do: fc.constant('ha-pause'), forS: fc.integer({ min: 0, max: 20 }) }),
            fc.record({ at, do: fc.constant('controller-restart'), downS: fc.integer({ min: 0, max: 10 }) }),
          ),
          { maxLength: 8 },
        ),
        fc.integer({ min: 0, max: 3 }),
        fc.integer({ min: 0, max: 2 }),
        (events, silent, fails) => {
          const s = parseScenario(
            JSON.stringify({
              durationS: 60,
              cluster: {
                hosts: ['h1', 'h2', 'h3'].map((name) => ({ name, memoryMiB: 2048 })),
                vms: [
                  { name: 'a', host: 'h1', antiAffinity: 'g' },
                  { name: 'b', host: 'h2', antiAffinity: 'g' },
                  { name: 'c', host: 'h3', memoryMiB: 1024 },
                ],
              },
              events: [
                { at: 1, do: 'witness-silent', count: silent },
                ...(fails > 0 ? [{ at: 1, do: 'fence-fails', host: 'h1', times: fails }] : []),
                ...events,
              ],
            }),
            'random',
          );
          expect(simulate(s).violations).toEqual([]);
        },
      ),
      { numRuns: 60 },
    );
  });
});

describe('planRestarts properties', () => {
  it('never overfills a host, keeps anti-affinity, and is deterministic', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 512, max: 4096 }), { minLength: 1, maxLength: 5 }),
        fc.array(
          fc.record({
            mem: fc.integer({ min: 64, max: 2048 }),
            group: fc.constantFrom(null, 'g1', 'g2'),
            prio: fc.integer({ min: 0, max: 5 }),
          }),
          { maxLength: 12 },
        ),
        (caps, vms) => {
          const hosts = [
            host('dead', 'a', 99999, { health: 'fenced' }),
            ...caps.map((c, i) => host(`h${i}`, 'a', c)),
          ];
          const s = snap(hosts, []);
          const p: FailoverPlacement = {
            rulesOf: (v) => ({
              affinityGroup: null,
              antiAffinityGroup: vms[Number(v.slice(1))]?.group ?? null,
            }),
            cpuOvercommit: 100,
            memoryFraction: 1,
            haPriorityOf: (v) => vms[Number(v.slice(1))]?.prio ?? 0,
            tierRankOf: () => 0,
          };
          const reqs = vms.map((v, i) => ({ vm: `v${i}`, from: 'dead', vcpus: 1, memoryKiB: v.mem * MiB }));
          const ctx = { id: 'd', at: 0, ref: 't', requestedBy: { id: 'c', name: 'c' } };
          const d = planRestarts(s, reqs, p, ctx);
          expect(planRestarts(s, reqs, p, ctx)).toEqual(d);
          expect(d.actions.length + d.refused.length).toBe(vms.length);
          const used = new Map<string, number>();
          const groups = new Set<string>();
          for (const a of d.actions) {
            if (a.kind !== 'restart-elsewhere') continue;
            const v = vms[Number(a.vm.slice(1))]!;
            used.set(a.to, (used.get(a.to) ?? 0) + v.mem);
            if (v.group) {
              expect(groups.has(`${v.group}@${a.to}`)).toBe(false);
              groups.add(`${v.group}@${a.to}`);
            }
          }
          for (const [h, m] of used) expect(m).toBeLessThanOrEqual(caps[Number(h.slice(1))]!);
        },
      ),
    );
  });
});
