import type { Mechanism } from '../../config/index.ts';
import type { FailoverRecord } from '../../core/ha/timeline.ts';
import { judgeMove, type MoveVerdict, type Tier, type Tiers, type TimeWindow } from '../../core/tiers.ts';

/**
 * The report of one drill: what moved, what the independent probe saw during each move, and
 * the verdict of each move against the outage objective of the VM's tier. Pure data and pure
 * functions; the renderers turn it into Markdown, JSON and a self-contained HTML page.
 */

export type DrillScenario = 'live-migration' | 'host-failure' | 'burst' | 'site-migration';
export const DRILL_SCENARIOS: readonly DrillScenario[] = [
  'live-migration',
  'host-failure',
  'burst',
  'site-migration',
];

/** What the probe measured over one move (definitions in docs/probe.md). */
export interface ProbeFigures {
  /** Send slots: 実施回数. */
  sent: number;
  /** Slots no address answered: 失敗回数. */
  lost: number;
  /** lost / sent: 失敗率 (0..1). */
  lossRate: number;
  /** RTT over the replies; null when none came back. */
  rttMinMs: number | null;
  rttMaxMs: number | null;
  rttAvgMs: number | null;
  /** The longest outage (通信断), 0 when there was none, and when it ran. */
  outageMs: number;
  outageStartMs: number | null;
  outageEndMs: number | null;
}

export interface DrillMove {
  /** 1-based, in the order the moves started. */
  index: number;
  vm: string;
  mechanism: Mechanism;
  /** Source and destination host. */
  from: string;
  to: string;
  startedMs: number;
  endedMs: number;
  totalMs: number;
  /** The guest's pause as libvirt reported it (live migrations only). */
  libvirtDowntimeMs: number | null;
  probe: ProbeFigures | null;
  /** Whether a TCP session held open to the guest survived the move; null when not checked. */
  sessionSurvived: boolean | null;
  /** Why the session was not checked, when the move's policy asked for one. */
  sessionUnchecked?: string;
  verdict: MoveVerdict;
}

/** One probe in the timeline: when it was sent and its RTT, null when it was lost. */
export interface RttPoint {
  tMs: number;
  rttMs: number | null;
}

/** The studies' table, one row per mechanism, over all moves of that mechanism. */
export interface MechanismSummary {
  mechanism: Mechanism;
  moves: number;
  /** Moves with probe figures; the columns below are over those. */
  measured: number;
  /** 実施回数, 失敗回数 summed; 失敗率 = lost / sent (null without pings). */
  sent: number;
  lost: number;
  lossRate: number | null;
  rttMinMs: number | null;
  rttMaxMs: number | null;
  /** Mean of the moves' averages weighted by the pings answered. */
  rttAvgMs: number | null;
  /** 通信断: the longest, and the 95th percentile (nearest rank) over the moves. */
  outageMaxMs: number | null;
  outageP95Ms: number | null;
  libvirtDowntimeMaxMs: number | null;
  /** maxOutageMs of the moves' tier for this mechanism (null when none, or tiers differ). */
  objectiveMs: number | null;
  pass: number;
  fail: number;
  /** Moves not judged: no objective for the mechanism, or no measurement. */
  notJudged: number;
  sessionsChecked: number;
  sessionsSurvived: number;
}

export interface DrillOverall {
  status: 'pass' | 'fail';
  moves: number;
  pass: number;
  fail: number;
  notJudged: number;
  reason: string;
}

export interface DrillSummary {
  mechanisms: MechanismSummary[];
  overall: DrillOverall;
}

export interface DrillTierInfo {
  id: string;
  label: string;
  labelJa: string;
}

export interface DrillReport {
  id: string;
  scenario: DrillScenario;
  startedAt: number;
  endedAt: number;
  vms: string[];
  tier: DrillTierInfo;
  /** What the drill was run with (interval, WAN rate, target hosts, …). */
  parameters: Record<string, string | number | boolean | null>;
  moves: DrillMove[];
  /** Every probe of the drill, for the timeline; lost probes have rttMs null. */
  rtt: RttPoint[];
  /** Outage windows seen by the probe over the whole drill. */
  outages: TimeWindow[];
  /** A host-failure drill: the failover of the fenced host, every VM it restarted (absent otherwise). */
  failover?: DrillFailover | null;
  summary: DrillSummary;
}

/** The failover a host-failure drill caused, from its failover record (core/ha/timeline.ts). */
export interface DrillFailover {
  id: string;
  host: string;
  status: 'open' | 'done' | 'incomplete';
  /** What the RTOs count from: the host's last successful read or ICMP reply, or first seen not up. */
  failureAt: number;
  failureBasis: 'last-seen-up' | 'first-failed-evidence';
  vms: {
    vm: string;
    tier: string | null;
    priority: number | null;
    to: string | null;
    status: string;
    answeringAt: number | null;
    rtoMs: number | null;
    /** The probe's outage (通信断) of that VM. */
    outageMs: number | null;
  }[];
}

/** 95th percentile by nearest rank: the smallest value with at least 95 % of values at or below it. */
export function p95(values: readonly number[]): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil(0.95 * sorted.length) - 1)]!;
}

const maxOf = (v: readonly number[]): number | null => (v.length ? Math.max(...v) : null);
const minOf = (v: readonly number[]): number | null => (v.length ? Math.min(...v) : null);
const fmt = (v: number): string => `${Math.round(v).toLocaleString('en-US')} ms`;

function tierOf(tiers: Tiers, id: string): Tier | undefined {
  return tiers.tiers.find((t) => t.id === id);
}

/**
 * The per-mechanism table and the overall verdict. Mechanisms appear in the order of their
 * first move. The drill passes when it has moves and every move passed; a move with no
 * objective or no measurement is not a pass.
 */
export function summarize(moves: readonly DrillMove[], tiers: Tiers): DrillSummary {
  const order: Mechanism[] = [];
  for (const m of moves) if (!order.includes(m.mechanism)) order.push(m.mechanism);
  const mechanisms = order.map((mechanism): MechanismSummary => {
    const mine = moves.filter((m) => m.mechanism === mechanism);
    const probes = mine.flatMap((m) => (m.probe ? [m.probe] : []));
    const sent = probes.reduce((s, p) => s + p.sent, 0);
    const lost = probes.reduce((s, p) => s + p.lost, 0);
    let weighted = 0;
    let answered = 0;
    for (const p of probes) {
      if (p.rttAvgMs === null) continue;
      const n = Math.max(0, p.sent - p.lost);
      weighted += p.rttAvgMs * n;
      answered += n;
    }
    const limits = new Set(
      mine.map((m) => tierOf(tiers, m.verdict.tier)?.objectives.maxOutageMs[mechanism] ?? null),
    );
    const outages = probes.map((p) => p.outageMs);
    const sessions = mine.filter((m) => m.sessionSurvived !== null);
    return {
      mechanism,
      moves: mine.length,
      measured: probes.length,
      sent,
      lost,
      lossRate: sent > 0 ? lost / sent : null,
      rttMinMs: minOf(probes.flatMap((p) => (p.rttMinMs === null ? [] : [p.rttMinMs]))),
      rttMaxMs: maxOf(probes.flatMap((p) => (p.rttMaxMs === null ? [] : [p.rttMaxMs]))),
      rttAvgMs: answered > 0 ? weighted / answered : null,
      outageMaxMs: maxOf(outages),
      outageP95Ms: p95(outages),
      libvirtDowntimeMaxMs: maxOf(
        mine.flatMap((m) => (m.libvirtDowntimeMs === null ? [] : [m.libvirtDowntimeMs])),
      ),
      objectiveMs: limits.size === 1 ? [...limits][0]! : null,
      pass: mine.filter((m) => m.verdict.status === 'pass').length,
      fail: mine.filter((m) => m.verdict.status === 'fail').length,
      notJudged: mine.filter((m) => m.verdict.status === 'no-objective' || m.verdict.status === 'unmeasured')
        .length,
      sessionsChecked: sessions.length,
      sessionsSurvived: sessions.filter((m) => m.sessionSurvived).length,
    };
  });
  const pass = moves.filter((m) => m.verdict.status === 'pass').length;
  const failed = moves.filter((m) => m.verdict.status === 'fail');
  const unjudged = moves.filter((m) => m.verdict.status !== 'pass' && m.verdict.status !== 'fail');
  const ok = moves.length > 0 && pass === moves.length;
  const parts: string[] = [];
  if (moves.length === 0) parts.push('The drill made no moves, so there is nothing to judge.');
  else if (ok)
    parts.push(
      moves.length === 1
        ? "The move stayed within its tier's outage objective."
        : `All ${moves.length} moves stayed within their tier's outage objectives.`,
    );
  if (failed.length > 0)
    parts.push(
      `${failed.length} of ${moves.length} moves exceeded the objective: ${failed
        .map(
          (m) =>
            `#${m.index} (${m.mechanism}, outage ${fmt(m.verdict.outageMs ?? 0)} over ${fmt(m.verdict.limitMs ?? 0)})`,
        )
        .join(', ')}.`,
    );
  if (unjudged.length > 0)
    parts.push(
      `${unjudged.length} of ${moves.length} moves could not be judged: ${unjudged
        .map(
          (m) =>
            `#${m.index} (${m.verdict.status === 'no-objective' ? `no objective for ${m.mechanism}` : 'not measured'})`,
        )
        .join(', ')}.`,
    );
  return {
    mechanisms,
    overall: {
      status: ok ? 'pass' : 'fail',
      moves: moves.length,
      pass,
      fail: failed.length,
      notJudged: unjudged.length,
      reason: parts.join(' '),
    },
  };
}

/** The report's view of a failover record: every VM it restarted, in priority order. */
export function drillFailover(r: FailoverRecord): DrillFailover {
  return {
    id: r.id,
    host: r.host,
    status: r.status,
    failureAt: r.failureAt,
    failureBasis: r.failureBasis,
    vms: r.vms
      .filter((v) => v.status !== 'skipped')
      .sort((a, b) => (b.priority ?? 0) - (a.priority ?? 0) || a.vm.localeCompare(b.vm))
      .map((v) => ({
        vm: v.vm,
        tier: v.tier,
        priority: v.priority,
        to: v.to,
        status: v.status,
        answeringAt: v.answeringAt,
        rtoMs: v.rtoMs,
        outageMs: v.probe?.outageMs ?? null,
      })),
  };
}

/** A move as a drill records it, before it is judged. */
export type DrillMoveInput = Omit<DrillMove, 'verdict' | 'totalMs'> & { totalMs?: number };

export interface DrillReportInput extends Omit<DrillReport, 'moves' | 'summary' | 'tier'> {
  /** The tier the drill judges against (its id in the tiers policy). */
  tier: string;
  moves: readonly DrillMoveInput[];
}

/**
 * Judges each move against the tier's objective for its mechanism (the probe's outage) and
 * summarises. Throws when the tier is not in the policy: a drill is judged against a tier.
 */
export function buildReport(input: DrillReportInput, tiers: Tiers): DrillReport {
  const tier = tierOf(tiers, input.tier);
  if (!tier) throw new Error(`tier "${input.tier}" is not defined in the tiers policy`);
  const moves: DrillMove[] = input.moves.map((m) => {
    const totalMs = m.totalMs ?? m.endedMs - m.startedMs;
    return {
      ...m,
      totalMs,
      verdict: judgeMove({ tier, mechanism: m.mechanism, outageMs: m.probe?.outageMs ?? null, totalMs }),
    };
  });
  return {
    ...input,
    tier: { id: tier.id, label: tier.label, labelJa: tier.labelJa },
    moves,
    summary: summarize(moves, tiers),
  };
}
