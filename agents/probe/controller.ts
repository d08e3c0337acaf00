import { isIP } from 'node:net';
import type { OutageReport, Target } from './agent.ts';

/**
 * keizoku-probe's side of keizokud's API: the VM list to follow, registration, and the push
 * of outages. Outages wait in a bounded queue while keizokud is away and are sent in batches,
 * retried with backoff. The token goes into the Authorization header only: it is never part
 * of an error message or a log line.
 */

export interface ControllerLinkOptions {
  url: string;
  token: string;
  probe: string;
  site: string;
  /** This agent's own base URL (`http://LISTEN`), registered so that jobs can ask it for windows. */
  selfUrl: string;
  intervalMs: number;
  /** Outages kept while keizokud does not take them; the oldest are dropped beyond (default 10,000). */
  maxPending?: number;
  /** Outages per POST (default 500). */
  batch?: number;
  /** First retry delay, doubled after every failure up to `backoffMaxMs` (defaults 1 s, 60 s). */
  backoffMinMs?: number;
  backoffMaxMs?: number;
  /** How long a VM stays probed after it was last listed running with addresses (default 60 s). */
  followGraceMs?: number;
  now?: () => number;
}

export interface ControllerVm {
  name: string;
  host?: string;
  state: string;
  addresses: string[];
}

export class ControllerLink {
  private readonly pending: OutageReport[] = [];
  private backoffMs: number;
  private nextPushAt = 0;
  private pushing = false;
  /** Outages dropped because the queue was full. */
  dropped = 0;
  private readonly seen = new Map<string, { target: Target; at: number }>();
  private readonly now: () => number;

  constructor(private readonly o: ControllerLinkOptions) {
    this.backoffMs = o.backoffMinMs ?? 1_000;
    this.now = o.now ?? Date.now;
  }

  get pendingCount(): number {
    return this.pending.length;
  }

  private async api(method: string, path: string, body?: unknown): Promise<unknown> {
    let r: Response;
    try {
      r = await fetch(`${this.o.url}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${this.o.token}`,
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(5_000),
      });
    } catch (e) {
      const cause = (e as { cause?: { code?: string; message?: string } }).cause;
      throw new Error(`${method} ${path}: ${cause?.code ?? cause?.message ?? (e as Error).message}`);
    }
    const text = await r.text();
    if (!r.ok) throw new Error(`${method} ${path}: HTTP ${r.status} ${text.slice(0, 200)}`);
    return text ? JSON.parse(text) : {};
  }

  /** Queues an outage for the next push. */
  enqueue(o: OutageReport): void {
    this.pending.push(o);
    const max = this.o.maxPending ?? 10_000;
    if (this.pending.length > max) {
      this.dropped += this.pending.length - max;
      this.pending.splice(0, this.pending.length - max);
    }
  }

  /**
   * Sends the next batch if there is one and the backoff allows: `sent` outages taken by
   * keizokud, or the error that will be retried after `retryInMs`.
   */
  async push(): Promise<{ sent: number; refused?: string[] } | { error: string; retryInMs: number } | null> {
    if (this.pushing || this.pending.length === 0 || this.now() < this.nextPushAt) return null;
    this.pushing = true;
    const batch = this.pending.slice(0, this.o.batch ?? 500);
    try {
      // keizokud takes the agent's name and site from the token; they are sent for older ones.
      const reply = (await this.api('POST', '/v1/probe/events', {
        probe: this.o.probe,
        site: this.o.site,
        events: batch,
      })) as { refused?: { message?: unknown }[] };
      // Taken: remove exactly these (the queue may have been trimmed meanwhile).
      for (const e of batch) {
        const i = this.pending.indexOf(e);
        if (i >= 0) this.pending.splice(i, 1);
      }
      this.backoffMs = this.o.backoffMinMs ?? 1_000;
      this.nextPushAt = 0;
      // Outages keizokud refused (times it will not take) are dropped with the rest: resending
      // them would be refused again.
      const refused = Array.isArray(reply.refused)
        ? reply.refused.map((r) => String(r?.message ?? 'refused').slice(0, 200))
        : [];
      return refused.length > 0 ? { sent: batch.length, refused } : { sent: batch.length };
    } catch (e) {
      const retryInMs = this.backoffMs;
      this.nextPushAt = this.now() + retryInMs;
      this.backoffMs = Math.min(this.o.backoffMaxMs ?? 60_000, this.backoffMs * 2);
      return { error: (e as Error).message, retryInMs };
    } finally {
      this.pushing = false;
    }
  }

  /**
   * POST /v1/probes: who this agent is and where to ask it for windows. keizokud keeps the
   * token's name and site, and takes the URL only with this agent's own source address as its
   * host (0.0.0.0 stands for it).
   */
  async register(): Promise<void> {
    await this.api('POST', '/v1/probes', {
      name: this.o.probe,
      site: this.o.site,
      url: this.o.selfUrl,
      intervalMs: this.o.intervalMs,
    });
  }

  /**
   * GET /v1/vms, and the targets to follow: every VM listed running with addresses, and for a
   * grace period those seen so recently (a move may hide a VM's state for a moment).
   */
  async followed(): Promise<Target[]> {
    const body = (await this.api('GET', '/v1/vms')) as { vms?: unknown };
    if (!Array.isArray(body.vms)) throw new Error('GET /v1/vms: no "vms" list in the reply');
    const now = this.now();
    for (const v of body.vms as ControllerVm[]) {
      if (typeof v?.name !== 'string' || v.state !== 'running' || !Array.isArray(v.addresses)) continue;
      // IP literals only: a name would be resolved by the pinger, through DNS.
      const addresses = v.addresses.filter((a): a is string => typeof a === 'string' && isIP(a) !== 0);
      if (addresses.length > 0) this.seen.set(v.name, { target: { name: v.name, addresses }, at: now });
    }
    const grace = this.o.followGraceMs ?? 60_000;
    for (const [name, s] of this.seen) if (now - s.at > grace) this.seen.delete(name);
    return [...this.seen.values()].map((s) => s.target);
  }
}
