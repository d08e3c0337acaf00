import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type DrsInput, type MoveRecord, planDrs, vmDemands } from '../../../../src/core/drs/index.ts';
import type { BurstAllowance, CpuRaise } from '../../../../src/core/limits.ts';
import type { ClusterSnapshot } from '../../../../src/core/model.ts';
import type { VmRules } from '../../../../src/core/placement/index.ts';
import { context, host, snap, vm } from '../placement/fixtures.ts';

// Random clusters with random CPU demand, rules, tiers, maintenance and recent moves: whatever
// they are, a DRS plan keeps every host within its memory and vCPU allowance, keeps its
// budgets, moves a VM at most once, keeps the rules, and is the same for the same input and seed.

const NOW = 10_000_000;
const clusterArb = fc
  .record({
    hosts: fc.array(
      fc.record({
        site: fc.constantFrom('dc1', 'dc2'),
        cpus: fc.constantFrom(2, 4, 8),
        memMiB: fc.constantFrom(1024, 2048, 4096),
        maintenance: fc.integer({ min: 0, max: 5 }).map((x) => x === 0),
        down: fc.integer({ min: 0, max: 8 }).map((x) => x === 0),
      }),
      { minLength: 2, maxLength: 8 },
    ),
    vms: fc.array(
      fc.record({
        host: fc.nat(),
        memMiB: fc.constantFrom(128, 256, 512),
        vcpus: fc.constantFrom(1, 2, 4),
        // Shares of the VM's vCPUs in hundredths (fc.double favours 0, 1 and tiny values).
        cpu: fc.integer({ min: 0, max: 100 }).map((x) => x / 100),
        spike: fc.integer({ min: 0, max: 100 }).map((x) => x / 100),
        anti: fc.option(fc.constantFrom('a', 'b'), { freq: 3 }),
        aff: fc.option(fc.constantFrom('x'), { freq: 6 }),
        // A VM-host rule: must, should, must not or should not run on some of the hosts.
        hostGroup: fc.option(
          fc.record({
            hosts: fc.uniqueArray(fc.nat({ max: 7 }), { minLength: 1, maxLength: 2 }),
            rule: fc.constantFrom(
              'must' as const,
              'should' as const,
              'must-not' as const,
              'should-not' as const,
            ),
          }),
          { freq: 4 },
        ),
        noDrs: fc.integer({ min: 0, max: 5 }).map((x) => x === 0),
        // A CPU cap with a burst allowance, and maybe a raise that holds (or has lapsed).
        cap: fc.option(
          fc.record({
            capPercent: fc.constantFrom(25, 50, 60),
            burstPercent: fc.constantFrom(70, 90, 100),
            raisedTo: fc.option(fc.integer({ min: 61, max: 100 }), { freq: 2 }),
            raiseLeftMs: fc.integer({ min: -10_000, max: 60_000 }),
            allowed: fc.boolean(),
            /** The newest sample, as a share of the cap (fc.double favours tiny values). */
            use: fc.integer({ min: 0, max: 100 }),
          }),
          { freq: 2 },
        ),
        movedAgo: fc.option(fc.integer({ min: 0, max: 3 * 3600_000 }), { freq: 4 }),
      }),
      { minLength: 1, maxLength: 40 },
    ),
    aggressiveness: fc.constantFrom(1, 2, 3, 4, 5),
    seed: fc.nat(),
  })
  .map((g) => {
    const hosts = g.hosts.map((h, i) =>
      host(`h${i}`, h.site, h.memMiB, {
        cpus: h.cpus,
        maintenance: h.maintenance,
        health: h.down ? 'down' : 'up',
      }),
    );
    const vms = g.vms.map((v, i) => vm(`v${i}`, `h${v.host % hosts.length}`, v.memMiB, { vcpus: v.vcpus }));
    const rules: Record<string, Partial<VmRules>> = {};
    const history = new Map<string, { at: number; cpu: number }[]>();
    const recentMoves: MoveRecord[] = [];
    g.vms.forEach((v, i) => {
      rules[`v${i}`] = {
        antiAffinityGroup: v.anti,
        affinityGroup: v.aff,
        hostGroup: v.hostGroup && {
          name: `g${i}`,
          hosts: v.hostGroup.hosts.map((k) => `h${k % hosts.length}`),
          rule: v.hostGroup.rule,
        },
      };
      // A capped VM never uses more than its cap (raised or not).
      const capVcpus = v.cap
        ? (v.vcpus * Math.min(v.cap.burstPercent, Math.max(v.cap.capPercent, v.cap.raisedTo ?? 0))) / 100
        : v.vcpus;
      const base = Math.min(capVcpus, v.cpu * v.vcpus);
      history.set(`v${i}`, [
        { at: NOW - 200_000, cpu: base },
        { at: NOW - 100_000, cpu: base },
        { at: NOW - 5_000, cpu: v.cap ? (capVcpus * v.cap.use) / 100 : base + v.spike * v.vcpus },
      ]);
      if (v.movedAgo !== null)
        recentMoves.push({
          vm: `v${i}`,
          from: `h${(v.host + 1) % hosts.length}`,
          to: vms[i]!.host,
          at: NOW - v.movedAgo,
        });
    });
    const noDrs = new Set(g.vms.flatMap((v, i) => (v.noDrs ? [`v${i}`] : [])));
    const caps = new Map<string, { allowance: BurstAllowance; raise: CpuRaise | null }>(
      g.vms.flatMap((v, i) =>
        v.cap
          ? [
              [
                `v${i}`,
                {
                  allowance: {
                    capPercent: v.cap.capPercent,
                    burstPercent: v.cap.burstPercent,
                    periodUs: 100_000,
                    holdMs: 60_000,
                  },
                  raise:
                    v.cap.raisedTo === null || v.cap.raisedTo <= v.cap.capPercent
                      ? null
                      : { quotaPercent: v.cap.raisedTo, until: NOW + v.cap.raiseLeftMs },
                },
              ] as const,
            ]
          : [],
      ),
    );
    const input: DrsInput = {
      snap: { ...snap(hosts, vms), takenAt: NOW },
      now: NOW,
      seed: g.seed,
      history,
      recentMoves,
      placement: context(rules, { cpuOvercommit: 4, memoryFraction: 1 }),
      drsAllowed: (n) => !noDrs.has(n),
      capOf: (n) => caps.get(n),
      raiseAllowed: (n) => g.vms[Number(n.slice(1))]?.cap?.allowed ?? false,
      options: { aggressiveness: g.aggressiveness as 1 | 2 | 3 | 4 | 5, maxMovesPerPass: 3 },
      decision: { id: 'dec-1', ref: 'drs', requestedBy: { id: 'controller', name: 'controller' } },
    };
    return { input, noDrs, rules, caps };
  });

/** Where every VM is once the plan's moves are made. */
function after(s: ClusterSnapshot, moves: { vm: string; to: string }[]): Map<string, string> {
  const where = new Map([...s.vms.values()].map((v) => [v.name, v.host]));
  for (const m of moves) where.set(m.vm, m.to);
  return where;
}

describe('DRS plan properties', () => {
  it('keeps capacity, budgets, rules and stability, and is deterministic', () => {
    fc.assert(
      fc.property(clusterArb, ({ input, noDrs, rules, caps }) => {
        const plan = planDrs(input);
        const { snap: s } = input;
        const moves = plan.decision.actions
          .map((a) => (a.kind === 'migrate' ? a : null))
          .filter((a) => a !== null);
        // No VM in two moves; the per-pass and per-host budgets.
        expect(new Set(moves.map((m) => m.vm)).size).toBe(moves.length);
        expect(moves.length).toBeLessThanOrEqual(plan.options.maxMovesPerPass);
        const perHost = new Map<string, number>();
        for (const m of moves) for (const h of [m.from, m.to]) perHost.set(h, (perHost.get(h) ?? 0) + 1);
        for (const n of perHost.values()) expect(n).toBeLessThanOrEqual(plan.options.maxMovesPerHost);
        const where = after(s, moves);
        for (const m of moves) {
          const from = s.hosts.get(m.from)!;
          const to = s.hosts.get(m.to)!;
          // Rules: tiers without drs, maintenance, health, site, stability.
          expect(noDrs.has(m.vm)).toBe(false);
          expect(to.maintenance || to.health !== 'up').toBe(false);
          expect(from.maintenance || from.health !== 'up').toBe(false);
          expect(to.site).toBe(from.site);
          const last = input.recentMoves.find((r) => r.vm === m.vm);
          if (last) expect(input.now - last.at).toBeGreaterThanOrEqual(plan.options.minMoveIntervalMs);
        }
        // Capacity after the plan, on every host a move went to.
        for (const to of new Set(moves.map((m) => m.to))) {
          const h = s.hosts.get(to)!;
          const on = [...s.vms.values()].filter((v) => where.get(v.name) === to);
          expect(on.reduce((x, v) => x + v.memoryKiB, 0)).toBeLessThanOrEqual(h.memoryKiB);
          expect(on.reduce((x, v) => x + v.vcpus, 0)).toBeLessThanOrEqual(h.cpus * 4);
        }
        // Anti-affinity: a moved VM never joins another member of its group (the generated
        // input may already hold two members on one host; that is not the plan's doing).
        for (const m of moves) {
          const g = rules[m.vm]?.antiAffinityGroup;
          if (!g) continue;
          const mates = [...s.vms.values()].filter(
            (v) => v.name !== m.vm && where.get(v.name) === m.to && rules[v.name]?.antiAffinityGroup === g,
          );
          expect(mates.map((v) => v.name)).toEqual([]);
        }
        // Affinity: a moved member of a group lands where another member is (or has none left).
        for (const m of moves) {
          const g = rules[m.vm]?.affinityGroup;
          if (!g) continue;
          const others = [...s.vms.values()].filter(
            (v) => v.name !== m.vm && rules[v.name]?.affinityGroup === g,
          );
          if (others.length > 0) expect(others.some((v) => s.vms.get(v.name)!.host === m.to)).toBe(true);
        }
        // VM-host rules: DRS moves a VM only onto its group's hosts (must, should), and never
        // onto them (must not, should not).
        for (const m of moves) {
          const g = rules[m.vm]?.hostGroup;
          if (g?.rule === 'must' || g?.rule === 'should')
            expect(g.hosts, `${m.vm} moved to ${m.to}`).toContain(m.to);
          else if (g) expect(g.hosts, `${m.vm} moved to ${m.to}`).not.toContain(m.to);
        }
        // Burst protection: a raise stays within the allowance, goes to a VM DRS may raise and
        // does not move, and never takes its host over target (so never over capacity).
        const demands = vmDemands(s, input.history, input.now, plan.options.windows);
        for (const r of plan.raises) {
          const cap = caps.get(r.vm)!;
          expect(input.raiseAllowed!(r.vm) && !noDrs.has(r.vm)).toBe(true);
          expect(r.toPercent).toBeLessThanOrEqual(cap.allowance.burstPercent + 1e-9);
          expect(r.toPercent).toBeGreaterThanOrEqual(r.fromPercent);
          expect(r.extraVcpus).toBeCloseTo(((r.toPercent - r.fromPercent) * s.vms.get(r.vm)!.vcpus) / 100, 6);
          expect(moves.some((m) => m.vm === r.vm)).toBe(false);
        }
        for (const h of new Set(plan.raises.filter((r) => r.extraVcpus > 0).map((r) => r.host))) {
          const on = [...demands.values()].filter((d) => where.get(d.vm) === h);
          const extra = plan.raises.filter((r) => r.host === h).reduce((x, r) => x + r.extraVcpus, 0);
          const short = on.reduce((x, d) => x + d.short, 0) + extra;
          const long = on.reduce((x, d) => x + d.long, 0);
          const cpus = s.hosts.get(h)!.cpus;
          expect(Math.max(short, long)).toBeLessThanOrEqual(plan.options.targetUtilisation * cpus + 1e-6);
          expect(Math.max(short, long)).toBeLessThanOrEqual(cpus);
        }
        // Same input and seed: the same plan.
        expect(planDrs(input).decision).toEqual(plan.decision);
        expect(planDrs(input).raises).toEqual(plan.raises);
      }),
      { numRuns: 300 },
    );
  });

  it('moves something in a generated case (the properties are not vacuous)', () => {
    const plans = fc.sample(clusterArb, { numRuns: 300, seed: 7 }).map((c) => planDrs(c.input));
    expect(plans.some((p) => p.decision.actions.length > 0)).toBe(true);
    expect(plans.some((p) => p.raises.some((r) => r.extraVcpus > 0))).toBe(true);
    expect(plans.some((p) => p.raises.some((r) => r.renewal))).toBe(true);
  });
});
