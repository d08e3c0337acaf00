import { describe, expect, it } from 'vitest';
import type { CpuRaise } from '../../../src/core/limits.ts';
import { type PowerPorts, runPowerAction } from '../../../src/jobs/power.ts';
import type { LibvirtClient } from '../../../src/libvirt/index.ts';

// The raise-cpu-cap action: the raise is recorded (for the limits loop) before the cap changes.

const action = {
  kind: 'raise-cpu-cap' as const,
  vm: 'web',
  host: 'h1',
  quotaPercent: 90,
  periodUs: 100_000,
  holdMs: 60_000,
};
const req = {
  action,
  requestedBy: { id: 'controller', name: 'controller' },
  reason: 'drs:burst:h1',
  decisionId: 'dec-1',
};

function ports(steps: string[], record: boolean, refusals: string[] = []): PowerPorts {
  const client = {
    lookupByName: async (name: string) => ({ name }),
    setSchedulerParameters: async (_d: unknown, p: Record<string, number>) => {
      steps.push(`set ${JSON.stringify(p)}`);
    },
  } as unknown as LibvirtClient;
  return {
    clientFor: () => client,
    refusalsNow: async () => refusals,
    domainXmlOf: async () => null,
    ...(record
      ? {
          recordRaise: async (vm: string, r: CpuRaise) =>
            void steps.push(`record ${vm} ${r.quotaPercent} ${r.until - Date.now() <= 60_000}`),
        }
      : {}),
  };
}

describe('raise-cpu-cap action', () => {
  it('records the raise until its hold ends, then sets the quota on the host', async () => {
    const steps: string[] = [];
    const r = await runPowerAction(req, ports(steps, true), async () => false);
    expect(r).toMatchObject({ outcome: 'succeeded', vm: 'web', host: 'h1' });
    expect(steps).toEqual(['record web 90 true', 'set {"vcpu_period":100000,"vcpu_quota":90000}']);
  });

  it('is refused without a store for raises, and when the fresh snapshot contradicts it', async () => {
    const steps: string[] = [];
    expect((await runPowerAction(req, ports(steps, false), async () => false)).reason).toBe(
      'no store for raised CPU caps',
    );
    const r = await runPowerAction(req, ports(steps, true, ['web is on h2, not h1']), async () => false);
    expect(r).toMatchObject({ outcome: 'refused', reason: 'web is on h2, not h1' });
    expect(steps).toEqual([]);
  });
});
