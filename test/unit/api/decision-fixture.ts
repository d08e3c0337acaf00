import type { Principal, Role } from '../../../src/api/auth/rbac.ts';
import type { DecisionRecord } from '../../../src/core/plan.ts';

export const principal = (role: Role, vms: string[] = []): Principal => ({
  id: `tok-${role}`,
  name: role,
  role,
  vms,
  allowMigrate: false,
});

export const DEC_ID = 'dec-0b5f6a52-1c9e-4f7a-9a51-3f0e7c2d9b10';
export const JOB = {
  web1: 'mig-00000000-0000-4000-8000-000000000001',
  db1: 'mig-00000000-0000-4000-8000-000000000002',
  web2: 'mig-00000000-0000-4000-8000-000000000003',
};
export const OTHER_ID = 'dec-7d0e1f2a-3b4c-4d5e-8f60-718293a4b5c6';

/**
 * Host h1 enters maintenance: web1 goes to h2, web2 to h3 (web1 planned on h2 keeps it off
 * h2 by anti-affinity), db1 to h3 (db2 and db9.x, not in the decision, keep it off h2).
 */
export function evacuation(over: Partial<DecisionRecord> = {}): DecisionRecord {
  return {
    id: DEC_ID,
    planner: 'evacuate',
    at: Date.UTC(2026, 11, 2, 9, 30),
    reason: 'host h1 enters maintenance',
    ref: 'maintenance:h1',
    requestedBy: { id: 'tok-alice', name: 'alice' },
    vms: ['web1', 'db1', 'web2'],
    candidates: {
      web1: [
        { host: 'h2', feasible: true, rejectedBy: [], scores: { memory: 0.9, cpu: 0.7 }, score: 0.82 },
        { host: 'h3', feasible: true, rejectedBy: [], scores: { memory: 0.5, cpu: 0.8 }, score: 0.61 },
        {
          host: 'h1',
          feasible: false,
          rejectedBy: [{ plugin: 'not-source', code: 'AlreadyThere', reason: 'web1 already runs on h1' }],
          scores: {},
          score: 0,
        },
      ],
      db1: [
        {
          host: 'h2',
          feasible: false,
          rejectedBy: [
            {
              plugin: 'anti-affinity',
              code: 'AntiAffinity',
              reason: 'anti-affinity group "db": db2, db9.x already on h2',
            },
          ],
          scores: {},
          score: 0,
        },
        { host: 'h3', feasible: true, rejectedBy: [], scores: { memory: 0.6 }, score: 0.6 },
      ],
      web2: [
        {
          host: 'h2',
          feasible: false,
          rejectedBy: [
            {
              plugin: 'anti-affinity',
              code: 'AntiAffinity',
              reason: 'anti-affinity group "web": web1 planned on h2',
            },
          ],
          scores: {},
          score: 0,
        },
        { host: 'h3', feasible: true, rejectedBy: [], scores: { memory: 0.4 }, score: 0.4 },
      ],
    },
    actions: [
      { kind: 'migrate', vm: 'web1', from: 'h1', to: 'h2', copyStorage: 'auto' },
      { kind: 'migrate', vm: 'db1', from: 'h1', to: 'h3', copyStorage: 'auto' },
      { kind: 'migrate', vm: 'web2', from: 'h1', to: 'h3', copyStorage: 'auto' },
      { kind: 'fence', host: 'h1' },
    ],
    ok: true,
    refused: [],
    jobs: [
      { id: JOB.web1, vm: 'web1', kind: 'migrate' },
      { id: JOB.db1, vm: 'db1', kind: 'migrate' },
      { id: JOB.web2, vm: 'web2', kind: 'migrate' },
    ],
    ...over,
  };
}
