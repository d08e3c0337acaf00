import type { HaEvent, HaState } from './machine.ts';

/**
 * The failover record of one host failure: from the first evidence through the declaration,
 * the fence, and per HA VM its placement, restart job and the probe's first reply. Pure: the
 * leader's ha loop folds into it what each step of the state machine changed (the previous
 * and next machine state, the step's events, the restart results it was given), what it
 * submitted, what the restart jobs report and what the probe measured; nothing here reads a
 * clock, Redis or a probe.
 *
 * RTO per VM = the probe's first reply after the restart minus the failure: the last time the
 * host was seen healthy (its last successful libvirt read or ICMP reply, `last-seen-up`) when known, else the
 * first failed evidence (the failover loop first saw the host not up, `first-failed-evidence`).
 * The failure happened between the two; the first never understates the outage.
 */

export type FailoverEventKind =
  | 'detected'
  | 'declared-down'
  | 'fence-started'
  | 'fence-failed'
  | 'fenced'
  | 'recovering'
  | 'placed'
  | 'refused'
  | 'submitted'
  | 'started'
  | 'running'
  | 'restart-failed'
  | 'answering'
  | 'not-answering'
  | 'recovered'
  | 'back-up'
  | 'note';

export interface FailoverEvent {
  at: number;
  kind: FailoverEventKind;
  vm?: string;
  text: string;
}

/** What the probe saw of one VM across the failover (the outage the failure caused). */
export interface FailoverProbe {
  probe: string;
  /** First lost probe, first reply, and the outage between (通信断). */
  outageStartMs: number;
  outageEndMs: number;
  outageMs: number;
  lost: number;
}

export interface FailoverVm {
  vm: string;
  tier: string | null;
  priority: number | null;
  from: string;
  /** restarting: placed or waiting for a place; answering: the probe saw it reply; skipped:
   *  not restarted by this failover (already running elsewhere, or handed to VM-level HA). */
  status: 'waiting' | 'restarting' | 'running' | 'answering' | 'not-answering' | 'skipped';
  /** The current (last) placement. */
  to: string | null;
  placedAt: number | null;
  decision: string | null;
  reason: string | null;
  job: string | null;
  submittedAt: number | null;
  /** When the restart job began (libvirt asked to define and start) and ended. */
  startedAt: number | null;
  endedAt: number | null;
  /** When the VM was running on `to` (the job's end, or seen running). */
  runningAt: number | null;
  /** Placements that failed before this one. */
  failed: { to: string; job: string | null; error: string }[];
  answeringAt: number | null;
  rtoMs: number | null;
  probe: FailoverProbe | null;
  note: string | null;
}

export interface FailoverFence {
  method: string;
  attempts: number;
  startedAt: number | null;
  confirmedAt: number | null;
  /** What confirmed the power off, in the method's words. */
  evidence: string | null;
  /** Who recorded the fence when the failover did not run it (`drill:ID`, `operator`). */
  ref: string | null;
  errors: string[];
}

export interface FailoverRecord {
  id: string;
  host: string;
  /** open: recovering or measuring; done: every VM restarted answered the probe;
   *  incomplete: some did not, or the host came back before it was fenced. */
  status: 'open' | 'done' | 'incomplete';
  failureAt: number;
  failureBasis: 'last-seen-up' | 'first-failed-evidence';
  lastSeenUpAt: number | null;
  detectedAt: number;
  declaredDownAt: number | null;
  declaredEvidence: string | null;
  fence: FailoverFence;
  recoveringAt: number | null;
  /** Every VM placed and running (the host's recovery done). */
  recoveredAt: number | null;
  endedAt: number | null;
  reason: string | null;
  vms: FailoverVm[];
  events: FailoverEvent[];
}

export interface TimelineConfig {
  /** How long after a VM runs the record waits for the probe's first reply. */
  answerWaitMs: number;
  /** Events kept per record (the newest are dropped past it, a note says so). */
  maxEvents: number;
}

export const DEFAULT_TIMELINE_CONFIG: Readonly<TimelineConfig> = { answerWaitMs: 300_000, maxEvents: 300 };

/** What the loop knows of a host and its VMs at a step (read from the snapshot and books). */
export interface TimelineContext {
  /** The host's last successful read (null: unknown). */
  lastSeenUpAt(host: string): number | null;
  fenceMethod(host: string): string;
  /** The confirmed fence on record for the host (its method's evidence, who asked). */
  fenceRecord(host: string): { method: string; at: number; evidence: string; ref: string } | null;
  vmInfo(vm: string): { tier: string | null; priority: number | null };
}

export interface StepChange {
  prev: HaState;
  next: HaState;
  events: readonly HaEvent[];
  restartResults: readonly { vm: string; host: string; ok: boolean; error?: string }[];
}

const ACTIVE_PHASES = new Set(['declared-down', 'fencing', 'fenced', 'recovering', 'done']);

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

function push(r: FailoverRecord, e: FailoverEvent, cfg: TimelineConfig): void {
  if (r.events.length < cfg.maxEvents) r.events.push(e);
  else if (r.events.length === cfg.maxEvents)
    r.events.push({ at: e.at, kind: 'note', text: `more than ${cfg.maxEvents} events: the rest not kept` });
}

/** A placement's fields before its job is submitted. */
const UNPLACED = {
  decision: null,
  reason: null,
  job: null,
  submittedAt: null,
  startedAt: null,
  endedAt: null,
  runningAt: null,
} as const;

function newVm(r: FailoverRecord, vm: string, ctx: TimelineContext): FailoverVm {
  const info = ctx.vmInfo(vm);
  return {
    vm,
    tier: info.tier,
    priority: info.priority,
    from: r.host,
    status: 'waiting',
    ...UNPLACED,
    to: null,
    placedAt: null,
    failed: [],
    answeringAt: null,
    rtoMs: null,
    probe: null,
    note: null,
  };
}

function openRecord(host: string, detectedAt: number, ctx: TimelineContext, cfg: TimelineConfig) {
  const seen = ctx.lastSeenUpAt(host);
  const lastSeenUpAt = seen !== null && seen <= detectedAt ? seen : null;
  const r: FailoverRecord = {
    id: `fo-${host}-${detectedAt}`,
    host,
    status: 'open',
    failureAt: lastSeenUpAt ?? detectedAt,
    failureBasis: lastSeenUpAt !== null ? 'last-seen-up' : 'first-failed-evidence',
    lastSeenUpAt,
    detectedAt,
    declaredDownAt: null,
    declaredEvidence: null,
    fence: {
      method: ctx.fenceMethod(host),
      attempts: 0,
      startedAt: null,
      confirmedAt: null,
      evidence: null,
      ref: null,
      errors: [],
    },
    recoveringAt: null,
    recoveredAt: null,
    endedAt: null,
    reason: null,
    vms: [],
    events: [],
  };
  push(
    r,
    {
      at: detectedAt,
      kind: 'detected',
      text:
        lastSeenUpAt !== null
          ? `host ${host} seen not up (last seen up ${seconds(detectedAt - lastSeenUpAt)} before)`
          : `host ${host} seen not up`,
    },
    cfg,
  );
  return r;
}

/** Folds one step of the state machine into the open records; returns every record it touched. */
export function applyStep(
  open: readonly FailoverRecord[],
  change: StepChange,
  now: number,
  ctx: TimelineContext,
  cfg: TimelineConfig = DEFAULT_TIMELINE_CONFIG,
): FailoverRecord[] {
  const records = open.map((r) => structuredClone(r));
  for (const host of Object.keys(change.next.hosts).sort()) {
    const p = change.prev.hosts[host];
    const n = change.next.hosts[host]!;
    let r = records.find((x) => x.host === host && x.status === 'open');
    if (!r) {
      if (!ACTIVE_PHASES.has(n.phase) || (p && ACTIVE_PHASES.has(p.phase))) continue;
      r = openRecord(host, p?.phase === 'suspect' ? p.since : now, ctx, cfg);
      records.push(r);
    }
    hostEvents(r, change, now, ctx, cfg);
    vmChanges(r, change, now, ctx, cfg);
  }
  return records;
}

function hostEvents(
  r: FailoverRecord,
  c: StepChange,
  now: number,
  ctx: TimelineContext,
  cfg: TimelineConfig,
) {
  const p = c.prev.hosts[r.host];
  const n = c.next.hosts[r.host]!;
  for (const e of c.events) {
    if (e.host !== r.host) continue;
    if (e.kind === 'fence-failed') {
      r.fence.errors.push(e.text);
      push(r, { at: e.at, kind: 'fence-failed', text: e.text }, cfg);
    }
    if (e.kind !== 'phase') continue;
    if (e.phase === 'declared-down') {
      r.declaredDownAt = e.at;
      r.declaredEvidence = e.text;
      push(r, { at: e.at, kind: 'declared-down', text: e.text }, cfg);
    } else if (e.phase === 'fenced') {
      r.fence.confirmedAt = e.at;
      const rec = ctx.fenceRecord(r.host);
      if (rec && rec.at >= r.failureAt) {
        r.fence.evidence = rec.evidence;
        r.fence.method = rec.method;
        if (!rec.ref.startsWith('failover:')) r.fence.ref = rec.ref;
      }
      push(r, { at: e.at, kind: 'fenced', text: e.text }, cfg);
    } else if (e.phase === 'recovering') {
      r.recoveringAt ??= e.at;
      push(r, { at: e.at, kind: 'recovering', text: e.text }, cfg);
    } else if (e.phase === 'done') {
      r.recoveredAt = e.at;
      push(r, { at: e.at, kind: 'recovered', text: e.text }, cfg);
    } else if (e.phase === 'ok') {
      push(r, { at: e.at, kind: 'back-up', text: e.text }, cfg);
      if (r.fence.confirmedAt === null) {
        r.status = 'incomplete';
        r.endedAt = now;
        r.reason = `host ${r.host} was up again before a fence confirmed it off: nothing was restarted`;
      }
    }
  }
  if (n.fenceStartedAt !== null && n.fenceStartedAt !== (p?.fenceStartedAt ?? null)) {
    r.fence.attempts = n.attempt;
    r.fence.startedAt ??= n.fenceStartedAt;
    push(
      r,
      {
        at: n.fenceStartedAt,
        kind: 'fence-started',
        text:
          r.fence.method === 'none'
            ? `no fence method for ${r.host}: waiting for its disk lock to expire`
            : `fence of ${r.host} started (method ${r.fence.method}, attempt ${n.attempt})`,
      },
      cfg,
    );
  }
}

function vmChanges(r: FailoverRecord, c: StepChange, now: number, ctx: TimelineContext, cfg: TimelineConfig) {
  const p = c.prev.hosts[r.host];
  const n = c.next.hosts[r.host]!;
  const vmOf = (vm: string) => {
    let v = r.vms.find((x) => x.vm === vm);
    if (!v) {
      v = newVm(r, vm, ctx);
      r.vms.push(v);
    }
    return v;
  };
  if (r.recoveringAt !== null) for (const vm of [...n.vms, ...n.pending]) vmOf(vm);
  // Restart results before new placements: a failed one is placed again in the same step.
  for (const res of c.restartResults) {
    if (p?.inFlight[res.vm] !== res.host) continue;
    const v = vmOf(res.vm);
    if (res.ok) {
      v.status = 'running';
      v.runningAt ??= v.endedAt ?? now;
      push(r, { at: v.runningAt, kind: 'running', vm: v.vm, text: `VM ${v.vm} running on ${res.host}` }, cfg);
    } else {
      const error = res.error ?? 'error';
      v.failed.push({ to: res.host, job: v.job, error });
      v.status = 'waiting';
      push(
        r,
        {
          at: now,
          kind: 'restart-failed',
          vm: v.vm,
          text: `restart of VM ${v.vm} on ${res.host} failed: ${error}`,
        },
        cfg,
      );
    }
  }
  for (const [vm, to] of Object.entries(n.inFlight).sort(([a], [b]) => a.localeCompare(b))) {
    if (p?.inFlight[vm] === to) continue;
    const v = vmOf(vm);
    Object.assign(v, { ...UNPLACED, status: 'restarting', to, placedAt: now });
    push(r, { at: now, kind: 'placed', vm, text: `VM ${vm} placed on ${to}` }, cfg);
  }
  for (const e of c.events) {
    if (!e.vm || !r.vms.some((v) => v.vm === e.vm)) continue;
    const v = vmOf(e.vm);
    if (e.kind === 'refused' && e.host === r.host) {
      v.note = e.text;
      push(r, { at: e.at, kind: 'refused', vm: e.vm, text: e.text }, cfg);
    } else if (e.kind === 'restart' && / already runs on /.test(e.text)) {
      Object.assign(v, { status: 'skipped', to: e.host ?? null, note: e.text });
      push(r, { at: e.at, kind: 'note', vm: e.vm, text: e.text }, cfg);
    } else if (e.kind === 'vm' && e.host === r.host && v.status === 'waiting' && r.recoveringAt !== null) {
      // Back up while it waited for a place: VM-level HA restarts it in place.
      Object.assign(v, { status: 'skipped', note: e.text });
      push(r, { at: e.at, kind: 'note', vm: e.vm, text: e.text }, cfg);
    }
  }
}

/** The restart jobs the loop submitted for a decision of the machine. */
export function applySubmitted(
  records: readonly FailoverRecord[],
  jobs: readonly { vm: string; from: string; to: string; job: string }[],
  decision: { id: string; reason: string },
  at: number,
  cfg: TimelineConfig = DEFAULT_TIMELINE_CONFIG,
): FailoverRecord[] {
  return records.map((rec) => {
    const mine = jobs.filter((j) => j.from === rec.host && rec.status === 'open');
    if (mine.length === 0) return rec;
    const r = structuredClone(rec);
    for (const j of mine) {
      const v = r.vms.find((x) => x.vm === j.vm && x.to === j.to && x.job === null);
      if (!v) continue;
      Object.assign(v, { job: j.job, submittedAt: at, decision: decision.id, reason: decision.reason });
      push(
        r,
        { at, kind: 'submitted', vm: v.vm, text: `restart job ${j.job} submitted (decision ${decision.id})` },
        cfg,
      );
    }
    return r;
  });
}

/** A restart job's progress: when it began, when it ended. */
export function applyJob(
  rec: FailoverRecord,
  vm: string,
  job: string,
  times: { startedAt: number | null; endedAt: number | null },
  cfg: TimelineConfig = DEFAULT_TIMELINE_CONFIG,
): FailoverRecord {
  const i = rec.vms.findIndex((x) => x.vm === vm && x.job === job);
  if (i < 0) return rec;
  const r = structuredClone(rec);
  const v = r.vms[i]!;
  if (times.startedAt !== null && v.startedAt === null) {
    v.startedAt = times.startedAt;
    push(r, { at: times.startedAt, kind: 'started', vm, text: `restart job ${job} started on ${v.to}` }, cfg);
  }
  if (times.endedAt !== null && v.endedAt === null) {
    v.endedAt = times.endedAt;
    if (v.runningAt !== null && v.runningAt > times.endedAt) v.runningAt = times.endedAt;
  }
  return r;
}

/**
 * The probe's outages of one VM over the failover: the first closed one that ends after the
 * restart began is the failure's (the VM cannot answer before it runs again); its end is the
 * first reply. Null when none is closed yet.
 */
export function firstReply(
  v: Pick<FailoverVm, 'startedAt' | 'placedAt'>,
  outages: readonly { startMs: number; endMs: number; durationMs: number; lost: number; open: boolean }[],
): { outageStartMs: number; outageEndMs: number; outageMs: number; lost: number } | null {
  const from = v.startedAt ?? v.placedAt;
  if (from === null) return null;
  const o = outages.filter((x) => !x.open && x.endMs >= from).sort((a, b) => a.endMs - b.endMs)[0];
  return o ? { outageStartMs: o.startMs, outageEndMs: o.endMs, outageMs: o.durationMs, lost: o.lost } : null;
}

/** A probe's reply seen for a VM that runs again: answering, with its RTO. */
export function applyAnswer(
  rec: FailoverRecord,
  vm: string,
  probe: FailoverProbe,
  cfg: TimelineConfig = DEFAULT_TIMELINE_CONFIG,
): FailoverRecord {
  const i = rec.vms.findIndex((x) => x.vm === vm && x.status === 'running');
  if (i < 0) return rec;
  const r = structuredClone(rec);
  const v = r.vms[i]!;
  v.status = 'answering';
  v.answeringAt = probe.outageEndMs;
  v.rtoMs = Math.max(0, Math.round(probe.outageEndMs - r.failureAt));
  v.probe = probe;
  push(
    r,
    {
      at: probe.outageEndMs,
      kind: 'answering',
      vm,
      text: `VM ${vm} answers the probe on ${v.to} (RTO ${seconds(v.rtoMs)}, probe outage ${Math.round(probe.outageMs)} ms)`,
    },
    cfg,
  );
  return r;
}

/**
 * Closes a record whose host recovered and whose VMs all answered, or that waited long enough
 * for the rest: `done` when every VM restarted answered, `incomplete` otherwise.
 */
export function settle(
  rec: FailoverRecord,
  now: number,
  cfg: TimelineConfig = DEFAULT_TIMELINE_CONFIG,
): FailoverRecord {
  if (rec.status !== 'open' || rec.recoveredAt === null) return rec;
  const r = structuredClone(rec);
  for (const v of r.vms)
    if (v.status === 'running' && now - (v.runningAt ?? now) >= cfg.answerWaitMs) {
      v.status = 'not-answering';
      v.note = `no probe reply within ${seconds(cfg.answerWaitMs)} of running`;
      push(r, { at: now, kind: 'not-answering', vm: v.vm, text: `VM ${v.vm}: ${v.note}` }, cfg);
    }
  if (r.vms.some((v) => v.status === 'waiting' || v.status === 'restarting' || v.status === 'running'))
    return rec;
  const restarted = r.vms.filter((v) => v.status !== 'skipped');
  const answered = restarted.filter((v) => v.status === 'answering');
  r.endedAt = now;
  r.status = answered.length === restarted.length ? 'done' : 'incomplete';
  r.reason =
    r.status === 'done'
      ? `${answered.length} VM(s) restarted and answering`
      : `${restarted.length - answered.length} of ${restarted.length} VM(s) restarted were not seen answering`;
  return r;
}

/** The VMs of a record that run again and wait for the probe's first reply. */
export const awaitingReply = (r: FailoverRecord): FailoverVm[] => r.vms.filter((v) => v.status === 'running');
