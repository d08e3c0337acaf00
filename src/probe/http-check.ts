import type { ProbeSample } from './outage.ts';

export interface HttpCheckOptions {
  url: string;
  intervalMs: number;
  timeoutMs: number;
  /** A response counts as an answer only when its body contains this (default: any 2xx). */
  expect?: string;
}

/**
 * GETs a URL every interval; each request is a probe sample (answered when a 2xx with the
 * expected body came back within the timeout), so the same outage arithmetic applies.
 */
export class HttpCheck {
  private timer: NodeJS.Timeout | null = null;
  private seq = 0;
  private readonly out: ProbeSample[] = [];
  private readonly inFlight = new Set<Promise<void>>();

  constructor(private readonly o: HttpCheckOptions) {}

  start(): void {
    this.timer = setInterval(() => this.probe(), this.o.intervalMs);
    this.probe();
  }

  private probe(): void {
    const seq = this.seq++;
    const sentAt = performance.timeOrigin + performance.now();
    const p = fetch(this.o.url, { signal: AbortSignal.timeout(this.o.timeoutMs) })
      .then(async (r) => {
        const body = await r.text();
        const ok = r.ok && (this.o.expect === undefined || body.includes(this.o.expect));
        this.out.push({
          address: this.o.url,
          seq,
          sentAt,
          receivedAt: ok ? performance.timeOrigin + performance.now() : null,
        });
      })
      .catch(() => {
        this.out.push({ address: this.o.url, seq, sentAt, receivedAt: null });
      })
      .finally(() => this.inFlight.delete(p));
    this.inFlight.add(p);
  }

  /** Stops probing, waits for requests in flight (each bounded by the timeout), returns samples. */
  async stop(): Promise<ProbeSample[]> {
    if (this.timer) clearInterval(this.timer);
    await Promise.all(this.inFlight);
    return [...this.out].sort((a, b) => a.seq - b.seq);
  }
}
