import { describe, expect, it } from 'vitest';
import { type CpuSample, type DrsInput, explainVm, planDrs } from '../../../../src/core/drs/index.ts';
import type { CpuRaise } from '../../../../src/core/limits.ts';
import { context, host, snap, vm } from '../placement/fixtures.ts';

// Burst protection before moving: `web` (2 vCPUs, capped at 50 % per vCPU = 1 vCPU, allowance
// 90 % = 1.8 vCPUs) bursts from 0.2 to its cap on h0 (4 CPUs). h1 is idle.

const NOW = 1_000_000;
const allowance = { capPercent: 50, burstPercent: 90, periodUs: 100_000, holdMs: 60_000 };
const decision = { id: 'dec-1', ref: 'drs', requestedBy: { id: 'controller', name: 'controller' } };

function input(o: {
  others: number;
  raise?: CpuRaise;
  webNow?: number;
  raiseAllowed?: boolean;
  h1?: boolean;
  otherMiB?: number;
}) {
  const webNow = o.webNow ?? 1;
  const history = new Map<string, CpuSample[]>([
    [
      'web',
      [
        { at: NOW - 200_000, cpu: 0.2 },
        { at: NOW - 100_000, cpu: 0.2 },
        { at: NOW - 5_000, cpu: webNow },
      ],
    ],
  ]);
  const vms = [vm('web', 'h0', 1024, { vcpus: 2, cpuUsage: webNow })];
  for (let i = 0; i < o.others; i++) {
    vms.push(vm(`steady${i}`, 'h0', o.otherMiB ?? 512, { vcpus: 1, cpuUsage: 1 }));
    history.set(`steady${i}`, [
      { at: NOW - 200_000, cpu: 1 },
      { at: NOW - 5_000, cpu: 1 },
    ]);
  }
  const hosts = [host('h0', 'dc1', 8192, { cpus: 4 })];
  if (o.h1 ?? true) hosts.push(host('h1', 'dc1', 8192, { cpus: 4 }));
  const i: DrsInput = {
    snap: { ...snap(hosts, vms), takenAt: NOW },
    now: NOW,
    seed: 1,
    history,
    recentMoves: [],
    placement: context(),
    drsAllowed: () => true,
    capOf: (n) => (n === 'web' ? { allowance, raise: o.raise ?? null } : undefined),
    raiseAllowed: () => o.raiseAllowed ?? true,
    decision,
  };
  return i;
}

describe('DRS burst protection', () => {
  it('raises the cap within the allowance when the host has room, and moves nothing', () => {
    // h0: web at 1 + one steady VM = 2 of 4 CPUs; +0.8 vCPUs keeps it at 70 %, under 85 %.
    const plan = planDrs(input({ others: 1 }));
    expect(plan.moves).toEqual([]);
    expect(plan.raises).toHaveLength(1);
    expect(plan.raises[0]).toMatchObject({
      vm: 'web',
      host: 'h0',
      fromPercent: 50,
      toPercent: 90,
      renewal: false,
    });
    expect(plan.raises[0]!.extraVcpus).toBeCloseTo(0.8, 9);
    const e = explainVm(input({ others: 1 }), 'web')!.explanation!;
    expect(e.verdict).toBe('cap-raised');
    expect(e.reasons[0]).toContain('instead of moving it');
  });

  it('moves the VM when its host cannot give it the allowance, sized by what it asks for', () => {
    // h0: web at 1 + 2 steady = 3 of 4 CPUs: 0.4 vCPUs free under target, web asks for 0.8 more.
    // Its neighbours have more memory to copy, so moving web is the cheapest relief.
    const plan = planDrs(input({ others: 2, otherMiB: 2048 }));
    expect(plan.raises).toEqual([]);
    expect(plan.moves.map((m) => [m.vm, m.from, m.to])).toEqual([['web', 'h0', 'h1']]);
    const e = plan.explanations.web!;
    expect(e.verdict).toBe('moved');
    expect(e.reasons[0]).toMatch(
      /h0 has 0\.4 of the 0\.8 vCPUs its allowance allows free under target: it moves/,
    );
    expect(e.demand.short).toBeCloseTo(1.8, 9);
  });

  it('when moving a neighbour is the cheaper relief, the neighbour moves and the VM gets its raise', () => {
    const plan = planDrs(input({ others: 2, otherMiB: 256 }));
    expect(plan.moves).toHaveLength(1);
    expect(plan.moves[0]!.vm).toMatch(/^steady/);
    expect(plan.raises).toMatchObject([{ vm: 'web', toPercent: 90 }]);
    expect(plan.explanations.web!.reasons.at(-1)).toContain('its cap is raised to 90 %');
  });

  it('with nowhere to move, raises the cap only as far as the host has room under target', () => {
    const plan = planDrs(input({ others: 2, h1: false }));
    expect(plan.moves).toEqual([]);
    expect(plan.raises).toHaveLength(1);
    expect(plan.raises[0]!.toPercent).toBeCloseTo(70, 9); // +0.4 vCPUs over 2 vCPUs
    expect(plan.raises[0]!.extraVcpus).toBeCloseTo(0.4, 9);
    expect(plan.explanations.web!.verdict).toBe('cap-raised');
  });

  it('without raising (manual mode) it plans as before: no raise, no inflated demand', () => {
    const plan = planDrs(input({ others: 2, raiseAllowed: false }));
    expect(plan.raises).toEqual([]);
    expect(plan.explanations.web?.demand.short ?? 1).toBeCloseTo(1, 9);
  });

  it('renews a raise that holds while the VM still needs it, only in the second half of its hold', () => {
    const late = planDrs(input({ others: 1, webNow: 1.8, raise: { quotaPercent: 90, until: NOW + 20_000 } }));
    expect(late.raises).toMatchObject([
      { vm: 'web', fromPercent: 90, toPercent: 90, renewal: true, extraVcpus: 0 },
    ]);
    const early = planDrs(
      input({ others: 1, webNow: 1.8, raise: { quotaPercent: 90, until: NOW + 50_000 } }),
    );
    expect(early.raises).toEqual([]);
    expect(early.explanations.web!.verdict).toBe('cap-raised');
    expect(early.moves).toEqual([]);
  });

  it('lets a raise lapse once the burst is over (the VM back under its profile cap)', () => {
    const plan = planDrs(input({ others: 1, webNow: 0.3, raise: { quotaPercent: 90, until: NOW + 5_000 } }));
    expect(plan.raises).toEqual([]);
  });
});
