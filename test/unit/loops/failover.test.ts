import { describe, expect, it } from 'vitest';
import type { Decision } from '../../../src/core/plan.ts';
import { FailoverLoop } from '../../../src/loops/failover.ts';
import { host, snap, vm } from '../core/planners/fixture.ts';

const decision = (host: string, vms: string[], refused: string[] = []): Decision => ({
  id: `dec-${host}`,
  planner: 'failover',
  at: 0,
  reason: `host ${host} was fenced`,
  ref: `failover:${host}`,
  requestedBy: { id: 'controller', name: 'controller' },
  vms: [...vms, ...refused],
  candidates: {},
  actions: vms.map((v) => ({ kind: 'restart-elsewhere' as const, vm: v, from: host, to: 'h2' })),
  ok: refused.length === 0,
  refused: refused.map((v) => ({ vm: v, reasons: ['no host has room'] })),
});

describe('FailoverLoop', () => {
  it('plans only the fenced host VMs that run nowhere, have failover and no job; submits what fits', async () => {
    const s = snap(
      [
        host('h1', 's1', 4096, { health: 'fenced', lastKnownVms: ['a', 'b', 'c', 'd', 'e'] }),
        host('h2', 's1', 4096),
        host('h3', 's1', 4096, { health: 'unreachable', lastKnownVms: ['x'] }),
      ],
      [vm('a', 'h2')],
    );
    const planned: string[][] = [];
    const submitted: { d: Decision; reason?: string }[] = [];
    const audits: string[] = [];
    const loop = new FailoverLoop({
      snapshot: () => s,
      jobs: {
        holderOf: async (v) => (v === 'c' ? ({ id: 'mig-1' } as never) : null),
        submit: async (d, o) => {
          submitted.push({ d, reason: o?.reason });
          return { decision: { ...d, jobs: [] }, jobs: [] };
        },
      },
      hasFailover: (v) => v !== 'd',
      plan: (_snap, h, vms) => {
        const names = vms.map((v) => v.name);
        planned.push(names);
        return decision(
          h,
          names.filter((v) => v !== 'e'),
          names.filter((v) => v === 'e'),
        );
      },
      audit: {
        record: async (e) => {
          audits.push(`${e.action}:${e.message}`);
          return e as never;
        },
      },
      log: { info() {}, warn() {} },
      storedVm: async (v, h) => vm(v, h),
      intervalMs: 1_000,
    });
    expect(await loop.pass()).toEqual({ result: 'success' });
    expect(planned).toEqual([['b', 'e']]);
    expect(submitted).toHaveLength(1);
    expect(submitted[0]!.reason).toBe('failover:h1');
    expect(submitted[0]!.d.actions.map((a) => (a as { vm: string }).vm)).toEqual(['b']);
    expect(submitted[0]!.d.ok).toBe(true);
    await loop.pass();
    expect(audits).toEqual(['failover.refused:e: no host has room']);
  });
});
