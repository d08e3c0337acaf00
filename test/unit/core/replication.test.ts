import { describe, expect, it } from 'vitest';
import {
  achievedRpoMs,
  planMirrors,
  type ReplicationHost,
  type ReplicationInput,
  type ReplicationVm,
  withinRpo,
} from '../../../src/core/replication.ts';

const MiB = 1024 * 1024;
const host = (name: string, site: string, o: Partial<ReplicationHost> = {}): ReplicationHost => ({
  name,
  site,
  health: 'up',
  maintenance: false,
  managementAddress: `10.0.0.${name.slice(1)}`,
  ...o,
});
const vm = (name: string, o: Partial<ReplicationVm> = {}): ReplicationVm => ({
  name,
  host: 'h1',
  state: 'running',
  dataClass: 'a',
  recoverySite: 'dc2',
  localDisks: [{ disk: 'vda', sizeBytes: 64 * MiB }],
  ...o,
});
const input = (o: Partial<ReplicationInput>): ReplicationInput => ({
  vms: [],
  hosts: [host('h1', 'dc1'), host('h2', 'dc1'), host('h3', 'dc2'), host('h4', 'dc2')],
  replicas: [],
  mirrors: [],
  settings: { portBase: 10809, portCount: 2, directory: '/var/lib/keizoku/replicas' },
  ...o,
});

describe('planMirrors', () => {
  it('mirrors only class ア VMs, each local disk to a recovery-site host, spread by replica count', () => {
    const plan = planMirrors(
      input({
        vms: [
          vm('db1'),
          vm('db2', {
            localDisks: [
              { disk: 'vda', sizeBytes: MiB },
              { disk: 'vdb', sizeBytes: 2 * MiB },
            ],
          }),
          vm('web1', { dataClass: 'b' }),
        ],
      }),
    );
    expect(plan.map((d) => [d.vm, d.disk, d.verdict, d.verdict !== 'cannot' && d.target.host])).toEqual([
      ['db1', 'vda', 'start', 'h3'],
      ['db2', 'vda', 'start', 'h4'],
      ['db2', 'vdb', 'start', 'h3'],
    ]);
    const t = plan[2]!.verdict === 'start' ? plan[2]!.target : null;
    expect(t).toEqual({
      vm: 'db2',
      disk: 'vdb',
      host: 'h3',
      address: '10.0.0.3',
      port: 10810,
      name: 'db2-vdb',
      path: '/var/lib/keizoku/replicas/db2-vdb.replica.qcow2',
      sizeBytes: 2 * MiB,
    });
  });

  it('keeps a ready synchronous mirror, restarts a broken one into the same replica, moves a replica off a host that is down', () => {
    const prior = planMirrors(input({ vms: [vm('db1'), vm('db2')] })).map((d) =>
      d.verdict === 'start' ? d.target : null,
    )!;
    const [r1, r2] = prior as NonNullable<(typeof prior)[number]>[];
    const mirrors = [
      { vm: 'db1', disk: 'vda', ready: true, synchronous: true, lastReadyAt: 5 },
      { vm: 'db2', disk: 'vda', ready: false, synchronous: true, lastReadyAt: 5 },
    ];
    const again = planMirrors(input({ vms: [vm('db1'), vm('db2')], replicas: [r1!, r2!], mirrors }));
    expect(again.map((d) => [d.vm, d.verdict, d.verdict !== 'cannot' && d.target])).toEqual([
      ['db1', 'mirroring', r1],
      ['db2', 'start', r2],
    ]);
    expect(again[1]!.reason).toBe('db2 is class ア: restarts the mirror into its replica on h4');
    const h4down = input({
      vms: [vm('db2')],
      replicas: [r2!],
      hosts: [host('h1', 'dc1'), host('h3', 'dc2'), host('h4', 'dc2', { health: 'unreachable' })],
    });
    expect(planMirrors(h4down).map((d) => d.verdict !== 'cannot' && d.target.host)).toEqual(['h3']);
  });

  it('says why it cannot: no recovery site, at the recovery site, not running, no host, no port', () => {
    const reasons = (i: ReplicationInput) => planMirrors(i).map((d) => d.verdict === 'cannot' && d.reason);
    expect(
      reasons(
        input({
          vms: [vm('a1', { recoverySite: null }), vm('a2', { host: 'h3' }), vm('a3', { state: 'shutoff' })],
        }),
      ),
    ).toEqual([
      'a1 is class ア but has no recovery site (vms[].recoverySite)',
      'a2 runs at its recovery site dc2: there is no other site to mirror to',
      "a3 is shutoff: only a running VM's disk can be mirrored",
    ]);
    expect(
      reasons(
        input({ vms: [vm('a4')], hosts: [host('h1', 'dc1'), host('h3', 'dc2', { maintenance: true })] }),
      ),
    ).toEqual(["no host of dc2 is up and out of maintenance to hold a4's replica"]);
    const many = input({
      vms: ['b1', 'b2', 'b3'].map((n) => vm(n)),
      hosts: [host('h1', 'dc1'), host('h3', 'dc2')],
    });
    expect(reasons(many)).toEqual([false, false, "every NBD port 10809-10810 of dc2's hosts is taken"]);
  });
});

describe('achieved RPO', () => {
  const m = { vm: 'db1', disk: 'vda', ready: true, synchronous: true, lastReadyAt: 1_000 };
  it('is 0 while the mirror is ready and synchronous, else the age of the last ready moment, null without one', () => {
    expect(achievedRpoMs(m, 9_000)).toBe(0);
    expect(achievedRpoMs({ ...m, ready: false }, 9_000)).toBe(8_000);
    expect(achievedRpoMs({ ...m, synchronous: false }, 9_000)).toBe(8_000);
    expect(achievedRpoMs({ ...m, ready: false, lastReadyAt: null }, 9_000)).toBeNull();
    expect(achievedRpoMs(undefined, 9_000)).toBeNull();
  });
  it('meets class ア only at 0, class イ within a day; no replica never', () => {
    expect(withinRpo(0, 0)).toBe(true);
    expect(withinRpo(1, 0)).toBe(false);
    expect(withinRpo(23 * 3_600_000, 24)).toBe(true);
    expect(withinRpo(null, 720)).toBe(false);
  });
});
