import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createVm, type LabState, readState, virsh, waitFor, waitForPing } from '../../lab/index.ts';
import type { FailoverRecord } from '../../src/core/ha/timeline.ts';
import { CLUSTER_PREFIX, redisKeys } from '../../src/store/keys.ts';
import { type RunningKeizokud, startKeizokud } from '../support/keizokud.ts';
import { labCli, sharedLab } from '../support/lab-fixture.ts';
import { type RunningProbe, startProbeAgent } from '../support/probe-agent.ts';
import { qemuCopies } from '../support/qemu.ts';
import { startRedis } from '../support/redis.ts';

/** HA VMs on h1's shared storage, highest priority first. */
const VMS = [
  { name: 'ha1', haPriority: 40 },
  { name: 'ha2', haPriority: 30 },
  { name: 'ha3', haPriority: 20 },
  { name: 'ha4', haPriority: 10 },
];
const PARTITIONS = 20;

/**
 * Automatic failover against the lab, nothing confirmed by hand: keizokud, a probe agent as
 * the witness, and the lab's power switch as every host's fence method. A partition (the VMs
 * keep answering the witness) restarts nothing; a power loss is declared down, fenced by
 * keizokud and recovered on the site's other host in priority order; a controller killed in
 * the middle of a recovery finishes it after its restart with one copy of every VM.
 */
describe('automatic failover (lab)', () => {
  let lab: LabState;
  let kz: RunningKeizokud;
  let probe: RunningProbe;
  let redis: Awaited<ReturnType<typeof startRedis>>;
  let admin: string;
  const fenced = new Set<string>();

  const health = async (h: string) =>
    (await kz.request('GET', `/v1/hosts/${h}`, admin)).body.health as string;
  const hostOf = async (vm: string) => {
    const v = (await kz.request('GET', `/v1/vms/${vm}`, admin)).body;
    return v.state === 'running' ? (v.host as string) : null;
  };
  const allOn = (h: string) => async () =>
    (await Promise.all(VMS.map((v) => hostOf(v.name)))).every((x) => x === h);
  const audit = async (action: string) =>
    (await kz.request('GET', `/v1/audit?action=${action}&limit=1000`, admin)).body.entries as {
      target: string;
      outcome: string;
      actor: string;
      message?: string;
    }[];
  /** The failover record of a host's failure since `t0`, once it is no longer open. */
  const failoverOf = async (host: string, t0: number) => {
    let found: FailoverRecord | null = null;
    await waitFor(
      `the failover record of ${host} closed`,
      async () => {
        const list = (await kz.request('GET', `/v1/ha/failovers?host=${host}`, admin)).body.failovers as {
          id: string;
          status: string;
          detectedAt: number;
        }[];
        const mine = list.find((f) => f.detectedAt >= t0);
        if (!mine || mine.status === 'open') return false;
        found = (await kz.request('GET', `/v1/ha/failovers/${mine.id}`, admin)).body as FailoverRecord;
        return true;
      },
      120_000,
      500,
    );
    return found! as FailoverRecord;
  };
  const labHost = (name: string) => lab.layout.hosts.find((h) => h.name === name)!;
  const cut = (h: string) => {
    fenced.add(h);
    expect(labCli(['fence', h, '--lab', String(lab.id)]).code).toBe(0);
  };

  beforeAll(async () => {
    redis = await startRedis();
    lab = sharedLab();
    await Promise.all(VMS.map((v) => createVm(lab.id, { name: v.name, host: 'h1', disk: 'shared' })));
    lab = readState(lab.id)!;
    kz = await startKeizokud(lab, redis.url, {}, (config) => {
      const lv = config.libvirt as Record<string, unknown>;
      lv.keepaliveIntervalSec = 1;
      lv.keepaliveCount = 2;
      config.ha = { declareAfterMs: 1_000 };
      config.vms = VMS.map((v) => ({ match: { name: v.name }, tier: 'frontend', haPriority: v.haPriority }));
    });
    admin = await kz.token('admin');
    await waitFor('the HA VMs seen running on h1', allOn('h1'), 30_000, 250);
    probe = await startProbeAgent(
      kz,
      VMS.map((v) => v.name),
      20,
      'ping',
    );
  }, 240_000);

  afterAll(async () => {
    for (const h of fenced) labCli(['heal', h, '--lab', String(lab.id)]);
    if (lab)
      for (const h of ['h1', 'h2'])
        for (const v of VMS) {
          await virsh(labHost(h), ['destroy', v.name]).catch(() => undefined);
          await virsh(labHost(h), ['undefine', v.name]).catch(() => undefined);
        }
    await probe?.stop();
    await kz?.stop();
    await redis?.stop();
  }, 180_000);

  it(`restarts nothing over ${PARTITIONS} partitions of the controller from h1 while its VMs answer the witness`, async () => {
    const seen = new Set<string>();
    for (let i = 0; i < PARTITIONS; i++) {
      expect(labCli(['partition', 'h1', '--lab', String(lab.id)]).code).toBe(0);
      await waitFor(
        `h1 seen lost (partition ${i + 1})`,
        async () => (await health('h1')) !== 'up',
        30_000,
        100,
      );
      // Held past the declare delay: a host that is only partitioned must stay partitioned.
      await waitFor(
        `h1 judged with its witness (partition ${i + 1})`,
        async () => {
          const h = await health('h1');
          seen.add(h);
          return h === 'partitioned';
        },
        30_000,
        100,
      );
      await new Promise((r) => setTimeout(r, 1_200));
      seen.add(await health('h1'));
      expect(labCli(['heal', 'h1', '--lab', String(lab.id)]).code).toBe(0);
      await waitFor(
        `h1 up again (partition ${i + 1})`,
        async () => (await health('h1')) === 'up',
        30_000,
        100,
      );
    }
    expect([...seen].filter((h) => h === 'down' || h === 'fenced')).toEqual([]);
    expect(await audit('host.fence')).toEqual([]);
    for (const v of VMS) expect(qemuCopies(v.name), v.name).toBe(1);
    expect(await allOn('h1')()).toBe(true);
  }, 900_000);

  it('declares a powered-off h1 down, fences it and restarts its HA VMs on h2, highest priority first', async () => {
    const t0 = Date.now();
    cut('h1');
    const rto = await Promise.all(
      lab.vms
        .filter((v) => VMS.some((x) => x.name === v.name))
        .map(async (v) => {
          await waitForPing(v.address, 300_000);
          return [v.name, Date.now() - t0] as const;
        }),
    );
    await waitFor('the HA VMs seen running on h2', allOn('h2'), 60_000, 250);
    console.log(`automatic failover RTO per VM (ms): ${JSON.stringify(Object.fromEntries(rto))}`);
    for (const v of VMS) expect(qemuCopies(v.name), v.name).toBe(1);
    // keizokud ran the fence itself, by h1's method, and said why each VM moved.
    expect((await audit('host.fence')).map((e) => [e.target, e.outcome, e.actor])).toEqual([
      ['h1', 'succeeded', 'controller'],
    ]);
    // The priority gate (ha.priorityGate answer, the default) starts one class at a time: one
    // failover decision per VM here, each found from the VM.
    const decisionOf = async (vm: string) => {
      const why = (await kz.request('GET', `/v1/vms/${vm}/decisions`, admin)).body.decisions as {
        id: string;
        planner: string;
        actions: { vm: string; from: string; to: string }[];
      }[];
      return why.find((x) => x.planner === 'failover' && x.actions.some((a) => a.vm === vm));
    };
    const decisions = new Map<string, Awaited<ReturnType<typeof decisionOf>>>();
    for (const v of VMS) {
      const d = await decisionOf(v.name);
      expect(
        d?.actions.map((a) => [a.vm, a.from, a.to]),
        v.name,
      ).toEqual([[v.name, 'h1', 'h2']]);
      decisions.set(v.name, d);
    }

    // The failover record: every VM answering again, its RTO close to the one measured here.
    const f = await failoverOf('h1', t0 - 60_000);
    console.log(
      `failover record RTO per VM (ms): ${JSON.stringify(Object.fromEntries(f.vms.map((v) => [v.vm, v.rtoMs])))}, failure (${f.failureBasis}) ${f.failureAt - t0} ms after the cut was asked for`,
    );
    expect(f).toMatchObject({ host: 'h1', status: 'done', failureBasis: 'last-seen-up' });
    expect(f.fence).toMatchObject({ method: 'lab', attempts: 1, errors: [] });
    expect(f.fence.evidence).toBeTruthy();
    expect(f.failureAt).toBeLessThanOrEqual(f.detectedAt);
    expect(f.detectedAt).toBeLessThanOrEqual(f.declaredDownAt!);
    expect(f.declaredDownAt!).toBeLessThanOrEqual(f.fence.confirmedAt!);
    expect(f.vms.map((v) => [v.vm, v.priority, v.from, v.to, v.status])).toEqual(
      VMS.map((v) => [v.name, v.haPriority, 'h1', 'h2', 'answering']),
    );
    const measured = Object.fromEntries(rto);
    for (const v of f.vms) {
      expect(v.job, v.vm).toBeTruthy();
      expect(v.decision, v.vm).toBe(decisions.get(v.vm)?.id);
      // In order: fenced, placed, job started, running, first reply.
      expect(v.placedAt!, v.vm).toBeGreaterThanOrEqual(f.fence.confirmedAt!);
      expect(v.startedAt!, v.vm).toBeGreaterThanOrEqual(v.placedAt!);
      expect(v.runningAt!, v.vm).toBeGreaterThanOrEqual(v.startedAt!);
      expect(v.answeringAt!, v.vm).toBeGreaterThan(v.runningAt!);
      expect(v.rtoMs, v.vm).toBe(Math.round(v.answeringAt! - f.failureAt));
      // The probe's outage lies within the failure-to-reply span, give or take one ICMP
      // interval: the failure point is the host's last sign of life, and the host's last ICMP
      // reply (pinged every loops.healthIntervalMs, 500 ms) can come just after the VM's own
      // last reply (a full run: outage 17,209 ms against an RTO of 17,189 ms).
      expect(v.probe!.outageMs, v.vm).toBeGreaterThan(0);
      expect(v.probe!.outageMs, v.vm).toBeLessThanOrEqual(v.rtoMs! + 500);
      // Within 15 % of the RTO this test measured itself (power cut to its own first ping).
      expect(Math.abs(v.rtoMs! - measured[v.vm]!), v.vm).toBeLessThanOrEqual(0.15 * measured[v.vm]!);
    }
    // Higher priority first: placed, submitted, started and answering in priority order, each
    // placed only once the one before it answered the probe (the priority gate).
    const order = (kind: string) => f.events.filter((e) => e.kind === kind).map((e) => e.vm);
    expect(order('placed')).toEqual(VMS.map((v) => v.name));
    expect(order('submitted')).toEqual(VMS.map((v) => v.name));
    expect(order('answering')).toEqual(VMS.map((v) => v.name));
    const byName = new Map(f.vms.map((v) => [v.vm, v]));
    for (let i = 1; i < VMS.length; i++) {
      const before = byName.get(VMS[i - 1]!.name)!;
      const next = byName.get(VMS[i]!.name)!;
      expect(next.placedAt!, next.vm).toBeGreaterThanOrEqual(before.answeringAt!);
    }
    // The test's own first pings agree on the order.
    const pinged = VMS.map((v) => measured[v.name]!);
    expect(pinged).toEqual([...pinged].sort((a, b) => a - b));
    // Each wait is in the audit log.
    const waits = (await audit('ha.restart')).map((e) => e.message ?? '');
    expect(waits.some((m) => /VM ha4 waits until VM ha1, of a higher priority, answers/.test(m))).toBe(true);
    expect(waits.some((m) => /VM ha1 answers the probe: the next priority class may start/.test(m))).toBe(
      true,
    );
  }, 480_000);

  it('finishes a recovery after kill -9 of keizokud in its middle: one copy of each VM, a second start refused by the disk lock', async () => {
    labCli(['heal', 'h1', '--lab', String(lab.id)]);
    fenced.delete('h1');
    await waitFor('h1 up again', async () => (await health('h1')) === 'up', 60_000, 250);
    const t0 = Date.now();
    cut('h2');
    // Killed once the machine has started the recovery (its state is in Redis).
    await waitFor(
      'the recovery of h2 started',
      async () => {
        const s = JSON.parse((await kz.redis.get(redisKeys(CLUSTER_PREFIX).haState)) ?? '{}');
        return s.machine?.hosts?.h2?.phase === 'recovering' || s.machine?.hosts?.h2?.phase === 'done';
      },
      120_000,
      50,
    );
    await kz.kill('SIGKILL');
    // Not waited up: that waits for every host, and h2 is off.
    await kz.restart({ wait: false });
    await waitFor('the HA VMs seen running on h1', () => allOn('h1')().catch(() => false), 300_000, 250);
    for (const v of VMS) expect(qemuCopies(v.name), v.name).toBe(1);
    // The record the killed leader opened is continued by the restarted one, to every reply.
    const f = await failoverOf('h2', t0 - 60_000);
    expect(f.vms.map((v) => [v.vm, v.to, v.status])).toEqual(VMS.map((v) => [v.name, 'h1', 'answering']));
    for (const v of f.vms) expect(v.rtoMs, v.vm).toBeGreaterThan(0);
    // h2 back with its definitions: libvirt itself refuses a second copy while h1 holds the disk.
    labCli(['heal', 'h2', '--lab', String(lab.id)]);
    fenced.delete('h2');
    const second = await virsh(labHost('h2'), ['start', 'ha1']).then(
      () => 'started',
      (e: Error) => e.message,
    );
    // QEMU's own image lock answers first here (virtlockd's lease would refuse it too; docs/lab.md).
    expect(second).toMatch(/another process using the image|lock/i);
    expect(qemuCopies('ha1')).toBe(1);
  }, 480_000);
});
