import type { ClusterSnapshot, HealthEvidence, HostHealth } from '../model.ts';
import { ACTIVE } from '../placement/context.ts';
import type { Decision } from '../plan.ts';
import { type FailoverPlacement, planRestarts, type RestartRequest } from './restart-plan.ts';

/**
 * The failover state machine. Pure: state, input, time and config in; the next state, the
 * commands to run and the audit events out. The state is plain JSON (persist it after every
 * step; a restarted controller continues from the last persisted state).
 *
 *   stepHa(state, input, now, cfg): { state, commands, events }
 *
 * Per host: ok -> suspect (not up) -> declared-down (health `down` from judgeHealth, i.e.
 * controller link and ICMP silent and a witness majority sees its VMs silent, held for
 * declareAfterMs) -> fencing (command fence) -> fenced (a fence result ok with power
 * confirmed off, or method `none` and the host's disk lock reported expired) -> recovering
 * (command restart with a failover Decision) -> done -> ok once the host is up again.
 * - `partitioned` / `unreachable` / `suspect` never lead further than suspect: no restart.
 * - A failed fence is retried after fenceBackoffMs x 2^(attempt-1) (at most fenceBackoffMaxMs),
 *   with an alert event; nothing is restarted. A fence with no result after fenceTimeoutMs
 *   counts as failed (e.g. the controller restarted while it ran).
 * - HA pause (input.pausedUntil > now): no host is declared down and no fence starts; a fence
 *   already running completes and its recovery proceeds (the host is off). Expires by itself.
 * - A host in maintenance is never declared down (it is emptied and powered off on purpose).
 * - Health `fenced` (a fence record newer than the host's last answer, e.g. an operator's
 *   confirm-off) while ok, suspect or fencing: fenced at once, no fence runs.
 * - A host back up before it was declared down, or while its fence still fails (fencing
 *   stops): the HA VMs it ran while last up that run nowhere now died with it (VM-level HA
 *   below). Back up during its recovery: the VMs still waiting for a place restart in place.
 * - A VM-level restart that fails because its host is no longer up goes with the host (never
 *   started elsewhere before the host is fenced).
 * - VM-level HA: a VM that died on an up host is restarted in place up to restartsPerHour,
 *   then relocated once, then put in `error` until an operator clears it.
 * - Priority gate (priorityGate): a failover's VMs start class by class (tier rank, then HA
 *   priority: core/ha/restart-plan.ts restartOrder). A class waits, `gated`, while a VM of a
 *   better class is still starting (`running`), or has not answered the probe yet (`answer`:
 *   input.answered, or priorityGateTimeoutMs after it runs). A VM that fits nowhere blocks no
 *   one: it is planned again later while the next class starts.
 */

export type FenceMethod = 'ipmi' | 'redfish' | 'ssh' | 'lab' | 'none';

/** When the next priority class of a failover starts: at once, once the better class runs, or once it answers. */
export type PriorityGate = 'none' | 'running' | 'answer';

export interface HaConfig {
  declareAfterMs: number;
  fenceBackoffMs: number;
  fenceBackoffMaxMs: number;
  fenceTimeoutMs: number;
  /** How soon refused restarts are planned again. */
  replanAfterMs: number;
  restartsPerHour: number;
  /** Fence method per host (default `lab`). */
  fenceMethods?: Record<string, FenceMethod>;
  anySite?: boolean;
  /** Absent: `none` (DEFAULT_HA_CONFIG and keizokud's configuration say `answer`). */
  priorityGate?: PriorityGate;
  /** `answer`: how long after running a VM that gives no answer still holds the next class. */
  priorityGateTimeoutMs?: number;
}

export const DEFAULT_HA_CONFIG: Readonly<HaConfig> = {
  declareAfterMs: 3_000,
  fenceBackoffMs: 2_000,
  fenceBackoffMaxMs: 60_000,
  fenceTimeoutMs: 30_000,
  replanAfterMs: 10_000,
  restartsPerHour: 3,
  priorityGate: 'answer',
  priorityGateTimeoutMs: 60_000,
};

export type HostPhase = 'ok' | 'suspect' | 'declared-down' | 'fencing' | 'fenced' | 'recovering' | 'done';

export interface HaHostState {
  phase: HostPhase;
  since: number;
  health: HostHealth;
  /** Since when the host has been judged `down` (null: not down). */
  downSince: number | null;
  /** HA VMs the host last listed, recorded when it was declared down. */
  vms: string[];
  /**
   * HA VMs the host listed while last up (absent in state persisted by older versions). On its
   * return from suspect, those it no longer lists and that run nowhere died with it.
   */
  listed?: string[];
  attempt: number;
  fenceStartedAt: number | null;
  nextFenceAt: number | null;
  /** Recovery: VMs still to place, restarts in flight (vm -> host), hosts that failed per VM. */
  pending: string[];
  inFlight: Record<string, string>;
  failedOn: Record<string, string[]>;
  nextPlanAt: number | null;
  /** Priority gate: VMs placeable but held for a better class (absent in older state). */
  gated?: string[];
  /** Priority gate `answer`: VMs restarted from this host, running, not yet answering (vm -> since). */
  awaiting?: Record<string, number>;
}

export interface HaVmState {
  phase: 'ok' | 'restarting' | 'error';
  host: string;
  /** When in-place restarts happened (kept for one hour). */
  restarts: number[];
  relocated: boolean;
}

export interface HaState {
  hosts: Record<string, HaHostState>;
  vms: Record<string, HaVmState>;
  /** Decisions issued so far (ids are `dec-ha-<seq>`: deterministic). */
  seq: number;
}

export const emptyHaState = (): HaState => ({ hosts: {}, vms: {}, seq: 0 });

export interface FenceResult {
  host: string;
  attempt: number;
  ok: boolean;
  /** The power state was read back as off after the fence. */
  powerOff: boolean;
  error?: string;
}

export interface HaInput {
  /** Every host's judged health (core/health.ts judgeHealth). */
  health: Record<string, { health: HostHealth; evidence: HealthEvidence }>;
  /** The cluster now (up hosts' VMs, maintenance flags, last-known VMs of hosts not up). */
  snapshot: ClusterSnapshot;
  placement: FailoverPlacement;
  /** Stored size of a VM (its definition), null if unknown. */
  specOf(vm: string): { vcpus: number; memoryKiB: number } | null;
  pausedUntil?: number | null;
  fenceResults?: readonly FenceResult[];
  /** Hosts whose disk locks (lockd lease) are seen expired. */
  diskLocksExpired?: readonly string[];
  /** Outcome of restarts issued earlier: the VM started (and answers) on `host`, or not. */
  restartResults?: readonly { vm: string; host: string; ok: boolean; error?: string }[];
  /** VMs whose QEMU died while their host is up. */
  vmDied?: readonly { vm: string; host: string }[];
  /** VMs an operator cleared from `error`. */
  operatorClear?: readonly string[];
  /** VMs the probe has seen answer since their restart (the priority gate `answer`). */
  answered?: readonly string[];
}

export type HaCommand =
  | { kind: 'fence'; host: string; attempt: number; method: FenceMethod }
  | { kind: 'restart'; decision: Decision };

export interface HaEvent {
  at: number;
  kind: 'health' | 'phase' | 'fence-failed' | 'alert' | 'restart' | 'refused' | 'vm' | 'pause';
  /** The phase a `phase` event enters. */
  phase?: HostPhase;
  host?: string;
  vm?: string;
  text: string;
  evidence?: HealthEvidence;
}

const HOUR = 3_600_000;

/** The snapshot with every restart in flight counted as running where it was placed. */
function withInFlight(input: HaInput, state: HaState): ClusterSnapshot {
  const vms = new Map(input.snapshot.vms);
  for (const h of Object.values(state.hosts))
    for (const [vm, to] of Object.entries(h.inFlight)) {
      const spec = input.specOf(vm);
      if (spec && !vms.has(vm))
        vms.set(vm, {
          name: vm,
          uuid: vm,
          host: to,
          state: 'running',
          ...spec,
          cpuUsage: null,
          memoryUsedKiB: null,
        });
    }
  return { ...input.snapshot, vms };
}
const CONTROLLER = { id: 'controller', name: 'keizokud' };

const newHost = (now: number): HaHostState => ({
  phase: 'ok',
  since: now,
  health: 'unknown',
  downSince: null,
  vms: [],
  attempt: 0,
  fenceStartedAt: null,
  nextFenceAt: null,
  pending: [],
  inFlight: {},
  failedOn: {},
  nextPlanAt: null,
});

/** Witness counts and link as one phrase, for the audit line. */
export function evidenceText(e: HealthEvidence): string {
  const parts = [e.connected ? 'link up' : 'link down'];
  if (e.icmp !== null) parts.push(e.icmp ? 'ICMP answers' : 'ICMP silent');
  if (e.witnessesDown !== undefined || e.witnessesUp !== undefined) {
    parts.push(`witnesses: ${e.witnessesDown ?? 0} see its VMs silent, ${e.witnessesUp ?? 0} answer`);
  }
  return parts.join(', ');
}

export function stepHa(
  prev: HaState,
  input: HaInput,
  now: number,
  cfg: HaConfig,
): { state: HaState; commands: HaCommand[]; events: HaEvent[] } {
  const state: HaState = structuredClone(prev);
  const commands: HaCommand[] = [];
  const events: HaEvent[] = [];
  const paused = input.pausedUntil != null && input.pausedUntil > now;
  const gate: PriorityGate = cfg.priorityGate ?? 'none';
  const emit = (e: Omit<HaEvent, 'at'>) => events.push({ at: now, ...e });
  const phase = (name: string, h: HaHostState, p: HostPhase, why: string) => {
    h.phase = p;
    h.since = now;
    emit({ kind: 'phase', phase: p, host: name, text: `host ${name} ${why}` });
  };
  const decide = (requests: RestartRequest[], reason: string): Decision => {
    state.seq += 1;
    return planRestarts(input.snapshot, requests, input.placement, {
      id: `dec-ha-${state.seq}`,
      at: now,
      ref: 'failover',
      requestedBy: CONTROLLER,
      reason,
      ...(cfg.anySite ? { anySite: true } : {}),
    });
  };
  const haVms = (vms: readonly string[] | undefined) =>
    (vms ?? []).filter((v) => input.placement.haPriorityOf(v) !== null).sort();
  /** Where the snapshot sees the VM active (running, paused...), or null. */
  const activeOn = (vm: string): string | null => {
    const v = input.snapshot.vms.get(vm);
    return v && ACTIVE.has(v.state) ? v.host : null;
  };
  /** The HA VMs active on an up host (a host lists its defined, shut-off VMs too). */
  const activeHere = (host: string) =>
    haVms(input.snapshot.hosts.get(host)?.vms).filter((vm) => activeOn(vm) === host);
  const method = (host: string): FenceMethod => cfg.fenceMethods?.[host] ?? 'lab';
  const startFence = (name: string, h: HaHostState) => {
    h.attempt += 1;
    h.fenceStartedAt = now;
    h.nextFenceAt = null;
    if (method(name) !== 'none')
      commands.push({ kind: 'fence', host: name, attempt: h.attempt, method: method(name) });
  };
  const fenceFailed = (name: string, h: HaHostState, why: string) => {
    const wait = Math.min(cfg.fenceBackoffMaxMs, cfg.fenceBackoffMs * 2 ** (h.attempt - 1));
    h.fenceStartedAt = null;
    h.nextFenceAt = now + wait;
    emit({
      kind: 'fence-failed',
      host: name,
      text: `fence of ${name} failed (attempt ${h.attempt}): ${why}; no restart, retry in ${wait / 1000}s`,
    });
    emit({ kind: 'alert', host: name, text: `ALERT fence failed for host ${name}` });
  };

  /** HA VMs a host listed before it went not up and no longer lists now that it is back. */
  const lostOnReturn: { vm: string; host: string; why: string }[] = [];
  /** A VM some recovery or VM-level restart already takes care of. */
  const handled = (vm: string) =>
    state.vms[vm]?.phase === 'restarting' ||
    state.vms[vm]?.phase === 'error' ||
    Object.values(state.hosts).some(
      (x) => x.pending.includes(vm) || vm in x.inFlight || (x.gated ?? []).includes(vm),
    );

  /** A host's HA VMs when it is declared down or fenced: what it last listed, and what it was
   * given since (a VM-level restart that could not run there), unless running or restarted
   * elsewhere. */
  const hostVms = (h: HaHostState, lastKnown: readonly string[] | undefined) =>
    [...new Set([...haVms(lastKnown), ...(h.listed ?? [])])]
      .filter((vm) => activeOn(vm) === null && !handled(vm))
      .sort();
  /** From suspect or fencing back to ok: the HA VMs it ran before and lost meanwhile died there. */
  const backUp = (name: string, h: HaHostState, why: string, declared: readonly string[] = []) => {
    phase(name, h, 'ok', why);
    if (input.snapshot.hosts.get(name)?.maintenance) return;
    for (const vm of [...new Set([...(h.listed ?? []), ...declared])].sort())
      if (activeOn(vm) === null && !handled(vm))
        lostOnReturn.push({
          vm,
          host: name,
          why: `VM ${vm} ran on ${name} before it went not up and runs nowhere now that it is back`,
        });
  };

  // Fence results first: a result for the running attempt moves the host on.
  for (const r of input.fenceResults ?? []) {
    const h = state.hosts[r.host];
    if (h?.phase !== 'fencing' || r.attempt !== h.attempt || h.fenceStartedAt === null) continue;
    if (r.ok && r.powerOff) {
      h.fenceStartedAt = null;
      phase(r.host, h, 'fenced', `fenced (attempt ${r.attempt}, power confirmed off)`);
    } else fenceFailed(r.host, h, r.ok ? 'power not confirmed off' : (r.error ?? 'fence error'));
  }

  for (const name of Object.keys(input.health).sort()) {
    const judged = input.health[name]!;
    let h = state.hosts[name];
    if (!h) {
      h = newHost(now);
      state.hosts[name] = h;
    }
    if (h.health !== judged.health) {
      emit({
        kind: 'health',
        host: name,
        text: `host ${name} is ${judged.health} (${evidenceText(judged.evidence)})`,
        evidence: judged.evidence,
      });
      h.health = judged.health;
    }
    h.downSince = judged.health === 'down' ? (h.downSince ?? now) : null;
    const snapHost = input.snapshot.hosts.get(name);
    const maintenance = snapHost?.maintenance ?? false;
    switch (h.phase) {
      case 'ok':
      case 'suspect': {
        // A fence record newer than the host's last answer that the machine did not write
        // (an operator confirmed the host off): the host is off, recover as after a fence.
        if (judged.health === 'fenced') {
          h.vms = hostVms(h, snapHost?.lastKnownVms);
          h.attempt = 0;
          h.fenceStartedAt = null;
          h.nextFenceAt = null;
          phase(
            name,
            h,
            'fenced',
            "fenced (power confirmed off by a fence record, e.g. an operator's confirm-off; no fence run)",
          );
          break;
        }
        if (judged.health === 'up') {
          if (h.phase === 'suspect') backUp(name, h, 'is up again');
          h.listed = activeHere(name);
          break;
        }
        if (judged.health === 'unknown') break;
        if (h.phase === 'ok')
          phase(name, h, 'suspect', `watched: not up (${judged.health}), nothing restarted yet`);
        if (judged.health !== 'down' || h.downSince === null || now - h.downSince < cfg.declareAfterMs) break;
        if (maintenance) break;
        if (paused) break;
        h.vms = hostVms(h, snapHost?.lastKnownVms);
        h.attempt = 0;
        phase(name, h, 'declared-down', `declared down (${evidenceText(judged.evidence)})`);
        phase(name, h, 'fencing', `fencing (method ${method(name)})`);
        startFence(name, h);
        break;
      }
      case 'fencing': {
        // The fence record arrived without a result (e.g. the result was lost with a restart).
        if (judged.health === 'fenced') {
          h.fenceStartedAt = null;
          h.nextFenceAt = null;
          phase(
            name,
            h,
            'fenced',
            "fenced (power confirmed off by a fence record, e.g. an operator's confirm-off; fence attempts stop)",
          );
          break;
        }
        // Answers again before any fence confirmed it off: nothing was restarted, so stop
        // fencing it (a fence that lands after all makes it fenced again and recovers it).
        if (judged.health === 'up') {
          h.fenceStartedAt = null;
          h.nextFenceAt = null;
          backUp(name, h, 'is up again before a fence confirmed it off; fencing stops', h.vms);
          h.listed = activeHere(name);
          break;
        }
        if (method(name) === 'none') {
          if (input.diskLocksExpired?.includes(name))
            phase(name, h, 'fenced', 'fenced (method none: disk lock expired)');
          break;
        }
        if (h.fenceStartedAt !== null && now - h.fenceStartedAt >= cfg.fenceTimeoutMs)
          fenceFailed(name, h, `no result within ${cfg.fenceTimeoutMs / 1000}s`);
        if (h.fenceStartedAt === null && h.nextFenceAt !== null && now >= h.nextFenceAt && !paused)
          startFence(name, h);
        break;
      }
      default:
        break;
    }
    if (h.phase === 'fenced') {
      h.pending = [...h.vms];
      h.inFlight = {};
      h.failedOn = {};
      h.gated = [];
      h.nextPlanAt = now;
      phase(name, h, 'recovering', `recovering ${h.vms.length} HA VM(s)`);
    }
    // Back up (powered on after its fence) while VMs still wait for a place: they cannot be
    // restarted elsewhere from a host that is no longer fenced, and it runs none of them, so
    // they take the VM-level path there (in place).
    if (h.phase === 'recovering' && judged.health === 'up' && h.pending.length + (h.gated ?? []).length > 0) {
      for (const vm of [...h.pending.splice(0), ...(h.gated ?? []).splice(0)].sort())
        if (activeOn(vm) === null)
          lostOnReturn.push({
            vm,
            host: name,
            why: `VM ${vm} still waits for a place and ${name} is up again, running nothing of it`,
          });
      h.nextPlanAt = null;
      if (Object.keys(h.inFlight).length === 0) phase(name, h, 'done', 'recovery done');
    }
    if (h.phase === 'done' && judged.health === 'up') {
      phase(name, h, 'ok', 'is up again');
      h.listed = activeHere(name);
    }
  }

  // Restart results: host recoveries first, then VM-level restarts.
  for (const r of input.restartResults ?? []) {
    const owner = Object.entries(state.hosts).find(([, h]) => h.inFlight[r.vm] === r.host);
    if (owner) {
      const [, h] = owner;
      delete h.inFlight[r.vm];
      if (r.ok) {
        emit({ kind: 'restart', vm: r.vm, host: r.host, text: `VM ${r.vm} running on ${r.host}` });
        if (gate === 'answer') h.awaiting = { ...h.awaiting, [r.vm]: now };
      } else {
        h.failedOn[r.vm] = [...(h.failedOn[r.vm] ?? []), r.host];
        h.pending.push(r.vm);
        h.nextPlanAt = now;
        emit({
          kind: 'restart',
          vm: r.vm,
          host: r.host,
          text: `restart of VM ${r.vm} on ${r.host} failed: ${r.error ?? 'error'}`,
        });
      }
      continue;
    }
    const v = state.vms[r.vm];
    if (v?.phase !== 'restarting') continue;
    if (r.ok) {
      v.phase = 'ok';
      v.host = r.host;
      emit({ kind: 'vm', vm: r.vm, host: r.host, text: `VM ${r.vm} running on ${r.host}` });
    } else if (input.health[r.host]?.health === 'up') vmDied(r.vm, r.host);
    else handToHost(r.vm, r.host);
  }

  /**
   * A VM-level restart on a host that is no longer up failed: the VM may yet run there (a
   * partition), so it is not started anywhere else; it goes with its host, restarted when the
   * host is fenced, or in place when it is back up.
   */
  function handToHost(vm: string, host: string) {
    const v = state.vms[vm]!;
    v.phase = 'ok';
    v.host = host;
    const h = state.hosts[host];
    if (!h) return;
    emit({
      kind: 'vm',
      vm,
      host,
      text: `VM ${vm} did not restart on ${host}, which is ${h.health}: it goes with the host`,
    });
    const add = (list: string[]) => (list.includes(vm) ? list : [...list, vm].sort());
    if (h.phase === 'recovering' || h.phase === 'done') {
      h.pending = add(h.pending);
      h.nextPlanAt = now;
      if (h.phase === 'done') phase(host, h, 'recovering', `recovering ${vm} too`);
    } else if (h.phase === 'ok' || h.phase === 'suspect') h.listed = add(h.listed ?? []);
    else h.vms = add(h.vms);
  }

  function vmDied(vm: string, host: string) {
    const v = state.vms[vm] ?? { phase: 'ok', host, restarts: [], relocated: false };
    state.vms[vm] = v;
    if (v.phase === 'error') return;
    v.restarts = v.restarts.filter((t) => now - t < HOUR);
    if (v.restarts.length === 0) v.relocated = false;
    const spec = input.specOf(vm);
    if (v.restarts.length < cfg.restartsPerHour) {
      v.restarts.push(now);
      v.phase = 'restarting';
      v.host = host;
      state.seq += 1;
      commands.push({
        kind: 'restart',
        decision: {
          id: `dec-ha-${state.seq}`,
          planner: 'failover',
          at: now,
          reason: `VM ${vm} died on ${host}; restart in place (${v.restarts.length}/${cfg.restartsPerHour} this hour)`,
          ref: 'failover',
          requestedBy: CONTROLLER,
          vms: [vm],
          candidates: {},
          actions: [{ kind: 'start', vm, host }],
          ok: true,
          refused: [],
        },
      });
      emit({
        kind: 'vm',
        vm,
        host,
        text: `VM ${vm} died on ${host}: restart in place (${v.restarts.length}/${cfg.restartsPerHour})`,
      });
      return;
    }
    if (!v.relocated && spec) {
      const d = decide(
        [{ vm, from: host, ...spec, failedOn: [host] }],
        `VM ${vm} died ${cfg.restartsPerHour} times on ${host} this hour; relocate`,
      );
      const to = d.actions[0]?.kind === 'restart-elsewhere' ? d.actions[0].to : null;
      if (to && to !== host) {
        v.relocated = true;
        v.phase = 'restarting';
        commands.push({ kind: 'restart', decision: d });
        emit({
          kind: 'vm',
          vm,
          host: to,
          text: `VM ${vm} restart limit reached on ${host}: relocate to ${to}`,
        });
        return;
      }
    }
    v.phase = 'error';
    emit({
      kind: 'alert',
      vm,
      text: `ALERT VM ${vm} in error after ${v.restarts.length} restarts this hour${v.relocated ? ' and a relocation' : ''}; an operator must clear it`,
    });
  }

  // A host powered off and on before it was declared down: its HA VMs stopped with it and
  // run nowhere; they died on that host (restarted in place, or relocated past the limit).
  for (const d of lostOnReturn) {
    emit({ kind: 'vm', vm: d.vm, host: d.host, text: d.why });
    vmDied(d.vm, d.host);
  }
  for (const d of input.vmDied ?? []) {
    if (input.health[d.host]?.health !== 'up') continue;
    if (input.placement.haPriorityOf(d.vm) === null) continue;
    vmDied(d.vm, d.host);
  }
  for (const vm of input.operatorClear ?? []) {
    const v = state.vms[vm];
    if (v?.phase !== 'error') continue;
    v.phase = 'ok';
    v.restarts = [];
    v.relocated = false;
    emit({ kind: 'vm', vm, text: `VM ${vm} cleared from error by an operator` });
    if (activeOn(vm) === null) vmDied(vm, v.host);
  }

  // Recoveries: one plan for every host's pending VMs (after replanAfterMs for refused ones),
  // on a view where restarts in flight already hold their hosts' capacity.
  settleAwaiting();
  const due = Object.keys(state.hosts)
    .sort()
    .filter((n) => {
      const h = state.hosts[n]!;
      const planDue = h.pending.length > 0 && h.nextPlanAt !== null && now >= h.nextPlanAt;
      return h.phase === 'recovering' && (planDue || (h.gated ?? []).length > 0);
    });
  if (due.length > 0) {
    const requests: RestartRequest[] = [];
    const wasGated = new Set(due.flatMap((n) => state.hosts[n]!.gated ?? []));
    for (const name of due) {
      const h = state.hosts[name]!;
      const planDue = h.pending.length > 0 && h.nextPlanAt !== null && now >= h.nextPlanAt;
      const take = [...(h.gated ?? []), ...(planDue ? h.pending : [])];
      if (planDue) {
        h.pending = [];
        h.nextPlanAt = null;
      }
      h.gated = [];
      for (const vm of take) {
        // Seen running elsewhere (started by hand, or by a controller whose state was lost):
        // starting it again would run it twice.
        const seen = activeOn(vm);
        if (seen !== null && seen !== name) {
          emit({ kind: 'restart', vm, host: seen, text: `VM ${vm} already runs on ${seen}: not restarted` });
          continue;
        }
        const spec = input.specOf(vm);
        if (spec) requests.push({ vm, from: name, ...spec, failedOn: h.failedOn[vm] ?? [] });
      }
    }
    const held = holdForGate(requests, wasGated);
    const d = planRestarts(
      withInFlight(input, state),
      requests.filter((q) => !held.has(q.vm)),
      input.placement,
      {
        id: `dec-ha-${++state.seq}`,
        at: now,
        ref: 'failover',
        requestedBy: CONTROLLER,
        reason: `host ${due.join(', ')} fenced: restart its HA VMs`,
        ...(cfg.anySite ? { anySite: true } : {}),
      },
    );
    for (const a of d.actions)
      if (a.kind === 'restart-elsewhere') {
        state.hosts[a.from]!.inFlight[a.vm] = a.to;
        emit({ kind: 'restart', vm: a.vm, host: a.to, text: `VM ${a.vm} placed on ${a.to}` });
      }
    if (d.actions.length > 0) commands.push({ kind: 'restart', decision: d });
    for (const r of d.refused) {
      const from = requests.find((q) => q.vm === r.vm)!.from;
      const h = state.hosts[from]!;
      h.pending.push(r.vm);
      h.nextPlanAt = now + cfg.replanAfterMs;
      emit({
        kind: 'refused',
        vm: r.vm,
        host: from,
        text: `VM ${r.vm} fits nowhere, retry in ${cfg.replanAfterMs / 1000}s: ${r.reasons.join('; ')}`,
      });
    }
  }
  for (const name of Object.keys(state.hosts).sort()) {
    const h = state.hosts[name]!;
    if (
      h.phase === 'recovering' &&
      h.pending.length === 0 &&
      (h.gated ?? []).length === 0 &&
      Object.keys(h.inFlight).length === 0
    )
      phase(name, h, 'done', 'recovery done');
  }
  return { state, commands, events };

  /** Gate `answer`: VMs that answered, or ran priorityGateTimeoutMs without answering, hold no one any more. */
  function settleAwaiting() {
    const answered = new Set(input.answered ?? []);
    const timeout = cfg.priorityGateTimeoutMs ?? 60_000;
    for (const name of Object.keys(state.hosts).sort()) {
      const h = state.hosts[name]!;
      for (const [vm, since] of Object.entries(h.awaiting ?? {})) {
        if (answered.has(vm)) {
          delete h.awaiting![vm];
          if (Object.values(state.hosts).some((x) => (x.gated ?? []).length > 0))
            emit({
              kind: 'restart',
              vm,
              host: name,
              text: `VM ${vm} answers the probe: the next priority class may start`,
            });
        } else if (gate !== 'answer' || now - since >= timeout) {
          delete h.awaiting![vm];
          if (gate === 'answer')
            emit({
              kind: 'restart',
              vm,
              host: name,
              text: `VM ${vm} gave no probe answer within ${timeout / 1000}s of running: it holds the next priority class no longer`,
            });
        }
      }
    }
  }

  /**
   * The requests the priority gate holds back this step (put in their host's `gated`): all but
   * the best class among them, and that one too while a VM of a better class is still starting
   * or, with `answer`, not yet answering. An event when a VM starts waiting.
   */
  function holdForGate(requests: readonly RestartRequest[], wasGated: ReadonlySet<string>): Set<string> {
    const held = new Set<string>();
    if (gate === 'none' || requests.length === 0) return held;
    const p = input.placement;
    const prio = (vm: string) => p.haPriorityOf(vm) ?? Number.NEGATIVE_INFINITY;
    /** Below 0: a's class starts before b's (restartOrder without the name). */
    const cmp = (a: string, b: string) => p.tierRankOf(a) - p.tierRankOf(b) || prio(b) - prio(a);
    const inFlight = new Set(Object.values(state.hosts).flatMap((h) => Object.keys(h.inFlight)));
    const starting = [
      ...inFlight,
      ...(gate === 'answer' ? Object.values(state.hosts).flatMap((h) => Object.keys(h.awaiting ?? {})) : []),
    ];
    const best = [...requests].sort((a, b) => cmp(a.vm, b.vm) || a.vm.localeCompare(b.vm))[0]!.vm;
    const blocker = starting
      .filter((vm) => cmp(vm, best) < 0)
      .sort((a, b) => cmp(a, b) || a.localeCompare(b))[0];
    for (const q of requests) {
      const by = blocker ?? (cmp(best, q.vm) < 0 ? best : undefined);
      if (by === undefined) continue;
      held.add(q.vm);
      const h = state.hosts[q.from]!;
      h.gated = [...(h.gated ?? []), q.vm].sort();
      if (!wasGated.has(q.vm))
        emit({
          kind: 'restart',
          vm: q.vm,
          host: q.from,
          text: `VM ${q.vm} waits until VM ${by}, of a higher priority, ${gate === 'answer' ? 'answers' : 'runs'}`,
        });
    }
    return held;
  }
}
