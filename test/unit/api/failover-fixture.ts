import type { FailoverRecord, FailoverVm } from '../../../src/core/ha/timeline.ts';

/** A finished failover of h1 as the ha loop writes it: two VMs restarted on h2, both answering. */

export const FO_ID = 'fo-h1-1764770401000';
const T = 1_764_770_400_000;

const vm = (name: string, priority: number, i: number): FailoverVm => ({
  vm: name,
  tier: 'frontend',
  priority,
  from: 'h1',
  status: 'answering',
  to: 'h2',
  placedAt: T + 5_000,
  decision: 'dec-00000000-0000-4000-8000-000000000009',
  reason: 'host h1 fenced: restart its HA VMs',
  job: `restart-elsewhere-00000000-0000-4000-8000-00000000000${i}`,
  submittedAt: T + 5_010,
  startedAt: T + 5_100 + i * 400,
  endedAt: T + 5_400 + i * 400,
  runningAt: T + 5_400 + i * 400,
  failed: [],
  answeringAt: T + 9_000 + i * 600,
  rtoMs: 9_000 + i * 600,
  probe: {
    probe: 'p1',
    outageStartMs: T + 300,
    outageEndMs: T + 9_000 + i * 600,
    outageMs: 8_700 + i * 600,
    lost: 44,
  },
  note: null,
});

export const failoverFixture = (): FailoverRecord => ({
  id: FO_ID,
  host: 'h1',
  status: 'done',
  failureAt: T,
  failureBasis: 'last-seen-up',
  lastSeenUpAt: T,
  detectedAt: T + 1_000,
  declaredDownAt: T + 4_000,
  declaredEvidence:
    'host h1 declared down (link down, ICMP silent, witnesses: 1 see its VMs silent, 0 answer)',
  fence: {
    method: 'lab',
    attempts: 1,
    startedAt: T + 4_000,
    confirmedAt: T + 4_900,
    evidence: 'lab power: off',
    ref: null,
    errors: [],
  },
  recoveringAt: T + 5_000,
  recoveredAt: T + 6_000,
  endedAt: T + 11_000,
  reason: '2 VM(s) restarted and answering',
  vms: [vm('web1', 20, 1), vm('vm1', 10, 2)],
  events: [
    { at: T + 1_000, kind: 'detected', text: 'host h1 seen not up (last seen up 1.0 s before)' },
    { at: T + 4_000, kind: 'declared-down', text: 'host h1 declared down' },
    { at: T + 4_900, kind: 'fenced', text: 'host h1 fenced (attempt 1, power confirmed off)' },
    { at: T + 5_000, kind: 'placed', vm: 'web1', text: 'VM web1 placed on h2' },
    { at: T + 9_600, kind: 'answering', vm: 'web1', text: 'VM web1 answers the probe on h2 (RTO 9.6 s)' },
  ],
});
