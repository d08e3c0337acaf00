import { describe, expect, it } from 'vitest';
import type { CpuRaise } from '../../../src/core/limits.ts';
import type { ClusterSnapshot, VmSnapshot } from '../../../src/core/model.ts';
import type { LibvirtClient } from '../../../src/libvirt/index.ts';
import { LimitsLoop } from '../../../src/loops/limits.ts';
import { createMetrics } from '../../../src/metrics/registry.ts';
import type { AuditInput } from '../../../src/store/audit.ts';

const vm = { name: 'batch-1', host: 'h1', state: 'running' } as VmSnapshot;
const snapshot = (): ClusterSnapshot => ({
  takenAt: 0,
  sites: ['dc1'],
  hosts: new Map(),
  vms: new Map([[vm.name, vm]]),
});

/** A host that keeps what is set, or refuses every cpu change with `refuse`. */
function fakeHost(refuse?: string) {
  let scheduler: Record<string, number> = { cpu_shares: 1024, vcpu_period: 100_000, vcpu_quota: -1 };
  const memory = { hard_limit: 9007199254740991, soft_limit: 9007199254740991 };
  const client = {
    lookupByName: async (name: string) => ({ name }),
    getXml: async () =>
      "<domain><devices><interface><mac address='52:54:00:00:00:01'/></interface></devices></domain>",
    getSchedulerParameters: async () => ({ ...scheduler }),
    getMemoryParameters: async () => ({ ...memory }),
    getBlkioParameters: async () => ({}),
    getInterfaceParameters: async () => ({}),
    setSchedulerParameters: async (_d: unknown, p: Record<string, number>) => {
      if (refuse) throw new Error(refuse);
      scheduler = { ...scheduler, ...p };
    },
    setMemoryParameters: async () => {},
    setBlkioParameters: async () => {},
    setInterfaceParameters: async () => {},
  };
  return client as unknown as LibvirtClient;
}

function loopWith(client: LibvirtClient, raiseOf?: () => Promise<CpuRaise | null>) {
  const entries: AuditInput[] = [];
  const loop = new LimitsLoop({
    snapshot,
    clientFor: () => client,
    limitsProfileOf: () => 'capped-50',
    limits: { profiles: { 'capped-50': { cpu: { quotaPercent: 50, burstQuotaPercent: 90 } } } } as never,
    ...(raiseOf ? { raiseOf } : {}),
    intervalMs: 1_000,
    metrics: createMetrics(),
    log: { info() {}, warn() {} },
    audit: { record: async (e: AuditInput) => void entries.push(e) },
  });
  return { loop, entries };
}

describe('limits loop: every change is audited', () => {
  it('records the drift it fixed as vm.limits by the controller, once, not again when compliant', async () => {
    const { loop, entries } = loopWith(fakeHost());
    await loop.pass(1_000);
    expect(loop.compliance.get('batch-1')?.status).toBe('fixed');
    expect(entries).toEqual([
      {
        actor: 'controller',
        actorName: 'controller',
        action: 'vm.limits',
        target: 'batch-1',
        params: {
          host: 'h1',
          profile: 'capped-50',
          drift: [{ group: 'scheduler', field: 'vcpu_quota', desired: 50_000, observed: -1 }],
        },
        outcome: 'succeeded',
        message: null,
      },
    ]);
    await loop.pass(1_000);
    expect(loop.compliance.get('batch-1')?.status).toBe('compliant');
    expect(entries).toHaveLength(1);
  });

  it('records a change the host refused as failed, with its error, once while the error stays the same', async () => {
    const { loop, entries } = loopWith(fakeHost('operation forbidden'));
    await loop.pass(1_000);
    await loop.pass(1_000);
    expect(loop.compliance.get('batch-1')?.status).toBe('failed');
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({
      action: 'vm.limits',
      target: 'batch-1',
      outcome: 'failed',
      message: 'cpu: operation forbidden',
      params: { drift: [{ field: 'vcpu_quota', desired: 50_000 }] },
    });
  });
});

describe('limits loop: a CPU cap DRS raised within the burst allowance', () => {
  it('keeps the raised cap while the raise holds, and puts the profile cap back once it lapses', async () => {
    const host = fakeHost();
    let raise: CpuRaise | null = null;
    const { loop } = loopWith(host, async () => raise);
    await loop.pass(1_000);
    expect((await host.getSchedulerParameters({} as never)).vcpu_quota).toBe(50_000);
    // The executor's raise: recorded, then set on the host.
    raise = { quotaPercent: 90, until: 60_000 };
    await host.setSchedulerParameters({} as never, { vcpu_quota: 90_000 });
    await loop.pass(30_000);
    expect(loop.compliance.get('batch-1')?.status).toBe('compliant');
    expect((await host.getSchedulerParameters({} as never)).vcpu_quota).toBe(90_000);
    // Not renewed: at its end the loop falls back to the profile's cap.
    await loop.pass(60_000);
    expect(loop.compliance.get('batch-1')?.status).toBe('fixed');
    expect((await host.getSchedulerParameters({} as never)).vcpu_quota).toBe(50_000);
  });

  it('does not look a raise up for a profile without a burst allowance', async () => {
    let asked = 0;
    const loop = new LimitsLoop({
      snapshot,
      clientFor: () => fakeHost(),
      limitsProfileOf: () => 'capped-50',
      limits: { profiles: { 'capped-50': { cpu: { quotaPercent: 50 } } } } as never,
      raiseOf: async () => {
        asked++;
        return { quotaPercent: 90, until: 60_000 };
      },
      intervalMs: 1_000,
      metrics: createMetrics(),
      log: { info() {}, warn() {} },
    });
    await loop.pass(1_000);
    expect(asked).toBe(0);
    expect(loop.compliance.get('batch-1')?.status).toBe('fixed');
  });

  it('never keeps more than the allowance, whatever the record says', async () => {
    const host = fakeHost();
    const { loop } = loopWith(host, async () => ({ quotaPercent: 100, until: 60_000 }));
    await loop.pass(1_000);
    expect((await host.getSchedulerParameters({} as never)).vcpu_quota).toBe(90_000);
  });
});
