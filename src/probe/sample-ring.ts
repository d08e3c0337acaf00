import type { ProbeSample } from './outage.ts';

/**
 * Settled probe samples of one address, oldest dropped first: send time and RTT (NaN when no
 * reply came) in two Float64Arrays, so that 100 targets at 100 Hz for several minutes stay
 * small (16 bytes a probe).
 */
export class SampleRing {
  private readonly sent: Float64Array;
  private readonly rtt: Float64Array;
  private start = 0;
  private length = 0;
  /** Send time of the newest sample taken, to take each probe once. */
  lastSentAt = Number.NEGATIVE_INFINITY;
  private seq = 0;

  constructor(
    readonly address: string,
    readonly capacity: number,
  ) {
    this.sent = new Float64Array(capacity);
    this.rtt = new Float64Array(capacity);
  }

  get size(): number {
    return this.length;
  }

  push(sentAt: number, receivedAt: number | null): void {
    if (sentAt <= this.lastSentAt) return;
    this.lastSentAt = sentAt;
    const i = (this.start + this.length) % this.capacity;
    this.sent[i] = sentAt;
    this.rtt[i] = receivedAt === null ? Number.NaN : receivedAt - sentAt;
    if (this.length < this.capacity) this.length++;
    else this.start = (this.start + 1) % this.capacity;
    this.seq++;
  }

  /**
   * Samples sent within [fromMs, toMs], oldest first. Their sequence numbers are negative (the
   * ring's own count), so they never merge with a prober's samples of the same address.
   */
  between(fromMs: number, toMs: number): ProbeSample[] {
    const out: ProbeSample[] = [];
    const firstSeq = this.seq - this.length;
    // Send times only grow (push refuses older ones): binary search for the first in range.
    let lo = 0;
    let hi = this.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.sent[(this.start + mid) % this.capacity]! < fromMs) lo = mid + 1;
      else hi = mid;
    }
    for (let k = lo; k < this.length; k++) {
      const i = (this.start + k) % this.capacity;
      const t = this.sent[i]!;
      if (t > toMs) break;
      const r = this.rtt[i]!;
      out.push({
        address: this.address,
        seq: -1 - (firstSeq + k),
        sentAt: t,
        receivedAt: Number.isNaN(r) ? null : t + r,
      });
    }
    return out;
  }

  oldest(): number | null {
    return this.length ? this.sent[this.start]! : null;
  }
}
