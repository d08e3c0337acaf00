import { describe, expect, it } from 'vitest';
import { decisionView, HIDDEN_VM, type JobFacts } from '../../../src/api/decision-view.ts';
import { DEC_ID, evacuation, JOB, principal } from './decision-fixture.ts';

const CLUSTER = ['web1', 'web2', 'db1', 'db2', 'db9.x', 'db9'];

const done = (outageMs: number[]): JobFacts => ({
  state: 'succeeded',
  result: {
    outcome: 'succeeded',
    reason: null,
    finishedAt: 1_000,
    probe: outageMs.map((o) => ({ outageMs: o })),
  },
});

const jobs = new Map<string, JobFacts | null>([
  [JOB.web1, done([120, 340])],
  [JOB.db1, done([])],
  [JOB.web2, null],
]);

describe('decisionView', () => {
  it('shows an admin, an operator and a viewer the whole decision, unredacted', () => {
    for (const role of ['admin', 'operator', 'viewer'] as const) {
      const v = decisionView(evacuation(), principal(role), CLUSTER, jobs)!;
      expect(v.partial).toBe(false);
      expect(v.vms).toEqual(['web1', 'db1', 'web2']);
      expect(Object.keys(v.candidates).sort()).toEqual(['db1', 'web1', 'web2']);
      expect(v.actions).toHaveLength(4);
      expect(v.candidates.db1![0]!.rejectedBy[0]).toEqual({
        plugin: 'anti-affinity',
        code: 'AntiAffinity',
        reason: 'anti-affinity group "db": db2, db9.x already on h2',
      });
    }
  });

  it("joins each job's state, outcome and longest probe outage, and says when a job is gone", () => {
    const v = decisionView(evacuation(), principal('admin'), CLUSTER, jobs)!;
    expect(v.jobs).toEqual([
      {
        id: JOB.web1,
        vm: 'web1',
        kind: 'migrate',
        state: 'succeeded',
        outcome: 'succeeded',
        reason: null,
        finishedAt: 1_000,
        outageMs: 340,
      },
      expect.objectContaining({ id: JOB.db1, state: 'succeeded', outageMs: null }),
      expect.objectContaining({ id: JOB.web2, state: 'gone', outcome: null, outageMs: null }),
    ]);
  });

  it("shows a vm-admin of one of three VMs only that VM's parts and no other VM's name", () => {
    const v = decisionView(evacuation(), principal('vm-admin', ['db1']), CLUSTER, jobs)!;
    expect(v.id).toBe(DEC_ID);
    expect(v.partial).toBe(true);
    expect(v.vms).toEqual(['db1']);
    expect(Object.keys(v.candidates)).toEqual(['db1']);
    expect(v.actions).toEqual([{ kind: 'migrate', vm: 'db1', from: 'h1', to: 'h3', copyStorage: 'auto' }]);
    expect(v.jobs.map((j) => j.id)).toEqual([JOB.db1]);
    // The filter keeps its code; its sentence loses the other VMs' names.
    expect(v.candidates.db1![0]!.rejectedBy[0]).toEqual({
      plugin: 'anti-affinity',
      code: 'AntiAffinity',
      reason: `anti-affinity group "db": ${HIDDEN_VM}, ${HIDDEN_VM} already on h2`,
      redacted: true,
    });
    const text = JSON.stringify(v);
    for (const other of ['web1', 'web2', 'db2', 'db9']) expect(text).not.toContain(other);
    expect(text).toContain('db1');
  });

  it('matches scopes by glob and keeps every VM the glob covers', () => {
    const v = decisionView(evacuation(), principal('vm-admin', ['web*']), CLUSTER, jobs)!;
    expect(v.vms).toEqual(['web1', 'web2']);
    // web2's filter names web1, which this reader may see.
    expect(v.candidates.web2![0]!.rejectedBy[0]!.reason).toBe(
      'anti-affinity group "web": web1 planned on h2',
    );
    expect(v.candidates.web2![0]!.rejectedBy[0]!.redacted).toBeUndefined();
    expect(JSON.stringify(v)).not.toMatch(/db[129]/);
  });

  it('gives a vm-admin nothing of a decision without its VMs', () => {
    expect(decisionView(evacuation(), principal('vm-admin', ['db2']), CLUSTER, jobs)).toBeNull();
    expect(decisionView(evacuation(), principal('vm-admin', []), CLUSTER, jobs)).toBeNull();
  });

  it('redacts other VM names in refusals, the reason, the ref and job failure reasons', () => {
    const d = evacuation({
      reason: 'make room for web2 on h3',
      ref: 'schedule:web1',
      ok: false,
      refused: [
        { vm: 'db1', reasons: ['h2: anti-affinity group "db": db2 already on h2'] },
        { vm: 'web2', reasons: ['h2: web1 planned on h2'] },
      ],
    });
    const failed: JobFacts = {
      state: 'failed',
      result: { outcome: 'failed', reason: 'db2 holds the slot on h3.', finishedAt: 5, probe: [] },
    };
    const v = decisionView(d, principal('vm-admin', ['db1']), CLUSTER, new Map([[JOB.db1, failed]]))!;
    expect(v.reason).toBe(`make room for ${HIDDEN_VM} on h3`);
    expect(v.ref).toBe(`schedule:${HIDDEN_VM}`);
    expect(v.refused).toEqual([
      { vm: 'db1', reasons: [`h2: anti-affinity group "db": ${HIDDEN_VM} already on h2`] },
    ]);
    expect(v.jobs[0]!.reason).toBe(`${HIDDEN_VM} holds the slot on h3.`);
    for (const other of ['web1', 'web2', 'db2']) expect(JSON.stringify(v)).not.toContain(other);
  });

  it('does not redact a longer name that merely starts with a hidden one', () => {
    const d = evacuation({ reason: 'db1x and db1.y and db10 and db2-b are fine; db2.' });
    const v = decisionView(d, principal('vm-admin', ['db1*']), ['db2', 'db1x', 'db10', 'db1.y'], jobs)!;
    expect(v.reason).toBe(`db1x and db1.y and db10 and db2-b are fine; ${HIDDEN_VM}.`);
  });

  it('leaves the stored record as it was', () => {
    const d = evacuation();
    const before = JSON.stringify(d);
    decisionView(d, principal('vm-admin', ['db1']), CLUSTER, jobs);
    expect(JSON.stringify(d)).toBe(before);
  });
});
