import { describe, expect, it } from 'vitest';
import type { DrsMode } from '../../../src/config/index.ts';
import type { BurstAllowance } from '../../../src/core/limits.ts';
import type { ClusterSnapshot } from '../../../src/core/model.ts';
import type { Decision } from '../../../src/core/plan.ts';
import { JobConflict } from '../../../src/jobs/queue.ts';
import { DrsLoop } from '../../../src/loops/drs.ts';
import { createMetrics } from '../../../src/metrics/registry.ts';
import { host, placement, snap, vm } from '../core/planners/fixture.ts';

// h1 (2 CPUs) runs three 1-vCPU VMs; h2 (2 CPUs) is idle. From BURST_AT `hot` and `warm`
// use a whole vCPU each: h1 then asks for 2.1 of its 2 CPUs. The inventory samples each second.

const STEP = 1_000;
const BURST_AT = 30_000;

function cluster(t: number, where: Map<string, string>, load: (vm: string, t: number) => number) {
  const vms = [...where].map(([n, h]) => vm(n, h, 96, { cpuUsage: load(n, t) }));
  const hosts = ['h1', 'h2'].map((h) =>
    host(h, 'dc1', 4096, {
      cpus: 2,
      observedAt: t,
      vms: vms.filter((v) => v.host === h).map((v) => v.name),
    }),
  );
  return { ...snap(hosts, vms), takenAt: t } satisfies ClusterSnapshot;
}

const burst = (n: string, t: number) => (t >= BURST_AT && (n === 'hot' || n === 'warm') ? 1 : 0.05);

interface Fake {
  submitted: { d: Decision; reason: string | undefined }[];
  holders: Set<string>;
  conflict: boolean;
}

function setup(
  mode: (vm: string) => DrsMode,
  o: {
    tierAllows?: (vm: string) => boolean;
    landAfterMs?: number;
    load?: (vm: string, t: number) => number;
    burstAllowanceOf?: (vm: string) => BurstAllowance | null;
  } = {},
) {
  const where = new Map([
    ['hot', 'h1'],
    ['warm', 'h1'],
    ['calm', 'h1'],
  ]);
  let t = 0;
  const fake: Fake = { submitted: [], holders: new Set(), conflict: false };
  const metrics = createMetrics();
  let n = 0;
  const loop = new DrsLoop({
    snapshot: () => cluster(t, where, o.load ?? burst),
    jobs: {
      holderOf: async (v) => (fake.holders.has(v) ? ({ id: 'mig-x' } as never) : null),
      submit: async (d, so) => {
        if (fake.conflict) throw new JobConflict('held', [{ vm: d.vms[0]!, job: 'mig-x', state: 'active' }]);
        fake.submitted.push({ d, reason: so?.reason });
        return { decision: { ...d, jobs: [] }, jobs: [] };
      },
    },
    placement,
    modeOf: mode,
    anyEnabled: () => true,
    tierAllows: o.tierAllows ?? (() => true),
    aggressiveness: 4,
    planIntervalMs: 30_000,
    sampleIntervalMs: STEP,
    metrics,
    log: { info() {}, warn() {} },
    newId: () => `dec-${++n}`,
    ...(o.burstAllowanceOf ? { burstAllowanceOf: o.burstAllowanceOf } : {}),
    // The raise the executor would have recorded for each raise submitted.
    raiseOf: async (v) => {
      const a = fake.submitted
        .flatMap((x) => x.d.actions.map((a) => ({ a, at: x.d.at })))
        .filter((x) => x.a.kind === 'raise-cpu-cap' && x.a.vm === v)
        .at(-1);
      return a && a.a.kind === 'raise-cpu-cap'
        ? { quotaPercent: a.a.quotaPercent, until: a.at + a.a.holdMs }
        : null;
    },
  });
  /** Moves in flight: their job holds the VM, which shows on its source until it lands. */
  const flying: { vm: string; to: string; landsAt: number }[] = [];
  /** Passes every second up to `until`; a submitted move lands after landAfterMs (at once by default). */
  const runUntil = async (until: number) => {
    for (; t <= until; t += STEP) {
      for (const f of flying.splice(0)) {
        if (f.landsAt > t) flying.push(f);
        else {
          where.set(f.vm, f.to);
          fake.holders.delete(f.vm);
        }
      }
      const before = fake.submitted.length;
      await loop.pass(t);
      for (const s of fake.submitted.slice(before))
        for (const a of s.d.actions)
          if (a.kind === 'migrate' && !o.landAfterMs) where.set(a.vm, a.to);
          else if (a.kind === 'migrate') {
            flying.push({ vm: a.vm, to: a.to, landsAt: t + o.landAfterMs! });
            fake.holders.add(a.vm);
          }
    }
  };
  return { loop, fake, metrics, where, runUntil, now: () => t };
}

describe('DrsLoop burst protection', () => {
  // `hot` is capped at 50 % of a CPU with an allowance of 90 %; from BURST_AT it is held at its cap.
  const allowance: BurstAllowance = { capPercent: 50, burstPercent: 90, periodUs: 100_000, holdMs: 60_000 };
  const o = {
    load: (n: string, t: number) => (n === 'hot' && t >= BURST_AT ? 0.5 : 0.05),
    burstAllowanceOf: (n: string) => (n === 'hot' ? allowance : null),
  };

  it('automatic: raises the cap of the VM bursting against it as a drs decision, once per hold, and moves nothing', async () => {
    const s = setup(() => 'automatic', o);
    await s.runUntil(BURST_AT + 20_000);
    expect(s.fake.submitted).toHaveLength(1);
    const { d, reason } = s.fake.submitted[0]!;
    expect(d.planner).toBe('drs');
    expect(d.at - BURST_AT).toBeLessThan(10_000);
    expect(d.actions).toEqual([
      { kind: 'raise-cpu-cap', vm: 'hot', host: 'h1', quotaPercent: 90, periodUs: 100_000, holdMs: 60_000 },
    ]);
    expect(d.reason).toMatch(
      /^burst protection: hot bursts against its cap of 50 % per vCPU; h1 has .* instead of moving it$/,
    );
    expect(reason).toBe('drs:burst:h1');
    // Still at its cap: renewed in the second half of the hold.
    await s.runUntil(BURST_AT + 80_000);
    expect(s.fake.submitted.map((x) => x.d.actions[0]!.kind)).toEqual(['raise-cpu-cap', 'raise-cpu-cap']);
    const metrics = await s.metrics.registry.getSingleMetricAsString('keizoku_drs_cap_raises_total');
    expect(metrics).toContain('keizoku_drs_cap_raises_total{outcome="submitted",kind="raise"} 1');
    expect(metrics).toContain('keizoku_drs_cap_raises_total{outcome="submitted",kind="renewal"} 1');
    expect(s.where.get('hot')).toBe('h1');
  });

  it('manual: no raise (an operator applies moves only)', async () => {
    const s = setup(() => 'manual', o);
    await s.runUntil(BURST_AT + 20_000);
    expect(s.fake.submitted).toEqual([]);
  });
});

describe('DrsLoop', () => {
  it('automatic: moves one bursting VM off the hot host within seconds, as a drs decision with its reason', async () => {
    const s = setup(() => 'automatic');
    await s.runUntil(BURST_AT - STEP);
    expect(s.fake.submitted).toEqual([]);
    await s.runUntil(BURST_AT + 20_000);
    expect(s.fake.submitted).toHaveLength(1);
    const { d, reason } = s.fake.submitted[0]!;
    // Planned at the sample that showed enough demand, not at the next 30 s plan.
    expect(d.at - BURST_AT).toBeLessThan(15_000);
    expect(d.planner).toBe('drs');
    expect(d.vms).toHaveLength(1);
    expect(['hot', 'warm']).toContain(d.vms[0]);
    expect(d.actions).toEqual([{ kind: 'migrate', vm: d.vms[0], from: 'h1', to: 'h2', copyStorage: 'auto' }]);
    expect(d.reason).toMatch(/^rebalance: h1 at \d+ % of its CPUs .* to h2 removes/);
    expect(d.candidates[d.vms[0]!]?.some((c) => c.host === 'h2' && c.feasible)).toBe(true);
    expect(reason).toBe('drs:h1');
    const metrics = await s.metrics.registry.getSingleMetricAsString('keizoku_drs_moves_total');
    expect(metrics).toContain('keizoku_drs_moves_total{outcome="submitted",mode="automatic"} 1');
  });

  it('automatic: plans nothing more while its move is in flight (the moving VM still shows on the source)', async () => {
    // hot and warm both burst; one move relieves h1. The move takes 20 s to land.
    const s = setup(() => 'automatic', { landAfterMs: 20_000 });
    await s.runUntil(BURST_AT + 120_000);
    expect(s.fake.submitted).toHaveLength(1);
    const moved = s.fake.submitted[0]!.d.vms[0]!;
    expect(s.where.get(moved)).toBe('h2');
    expect([...s.where].filter(([, h]) => h === 'h1')).toHaveLength(2);
  });

  it('automatic: the moved VM is not moved again within the minimum interval (no ping-pong)', async () => {
    const s = setup(() => 'automatic');
    await s.runUntil(BURST_AT + 600_000);
    const moved = s.fake.submitted.map((x) => x.d.vms[0]);
    expect(moved.length).toBeGreaterThan(0);
    expect(new Set(moved).size).toBe(moved.length);
  });

  it('manual: keeps the move as a recommendation with a stable id and submits nothing until applied', async () => {
    const s = setup(() => 'manual');
    await s.runUntil(BURST_AT + 20_000);
    expect(s.fake.submitted).toEqual([]);
    const recs = s.loop.recommendations();
    expect(recs).toHaveLength(1);
    const rec = recs[0]!;
    expect(rec.from).toBe('h1');
    expect(rec.to).toBe('h2');
    expect(rec.reason).toMatch(/^rebalance: h1 at/);
    expect(rec.score.gainVcpus).toBeGreaterThanOrEqual(rec.score.thresholdVcpus);
    // Later passes plan the same move: same id.
    await s.runUntil(BURST_AT + 40_000);
    expect(s.loop.recommendations().map((r) => r.id)).toEqual([rec.id]);
    expect(await s.metrics.registry.getSingleMetricAsString('keizoku_drs_recommendations')).toMatch(/ 1$/m);

    const op = { id: 'tok-1', name: 'ops' };
    const applied = await s.loop.apply(rec.id, op);
    expect(applied).not.toBeNull();
    expect(s.fake.submitted).toHaveLength(1);
    const { d, reason } = s.fake.submitted[0]!;
    expect(d.planner).toBe('drs');
    expect(d.requestedBy).toEqual(op);
    expect(d.ref).toBe(`drs:recommendation:${rec.id}`);
    expect(d.actions).toEqual([{ kind: 'migrate', vm: rec.vm, from: 'h1', to: 'h2', copyStorage: 'auto' }]);
    expect(reason).toBe('drs:h1');
    expect(s.loop.recommendation(rec.id)).toBeNull();
    expect(await s.loop.apply('rec-nope', op)).toBeNull();
  });

  it('off, or a tier without drs: never moved nor recommended; explain says why', async () => {
    const s = setup((v) => (v === 'hot' ? 'off' : 'manual'), { tierAllows: (v) => v !== 'warm' });
    await s.runUntil(BURST_AT + 30_000);
    expect(s.fake.submitted).toEqual([]);
    expect(s.loop.recommendations()).toEqual([]);
    const e = s.loop.explain('warm', s.now());
    expect(e?.mode).toBe('off');
    expect(e?.explanation?.verdict).toBe('not-eligible');
    expect(e?.explanation?.reasons.join(' ')).toMatch(/does not have the drs mechanism/);
    expect(e?.hosts.map((h) => h.host)).toContain('h2');
    expect(s.loop.explain('nope', s.now())).toBeNull();
  });

  it('automatic: a VM held by a job is left for a later pass; a conflict on submit makes the pass partial', async () => {
    const s = setup(() => 'automatic');
    s.fake.holders = new Set(['hot', 'warm']);
    await s.runUntil(BURST_AT + 20_000);
    expect(s.fake.submitted).toEqual([]);
    s.fake.holders.clear();
    s.fake.conflict = true;
    expect(await s.loop.pass(s.now())).toEqual({ result: 'partial' });
    const metrics = await s.metrics.registry.getSingleMetricAsString('keizoku_drs_moves_total');
    expect(metrics).toContain('keizoku_drs_moves_total{outcome="conflict",mode="automatic"} 1');
  });
});
