import { LineParser, stamp } from './line-parser.ts';
import type { ProbeSample } from './outage.ts';

/** What the output says about one probe (sequence number unwrapped past 65535). */
interface Evidence {
  /** From a reply line: its -D timestamp and the RTT ping measured. */
  reply?: { at: number; rttMs: number };
  /** The last `no answer yet for icmp_seq=N` line: ping prints it just before it sends N+1. */
  lastOverdueAt?: number;
  /** When an ICMP error about it came back (`From R icmp_seq=N Destination Host Unreachable`). */
  errorAt?: number;
  /** A send time another prober's output gave (fping's `timed out` line minus its timeout). */
  sentAt?: number;
}

const TS = String.raw`^\[(\d+)(?:\.(\d{1,9}))?\] `;
const REPLY = new RegExp(`${TS}\\d+ bytes from .+?: icmp_seq=(\\d+)\\b(.*)$`);
const OVERDUE = new RegExp(`${TS}no answer yet for icmp_seq=(\\d+)`);
const ERROR = new RegExp(`${TS}From .+? icmp_seq=(\\d+) `);
const TIME = /\btime=(\d+(?:\.\d+)?) ms\b/;

/**
 * Turns the output of iputils `ping -D -O -n -i INTERVAL ADDRESS` into probe samples as it
 * arrives (feed chunks with `push`, read `samples()` at any time):
 *   [1732330000.123456] 64 bytes from 10.0.0.1: icmp_seq=5 ttl=64 time=0.512 ms
 *   [1732330000.139456] no answer yet for icmp_seq=6
 *   [1732330003.001234] From 10.0.0.254 icmp_seq=7 Destination Host Unreachable
 * Send times: a reply gives its probe's exactly (arrival - RTT); `no answer yet for N` is printed
 * immediately before N+1 is sent, so the last such line dates N+1; any other probe is placed
 * by linear interpolation between its nearest dated neighbours (ping paces evenly). A probe
 * counts once ping has said something about it or about a later one; until a reply arrives it
 * is lost. `(DUP!)` and `(BAD CHECKSUM!)` replies and unrecognised lines are ignored.
 */
export class PingParser extends LineParser {
  private readonly evidence = new Map<number, Evidence>();
  /** Send times kept from discarded probes, so the ones after them keep theirs. */
  private readonly pinned = new Map<number, number>();
  private minSeq = Number.POSITIVE_INFINITY;
  private maxSeq = Number.NEGATIVE_INFINITY;
  /** Lines about probes below this were discarded and are ignored. */
  private floor = Number.NEGATIVE_INFINITY;

  constructor(
    readonly address: string,
    /** Nominal interval, used only to extrapolate when fewer than two probes are dated. */
    private readonly intervalMs: number,
  ) {
    super();
  }

  /** Evidence from another prober's output (fping): probe `seq`, sent before, was answered. */
  reply(seq: number, at: number, rttMs: number): void {
    this.at(seq).reply ??= { at, rttMs };
  }

  /** Evidence from another prober's output (fping): probe `seq` left at `sentAt`. */
  sent(seq: number, sentAt: number): void {
    this.at(seq).sentAt ??= sentAt;
  }

  /** icmp_seq is 16 bits: take the unwrapped value nearest to the highest seen so far. */
  private unwrap(seq: number): number {
    if (!Number.isFinite(this.maxSeq)) return seq;
    return seq + 65536 * Math.round((this.maxSeq - seq) / 65536);
  }

  private at(seq: number): Evidence {
    const s = this.unwrap(seq);
    if (s < this.floor) return {}; // about a discarded probe: dropped
    this.minSeq = Math.min(this.minSeq, s);
    this.maxSeq = Math.max(this.maxSeq, s);
    let e = this.evidence.get(s);
    if (!e) {
      e = {};
      this.evidence.set(s, e);
    }
    return e;
  }

  protected line(line: string): void {
    const reply = REPLY.exec(line);
    if (reply) {
      const rest = reply[4] ?? '';
      const time = TIME.exec(rest);
      if (!time || rest.includes('(DUP!)') || rest.includes('(BAD CHECKSUM!)')) return;
      const e = this.at(Number(reply[3]));
      e.reply ??= { at: stamp(reply[1]!, reply[2]), rttMs: Number(time[1]) };
      return;
    }
    const overdue = OVERDUE.exec(line);
    if (overdue) {
      this.at(Number(overdue[3])).lastOverdueAt = stamp(overdue[1]!, overdue[2]);
      return;
    }
    const error = ERROR.exec(line);
    if (error) this.at(Number(error[3])).errorAt ??= stamp(error[1]!, error[2]);
  }

  /** Send times known from the output itself, by (unwrapped) sequence number. */
  private dated(): Map<number, number> {
    const d = new Map(this.pinned);
    for (const [seq, e] of this.evidence) if (e.lastOverdueAt !== undefined) d.set(seq + 1, e.lastOverdueAt);
    for (const [seq, e] of this.evidence) if (e.sentAt !== undefined) d.set(seq, e.sentAt);
    // A reply's own timing wins over the overdue line of the probe before it.
    for (const [seq, e] of this.evidence) if (e.reply) d.set(seq, e.reply.at - e.reply.rttMs);
    // Only ICMP errors so far: they came back soon after their probes left; better than nothing.
    if (d.size === 0)
      for (const [seq, e] of this.evidence) if (e.errorAt !== undefined) d.set(seq, e.errorAt);
    return d;
  }

  /** Every probe seen so far, answered or not, in sequence order. */
  samples(): ProbeSample[] {
    if (this.minSeq > this.maxSeq) return [];
    const sentAt = interpolate(this.dated(), this.minSeq, this.maxSeq, this.intervalMs);
    const out: ProbeSample[] = [];
    for (let seq = this.minSeq; seq <= this.maxSeq; seq++) {
      const r = this.evidence.get(seq)?.reply;
      out.push({
        address: this.address,
        seq,
        sentAt: sentAt[seq - this.minSeq]!,
        receivedAt: r ? r.at : null,
        ...(r ? { rttMs: r.rttMs } : {}),
      });
    }
    return out;
  }

  /** Forgets probes sent before `t` (ms since the epoch), keeping memory bounded. */
  discardBefore(t: number): void {
    const all = this.samples();
    const keep = all.findIndex((s) => s.sentAt >= t);
    if (keep === 0 || all.length === 0) return;
    const cut = keep < 0 ? this.maxSeq + 1 : all[keep]!.seq;
    const last = all[(keep < 0 ? all.length : keep) - 1]!;
    const datesCut = this.evidence.get(cut - 1)?.lastOverdueAt;
    for (const seq of [...this.evidence.keys()]) if (seq < cut) this.evidence.delete(seq);
    for (const seq of [...this.pinned.keys()]) if (seq < cut - 1) this.pinned.delete(seq);
    this.pinned.set(last.seq, last.sentAt);
    if (datesCut !== undefined) this.pinned.set(cut, datesCut);
    this.floor = cut;
    this.minSeq = keep < 0 ? Number.POSITIVE_INFINITY : cut;
  }
}

/** Send times for seqs lo..hi from the dated ones: linear between neighbours, at the median pace beyond them. */
function interpolate(
  dated: ReadonlyMap<number, number>,
  lo: number,
  hi: number,
  intervalMs: number,
): number[] {
  const points = [...dated.entries()].sort((a, b) => a[0] - b[0]);
  const steps: number[] = [];
  for (let i = 1; i < points.length; i++) {
    const [s0, t0] = points[i - 1]!;
    const [s1, t1] = points[i]!;
    steps.push((t1 - t0) / (s1 - s0));
  }
  steps.sort((a, b) => a - b);
  const pace = steps.length ? steps[Math.floor(steps.length / 2)]! : intervalMs;
  const out: number[] = [];
  let j = 0; // points[j] is the first dated seq >= seq
  for (let seq = lo; seq <= hi; seq++) {
    while (j < points.length && points[j]![0] < seq) j++;
    const after = points[j];
    const before = points[after && after[0] === seq ? j : j - 1];
    if (before && before[0] === seq) out.push(before[1]);
    else if (before && after)
      out.push(before[1] + ((seq - before[0]) * (after[1] - before[1])) / (after[0] - before[0]));
    else if (before) out.push(before[1] + (seq - before[0]) * pace);
    else if (after) out.push(after[1] - (after[0] - seq) * pace);
    else out.push(Number.NaN);
  }
  return out;
}
