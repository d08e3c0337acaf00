import { describe, expect, it } from 'vitest';
import { policyRefusals } from '../../../src/api/auth/policy-limits.ts';
import { type JobDeps, jobRoutes } from '../../../src/api/routes/jobs.ts';
import type { Decision } from '../../../src/core/plan.ts';
import type { MigrationRequest } from '../../../src/jobs/migrate.ts';
import { snapshot } from '../jobs/fake-move.ts';
import { api, bearer, TOKENS } from './fakes.ts';

const LIMITS = { maxTimeoutMs: 300_000, minBandwidthMiBs: 100, allowPostCopy: false };

async function migrateApi() {
  const { app, audit } = await api();
  const enqueued: MigrationRequest[] = [];
  const j = {
    jobs: {
      // The route submits the migration planner's decision: its action carries the policy.
      submit: async (d: Decision) => {
        for (const a of d.actions)
          if (a.kind === 'migrate')
            enqueued.push({ ...a, requestedBy: d.requestedBy, reason: d.ref } as MigrationRequest);
        return { decision: { ...d, jobs: [] }, jobs: [{ id: 'mig-1', vm: 'vm1', state: 'waiting' }] };
      },
    },
    evacuations: {},
    placement: {
      rulesOf: () => ({ affinityGroup: null, antiAffinityGroup: null }),
      cpuOvercommit: 4,
      memoryFraction: 0.9,
      haPriorityOf: () => 0,
    },
    policyLimits: LIMITS,
  } as unknown as JobDeps;
  jobRoutes(app, { snapshot: () => snapshot } as never, j);
  const migrate = (who: string, policy: object) =>
    app.inject({
      method: 'POST',
      url: '/v1/vms/vm1/migrate',
      headers: bearer(who),
      payload: { to: 'h2', policy },
    });
  return { migrate, enqueued, audit };
}

describe('migration policy overrides by role (F11)', () => {
  it('F11: a vm-admin may not set a migration policy beyond api.vmAdminMigrationPolicy', () => {
    const owner = TOKENS.owner;
    expect(policyRefusals(owner, { timeoutMs: 86_400_000 }, LIMITS)).toEqual([
      'policy.timeoutMs may be at most 300000',
    ]);
    expect(policyRefusals(owner, { bandwidthMiBs: 1 }, LIMITS)).toEqual([
      'policy.bandwidthMiBs must be 0 (unlimited) or at least 100',
    ]);
    expect(policyRefusals(owner, { postCopyAfterIterations: 1, postCopyAfterMs: 5 }, LIMITS)).toHaveLength(2);
    expect(
      policyRefusals(owner, { timeoutMs: 300_000, bandwidthMiBs: 0, maxDowntimeMs: 500 }, LIMITS),
    ).toEqual([]);
    expect(policyRefusals(owner, { postCopyAfterMs: 5 }, { ...LIMITS, allowPostCopy: true })).toEqual([]);
    // Operators and admins own the cluster's policy.
    for (const p of [TOKENS.operator, TOKENS.admin])
      expect(
        policyRefusals(p, { timeoutMs: 86_400_000, bandwidthMiBs: 1, postCopyAfterMs: 1 }, LIMITS),
      ).toEqual([]);
  });

  it("F11: POST migrate refuses a vm-admin's policy beyond the limits with 403, audited as denied, nothing queued", async () => {
    const { migrate, enqueued, audit } = await migrateApi();
    const abuse = await migrate('owner', { bandwidthMiBs: 1, timeoutMs: 86_400_000 });
    expect(abuse.statusCode).toBe(403);
    expect(abuse.json().error.message).toBe(
      'role vm-admin: policy.timeoutMs may be at most 300000; policy.bandwidthMiBs must be 0 (unlimited) or at least 100',
    );
    expect(enqueued).toEqual([]);
    const fair = await migrate('owner', { timeoutMs: 120_000 });
    expect(fair.statusCode).toBe(202);
    const ops = await migrate('operator', { timeoutMs: 86_400_000, postCopyAfterMs: 1000 });
    expect(ops.statusCode).toBe(202);
    expect(enqueued.map((r) => r.policy)).toEqual([
      { timeoutMs: 120_000 },
      { timeoutMs: 86_400_000, postCopyAfterMs: 1000 },
    ]);
    const outcome = audit.written.filter((e) => e.outcome !== 'received');
    expect(outcome.map((e) => [e.action, e.target, e.outcome])).toEqual([
      ['vm.migrate', 'vm1', 'denied'],
      ['vm.migrate', 'vm1', 'succeeded'],
      ['vm.migrate', 'vm1', 'succeeded'],
    ]);
  });
});
