// The host health model: a pure function of what the controller last saw of a host.
// No I/O and no clock here; `now` and every time come in as data (ms since the epoch).
import type { HealthEvidence, HostHealth } from './model.ts';

/** What the controller knows of one host when it judges its health. */
export interface HealthInput {
  /** The libvirt connection is open (keepalives answer). */
  connected: boolean;
  /** A connect is in flight (not yet open, not yet failed). */
  connecting?: boolean;
  /** When the current connection opened (null while disconnected or unknown). */
  connectedAt?: number | null;
  /** When a libvirt read of the host last succeeded in full (null: never). */
  lastSuccessAt: number | null;
  /** When the controller last started one (null: never tried). */
  lastAttemptAt: number | null;
  /**
   * When that last successful read's answer came (absent: taken as its start). The host was
   * answering then: a read of 27 s on a busy controller is no hang of the host.
   */
  lastAnswerAt?: number | null;
  /** ICMP to the host's management address; null or absent when it is not probed. */
  icmp?: { lastReplyAt: number | null; lastSentAt: number | null } | null;
  /** A fence record: when the host was powered off by a fence. */
  fencedAt?: number | null;
  /** Probe witnesses that see the host's VMs answer / not answer (core/witness.ts). */
  witnesses?: { up: number; down: number; total?: number } | null;
  /** The health last judged, and since when (null since while unknown). */
  previous?: { health: HostHealth; since: number | null } | null;
}

export interface HealthThresholds {
  /**
   * A connected host is `suspect` once no read has succeeded for this long although reads
   * were started (hung storage, calls timing out while keepalives answer), counted from the
   * last successful read's answer. Default 30 s.
   */
  suspectAfterMs: number;
  /**
   * An ICMP reply younger than this means the host answers; probes sent within it with no
   * such reply mean it is silent; no probe sent within it means "not probed". Default 6 s.
   */
  icmpFreshMs: number;
}

export const DEFAULT_HEALTH_THRESHOLDS: Readonly<HealthThresholds> = {
  suspectAfterMs: 30_000,
  icmpFreshMs: 6_000,
};

export interface HealthJudgement {
  health: HostHealth;
  /** When the host entered this health (kept while the health stays; null while unknown). */
  since: number | null;
  evidence: HealthEvidence;
}

/** ICMP as evidence: true answered lately, false probed lately without reply, null not probed. */
export function icmpVerdict(icmp: HealthInput['icmp'], now: number, freshMs: number): boolean | null {
  if (!icmp) return null;
  if (icmp.lastReplyAt !== null && now - icmp.lastReplyAt <= freshMs) return true;
  if (icmp.lastSentAt !== null && now - icmp.lastSentAt <= freshMs) return false;
  return null;
}

function judge(i: HealthInput, now: number, t: HealthThresholds, icmp: boolean | null): HostHealth {
  // A fence powered the host off after its last answer: nothing can run there. A read that
  // succeeds after the fence means the host was powered on again.
  if (i.fencedAt != null && i.fencedAt >= (i.lastSuccessAt ?? Number.NEGATIVE_INFINITY)) return 'fenced';
  const prev = i.previous?.health ?? 'unknown';
  if (i.connected) {
    // Only a read over this connection counts: data from before a reconnect may be stale.
    const opened = i.connectedAt ?? Number.NEGATIVE_INFINITY;
    const success = i.lastSuccessAt !== null && i.lastSuccessAt >= opened ? i.lastSuccessAt : null;
    const askedSince = i.lastAttemptAt !== null && (success === null || i.lastAttemptAt > success);
    // Quiet since the last answer over this link (a slow read is no hang), or since it opened.
    const quietFrom =
      success !== null ? Math.max(success, i.lastAnswerAt ?? success) : (i.connectedAt ?? null);
    if (askedSince && quietFrom !== null && now - quietFrom > t.suspectAfterMs) return 'suspect';
    if (success !== null) return 'up';
    // Connected, nothing read over this link yet, still within the threshold: as before while
    // that fits an open link that has not answered yet; otherwise (up, partitioned, down:
    // the link was lost and is back) unreachable until the first read, never up on old data.
    return prev === 'unknown' || prev === 'suspect' ? prev : 'unreachable';
  }
  if (i.lastAttemptAt === null && i.lastSuccessAt === null) return 'unknown';
  // The first connect has not answered yet: nothing is known of the host (not partitioned
  // because ICMP answers: nothing was lost). A connect that fails says unreachable.
  if (i.connecting && i.lastSuccessAt === null && prev === 'unknown') return 'unknown';
  const w = i.witnesses;
  if (icmp === true || (w && w.up > 0)) return 'partitioned';
  const total = w ? (w.total ?? w.up + w.down) : 0;
  if (icmp === false && w && total > 0 && w.down * 2 > total) return 'down';
  return 'unreachable';
}

/**
 * Judges a host's health from the controller's libvirt link, its ICMP probe of the host's
 * management address, a fence record and (later) probe witnesses:
 * - `fenced`: a fence record newer than the host's last answer;
 * - `up`: connected, and a read over this connection succeeded within `suspectAfterMs`
 *   (or none has been started since the last one that did);
 * - `suspect`: connected, reads started but none succeeded for longer than `suspectAfterMs`
 *   (counted from the last success's answer, or from the connection's opening);
 * - `unreachable`: the link is down and ICMP is silent or not probed;
 * - `partitioned`: the link is down but ICMP answers, or witnesses see its VMs answer: the
 *   host may still run them, so nothing of it may be restarted elsewhere;
 * - `down`: the link is down, ICMP is silent and a majority of the witnesses see its VMs
 *   silent. Only witness votes (core/witness.ts, gathered by the leader's witness loop) can
 *   make a host `down`;
 * - `unknown`: never observed (no read tried yet, the first connect in flight, or the first read
 *   still within the threshold).
 * `since` is kept from `previous` while the health stays the same.
 */
export function judgeHealth(
  input: HealthInput,
  now: number,
  thresholds: HealthThresholds = DEFAULT_HEALTH_THRESHOLDS,
): HealthJudgement {
  const icmp = icmpVerdict(input.icmp, now, thresholds.icmpFreshMs);
  const health = judge(input, now, thresholds, icmp);
  const prev = input.previous;
  const since = health === 'unknown' ? null : prev && prev.health === health ? prev.since : now;
  const evidence: HealthEvidence = {
    connected: input.connected,
    lastCallAgeMs: input.lastSuccessAt === null ? null : now - input.lastSuccessAt,
    icmp,
  };
  if (input.witnesses) {
    evidence.witnessesUp = input.witnesses.up;
    evidence.witnessesDown = input.witnesses.down;
  }
  if (input.fencedAt != null) evidence.fenced = health === 'fenced';
  return { health, since, evidence };
}
