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

  /** Every probe seen so far, answered or not, in sequence order. */
  samples(): ProbeSample[] {
    const first = Math.min(...[...this.replies.keys(), ...this.overdue.keys()]);
    if (!Number.isFinite(first)) return [];
    const known = [...this.replies.entries()]
      .map(([seq, r]) => [seq, r.sentAt] as const)
      .sort((a, b) => a[0] - b[0]);
    const sentAtOf = (seq: number): number => {
      const o = this.overdue.get(seq);
      if (o !== undefined) return o;
      // Between the nearest answered neighbours, at the fixed interval.
      const before = [...known].reverse().find(([s]) => s < seq);
      const after = known.find(([s]) => s > seq);
      if (before) return before[1] + (seq - before[0]) * this.intervalMs;
      if (after) return after[1] - (after[0] - seq) * this.intervalMs;
      return 0;
    };
    const out: ProbeSample[] = [];
    for (let seq = first; seq <= this.maxSeq; seq++) {
      const r = this.replies.get(seq);
      out.push(
        r
          ? { address: this.address, seq, sentAt: r.sentAt, receivedAt: r.receivedAt }
          : { address: this.address, seq, sentAt: sentAtOf(seq), receivedAt: null },
      );
    }
    return out;
  }
}
