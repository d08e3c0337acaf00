import { describe, expect, it } from 'vitest';
import { type JobDeps, jobRoutes } from '../../../src/api/routes/jobs.ts';
import { twoHosts } from '../jobs/fake-move.ts';
import { api, bearer } from './fakes.ts';

const snapshot = twoHosts({ 'db-secret': 'h2', vm1: 'h1' });

/** F28: a migrate refusal read by a vm-admin names no VM outside its scope. */
async function refusalOf(who: string): Promise<{ status: number; message: string }> {
  const { app } = await api();
  const j = {
    jobs: { submit: async () => ({ decision: null, jobs: [] }) },
    evacuations: {},
    placement: {
      // vm1 and db-secret may not share a host.
      rulesOf: () => ({ affinityGroup: null, antiAffinityGroup: 'spread' }),
      cpuOvercommit: 4,
      memoryFraction: 0.9,
      haPriorityOf: () => 0,
    },
    policyLimits: { maxTimeoutMs: 300_000, minBandwidthMiBs: 100, allowPostCopy: false },
  } as unknown as JobDeps;
  jobRoutes(app, { snapshot: () => snapshot } as never, j);
  const r = await app.inject({
    method: 'POST',
    url: '/v1/vms/vm1/migrate',
    headers: bearer(who),
    payload: { to: 'h2' },
  });
  return { status: r.statusCode, message: r.json().error.message };
}

describe('migrate refusals by role (F28)', () => {
  it("F28: a vm-admin's anti-affinity refusal says another VM is on the host, not which", async () => {
    const r = await refusalOf('owner');
    expect(r.status).toBe(409);
    expect(r.message).toBe('anti-affinity group "spread": (another VM) already on h2');
    expect(r.message).not.toContain('db-secret');
  });

  it('F28: an operator reads the same refusal with the VM named', async () => {
    const r = await refusalOf('operator');
    expect(r).toEqual({ status: 409, message: 'anti-affinity group "spread": db-secret already on h2' });
  });
});
