import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createVm, type LabState, readState } from '../../lab/index.ts';
import { type RunningKeizokud, startKeizokud } from '../support/keizokud.ts';
import { sharedLab } from '../support/lab-fixture.ts';
import { measureLagMs } from '../support/lag.ts';
import { qemuCopies } from '../support/qemu.ts';
import { type SentinelGroup, startSentinelGroup } from '../support/redis.ts';
import { evacuateAcrossRedisFailover } from '../support/redis-failover.ts';
import { waitInventory, waitJobEnd, whereIs } from '../support/vm-jobs.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const VMS = ['cp1', 'cp2', 'cp3', 'cp4'];
const LEASE = { leaseMs: 3_000, renewMs: 1_000 };
// One move at a time off a host: the evacuation has a middle to kill Redis in.
const CONFIG = { leader: LEASE, migration: { perHostConcurrency: 1, progressIntervalMs: 200 } };

/**
 * Control plane HA on a real Redis primary, replica and three sentinels, with keizokud's
 * connections through `redis.sentinels`: the primary killed in the middle of an evacuation,
 * then the leader of three keizokud replicas killed in the middle of a move.
 */
describe('control plane HA: Redis Sentinel and three keizokud replicas', () => {
  let lab: LabState;
  let group: SentinelGroup;
  const replicas: RunningKeizokud[] = [];
  let admin: string;

  const leaderOf = async (kz: RunningKeizokud) => {
    const t = await fetch(kz.metricsUrl).then(
      (r) => r.text(),
      () => null,
    );
    const m = t?.match(/^keizoku_leader (\d+)$/m);
    const token = t?.match(/^keizoku_leader_fencing_token (\d+)$/m);
    return m ? { leader: Number(m[1]) === 1, token: Number(token?.[1] ?? 0) } : null;
  };

  beforeAll(async () => {
    lab = sharedLab();
    const [g] = await Promise.all([
      startSentinelGroup(),
      ...VMS.map((name) => createVm(lab.id, { name, host: 'h1' })),
    ]);
    group = g;
    lab = readState(lab.id)!;
    replicas.push(await startKeizokud(lab, group.target, CONFIG));
    admin = await replicas[0]!.token('admin');
    for (const vm of VMS) await waitInventory(replicas[0]!, admin, vm, 'h1');
  }, 300_000);

  afterAll(async () => {
    for (const kz of replicas) await kz.stop().catch(() => undefined);
    await group?.stop();
  });

  it('kill -9 of the Redis primary in the middle of an evacuation: the replica is promoted, the evacuation completes, no job lost, one copy of each VM', async () => {
    const kz = replicas[0]!;
    const onH1 = (await whereIs(lab, VMS[0]!)).running;
    expect(onH1).toEqual(['h1']);
    const run = await evacuateAcrossRedisFailover({ kz, token: admin, group, host: 'h1', vms: VMS });
    console.log(
      `redis failover: promotion ${run.promotionMs} ms, kill to next evacuation progress ${run.failoverToProgressMs} ms ` +
        `(down-after ${group.downAfterMs} ms; ${run.finishedAtKill} of ${run.moves.length} moves done at the kill; ${run.failedReads} failed reads)`,
    );
    // The sentinels promoted the replica; keizokud followed it without a restart.
    expect(run.promotedPort).toBe(group.nodes[1]!.port);
    expect(run.killedPort).toBe(group.nodes[0]!.port);
    expect(kz.alive()).toBe(true);
    // Every move of the evacuation (the shared lab's other VMs on h1 too) ended succeeded.
    expect(
      run.moves.map((m) => [m.vm, m.state]),
      JSON.stringify(run.moves.map((m) => m.result?.reason)),
    ).toEqual(run.moves.map((m) => [m.vm, 'succeeded']));
    expect(run.moves.map((m) => m.vm)).toEqual(expect.arrayContaining(VMS));
    expect(run.parent.state, JSON.stringify(run.parent.result)).toBe('succeeded');
    expect([...run.parent.result.moved].sort()).toEqual(run.moves.map((m) => m.vm).sort());
    // No job lost: the promoted Redis lists every one of them.
    const listed = (await kz.request('GET', '/v1/jobs?limit=500', admin)).body.jobs.map(
      (j: { id: string }) => j.id,
    );
    expect(listed).toEqual(expect.arrayContaining([run.parent.id, ...run.moves.map((m) => m.id)]));
    // One VM, one host: one QEMU process each (two only while a live move hands over).
    for (const vm of VMS) {
      expect(await whereIs(lab, vm), vm).toEqual({ running: ['h2'], defined: ['h2'] });
      expect(qemuCopies(vm), vm).toBe(1);
      expect(run.maxQemuCopies[vm], vm).toBeLessThanOrEqual(2);
    }
    expect(kz.output()).not.toMatch(/VM active on more than one host/);
    // Progress after the kill needed the promotion first: bounded below by the sentinels' own
    // detection (down-after), not a fixed figure.
    expect(run.failoverToProgressMs).toBeGreaterThanOrEqual(group.downAfterMs);
    const exit = await kz.request('POST', '/v1/hosts/h1/maintenance', admin, { action: 'exit' });
    expect(exit.status, JSON.stringify(exit.body)).toBe(202);
  });

  it('kill -9 of the leader of three replicas during its move: a new leader within lease + renew + 1 s, the move is reconciled', async () => {
    const first = replicas[0]!;
    // A slow move that only the first replica can have picked up (it is alone now)...
    const r = await first.request('POST', '/v1/vms/cp1/migrate', admin, {
      to: 'h1',
      policy: { autoConverge: false, postCopyAfterIterations: 0, bandwidthMiBs: 1, timeoutMs: 120_000 },
    });
    expect(r.status, JSON.stringify(r.body)).toBe(202);
    const moveId: string = r.body.id;
    for (let i = 0; i < 200; i++) {
      const j = await first.request('GET', `/v1/jobs/${moveId}`, admin);
      if (j.body.state === 'active' && j.body.progress?.dataProcessedBytes > 0) break;
      await sleep(100);
    }
    // ...then two more replicas on the same Redis, booted together.
    replicas.push(
      ...(await Promise.all([
        startKeizokud(lab, group.target, CONFIG),
        startKeizokud(lab, group.target, CONFIG),
      ])),
    );
    const others = replicas.slice(1);
    const before = await Promise.all(replicas.map(leaderOf));
    expect(before.map((l) => l?.leader)).toEqual([true, false, false]);
    const move = (await first.request('GET', `/v1/jobs/${moveId}`, admin)).body;
    expect(move.state, 'the move ended before the leader could be killed during it').toBe('active');
    // A lease step of the standbys as this run sees it (timer, then a metrics scrape).
    const lagMs = await measureLagMs(100, () => leaderOf(others[0]!));

    const killedAt = performance.now();
    await first.kill('SIGKILL');
    let leader: { kz: RunningKeizokud; token: number } | null = null;
    while (!leader && performance.now() - killedAt < 20_000) {
      for (const kz of others) {
        const l = await leaderOf(kz);
        if (l?.leader) leader = { kz, token: l.token };
      }
      if (!leader) await sleep(50);
    }
    const takeoverMs = Math.round(performance.now() - killedAt);
    console.log(
      `leader takeover after kill -9: ${takeoverMs} ms (lease ${LEASE.leaseMs} ms, renew ${LEASE.renewMs} ms, lag ${lagMs} ms)`,
    );
    expect(leader, 'no replica took the lease').not.toBeNull();
    expect(leader!.token).toBeGreaterThan(before[0]!.token);
    // Not while the dead leader's lease was valid (it renewed at most renewMs before the kill),
    // and within lease + renew + 1 s plus this run's lag.
    expect(takeoverMs).toBeGreaterThan(LEASE.leaseMs - LEASE.renewMs - lagMs);
    expect(takeoverMs, `lag ${lagMs} ms`).toBeLessThan(LEASE.leaseMs + LEASE.renewMs + 1_000 + lagMs);
    const leaders = (await Promise.all(others.map(leaderOf))).filter((l) => l?.leader);
    expect(leaders).toHaveLength(1);

    // The dead replica's move: another replica's worker takes the stalled job and reconciles
    // it with what libvirt did; the VM runs on one host, where the job says.
    const ended = await waitJobEnd(leader!.kz, admin, moveId, 180_000);
    console.log(`the dead leader's move ended ${ended.state}: ${ended.result?.reason ?? ''}`);
    expect(ended.result.reconciled, JSON.stringify(ended.result)).toBe(true);
    expect(['succeeded', 'failed', 'aborted']).toContain(ended.state);
    const placed = await whereIs(lab, 'cp1');
    expect(placed.running).toHaveLength(1);
    expect(ended.result.host).toBe(placed.running[0]);
    expect(ended.state === 'succeeded').toBe(placed.running[0] === 'h1');
    expect(qemuCopies('cp1')).toBe(1);
  });
});
