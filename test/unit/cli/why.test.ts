import { describe, expect, it } from 'vitest';
import { decisionView, type JobFacts } from '../../../src/api/decision-view.ts';
import { formatDecision, formatWhy } from '../../../src/cli/commands/why.ts';
import { evacuation, JOB, principal } from '../api/decision-fixture.ts';

const jobs = new Map<string, JobFacts | null>([
  [
    JOB.web1,
    {
      state: 'succeeded',
      result: { outcome: 'succeeded', reason: null, finishedAt: 9, probe: [{ outageMs: 340 }] },
    },
  ],
  [JOB.db1, { state: 'active', result: null }],
]);
const view = (p = principal('admin')) => decisionView(evacuation(), p, ['db2', 'db9.x'], jobs)!;

describe('vm why output', () => {
  it('says when, which planner, why, the ref and who asked', () => {
    const text = formatDecision(view());
    const [head, why, ref] = text.split('\n');
    expect(head).toMatch(/^dec-0b5f6a52-\S+ {2}2026-12-02T09:30:00\.000Z {2}evacuate$/);
    expect(why).toBe('  why:    host h1 enters maintenance');
    expect(ref).toBe('  ref:    maintenance:h1, asked by alice (tok-alice)');
  });

  it('lists every candidate host with its filter or its scores, the chosen one marked', () => {
    const lines = formatDecision(view()).split('\n');
    const web1 = lines.indexOf('  hosts considered for web1:');
    expect(lines[web1 + 1]).toMatch(/^ {4}HOST\s+VERDICT\s+SCORE\s+FILTER OR SCORES$/);
    expect(lines[web1 + 2]).toMatch(/^ {4}h2\s+chosen\s+0\.82\s+memory 0\.90, cpu 0\.70$/);
    expect(lines[web1 + 3]).toMatch(/^ {4}h3\s+feasible\s+0\.61\s+memory 0\.50, cpu 0\.80$/);
    expect(lines[web1 + 4]).toMatch(/^ {4}h1\s+rejected\s+-\s+AlreadyThere: web1 already runs on h1$/);
    expect(lines.join('\n')).toContain('AntiAffinity: anti-affinity group "db": db2, db9.x already on h2');
  });

  it('shows each action with its job, outcome and probe outage, and a job that is gone', () => {
    const lines = formatDecision(view()).split('\n');
    const row = (vm: string) => lines.find((l) => /^ {4}migrate/.test(l) && l.includes(` ${vm} `))!;
    expect(row('web1')).toMatch(new RegExp(`migrate\\s+web1\\s+h1 -> h2\\s+${JOB.web1}\\s+succeeded\\s+340`));
    expect(row('db1')).toMatch(new RegExp(`migrate\\s+db1\\s+h1 -> h3\\s+${JOB.db1}\\s+active`));
    expect(row('web2')).toMatch(new RegExp(`${JOB.web2}\\s+gone \\(no longer kept\\)`));
    expect(lines.find((l) => l.includes('fence'))).toMatch(/fence\s+-\s+h1\s+no job/);
  });

  it('marks a redacted view and a refused decision', () => {
    const text = formatDecision(view(principal('vm-admin', ['db1'])));
    expect(text).toContain('(redacted)');
    expect(text).toContain('(parts about VMs outside your scope are not shown)');
    expect(text).not.toContain('web1');
    const refused = decisionView(
      evacuation({
        ok: false,
        actions: [],
        jobs: [],
        refused: [{ vm: 'db1', reasons: ['no host has room'] }],
      }),
      principal('admin'),
      [],
      new Map(),
    )!;
    const r = formatDecision(refused);
    expect(r.split('\n')[0]).toMatch(/evacuate {2}\(refused\)$/);
    expect(r).toContain('  actions: none');
    expect(r).toContain('  refused db1: no host has room');
  });

  it('says so when no decision touched the VM', () => {
    expect(formatWhy('web9', [])).toBe('web9: no decisions recorded\n');
    expect(formatWhy('web1', [view(), view()]).split('\n\n')).toHaveLength(2);
  });
});
