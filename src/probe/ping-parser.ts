import type { ProbeSample } from './outage.ts';

/**
 * Turns the output of iputils `ping -D -O -n -i INTERVAL ADDRESS` into probe samples, line by
 * line as it arrives:
 *   [1732330000.123456] 64 bytes from 10.0.0.1: icmp_seq=5 ttl=64 time=0.512 ms
 *   [1732330000.133456] no answer yet for icmp_seq=6
 * A reply gives the exact send time (arrival - RTT). A sequence number that never got a reply
 * is lost; its send time is placed between its neighbours' (ping sends at a fixed interval).
 * Duplicate replies (DUP!) and unrecognised lines are ignored. icmp_seq wraps at 65536.
 */
export class PingParser {
  private partial = '';
  private lastSeq = -1;
  private wraps = 0;
  private readonly replies = new Map<number, { sentAt: number; receivedAt: number }>();
  private readonly overdue = new Map<number, number>();
  private maxSeq = -1;

  constructor(
    readonly address: string,
    private readonly intervalMs: number,
  ) {}

  /** Feeds output; whole lines are parsed, a trailing partial line waits for the rest. */
  push(chunk: string): void {
    const text = this.partial + chunk;
    const lines = text.split('\n');
    this.partial = lines.pop() ?? '';
    for (const line of lines) this.line(line);
  }

  private unwrap(seq: number): number {
    // A jump back of more than half the space is a wrap, not reordering.
    if (this.lastSeq >= 0 && seq < this.lastSeq - 32768) this.wraps++;
    this.lastSeq = seq;
    return seq + this.wraps * 65536;
  }

  private line(line: string): void {
    if (line.includes('(DUP!)')) return;
    const reply = line.match(/^\[(\d+\.\d+)\] \d+ bytes from [^:]+: icmp_seq=(\d+) .*time=([\d.]+) ms/);
    if (reply) {
      const at = Number(reply[1]) * 1000;
      const seq = this.unwrap(Number(reply[2]));
      if (!this.replies.has(seq)) this.replies.set(seq, { sentAt: at - Number(reply[3]), receivedAt: at });
      this.maxSeq = Math.max(this.maxSeq, seq);
      return;
    }
    const late = line.match(/^\[(\d+\.\d+)\] no answer yet for icmp_seq=(\d+)/);
    if (late) {
      const seq = this.unwrap(Number(late[2]));
      // -O reports when the next probe goes out: about one interval after this one left.
      if (!this.overdue.has(seq)) this.overdue.set(seq, Number(late[1]) * 1000 - this.intervalMs);
      this.maxSeq = Math.max(this.maxSeq, seq);
    }
  }

  /** Every probe seen so far (since the last forget), answered or not, in sequence order. */
  samples(): ProbeSample[] {
    const first = Math.min(...this.replies.keys(), ...this.overdue.keys());
    if (!Number.isFinite(first)) return [];
    const out: ProbeSample[] = [];
    // Lost probes without an "overdue" line sit between their answered neighbours, at the
    // fixed interval: one sweep keeps the last answered probe, a second the next one.
    let before: [number, number] | null = null;
    const pending: number[] = [];
    const place = (seq: number, after: [number, number] | null): number => {
      const o = this.overdue.get(seq);
      if (o !== undefined) return o;
      if (before) return before[1] + (seq - before[0]) * this.intervalMs;
      if (after) return after[1] - (after[0] - seq) * this.intervalMs;
      return 0;
    };
    const flush = (after: [number, number] | null) => {
      for (const seq of pending)
        out.push({ address: this.address, seq, sentAt: place(seq, after), receivedAt: null });
      pending.length = 0;
    };
    for (let seq = first; seq <= this.maxSeq; seq++) {
      const r = this.replies.get(seq);
      if (!r) {
        pending.push(seq);
        continue;
      }
      flush([seq, r.sentAt]);
      out.push({ address: this.address, seq, sentAt: r.sentAt, receivedAt: r.receivedAt });
      before = [seq, r.sentAt];
    }
    flush(null);
    return out;
  }

  /** Drops what was sent before `beforeMs` (a long-running agent keeps only recent probes here). */
  forget(beforeMs: number): void {
    for (const [seq, r] of this.replies) if (r.sentAt < beforeMs) this.replies.delete(seq);
    for (const [seq, at] of this.overdue) if (at < beforeMs) this.overdue.delete(seq);
  }
}
