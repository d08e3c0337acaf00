import { FpingPool, type FpingPoolOptions } from './fping-pool.ts';

/** The last ICMP reply and the last probe sent to one address (core/health.ts's input). */
export interface IcmpLast {
  lastReplyAt: number | null;
  lastSentAt: number | null;
}

/** What the inventory asks of its ICMP prober of hosts. */
export interface HostIcmp {
  last(address: string): IcmpLast | null;
  stop(): Promise<void>;
}

/** Samples older than this are dropped: health only looks at the latest reply and probe. */
const KEEP_MS = 60_000;

/**
 * ICMP to each host's management address, every `intervalMs`, from one shared fping (the
 * probe's FpingPool; a reply later than `timeoutMs` counts as lost). The controller's own
 * view: a host that answers ICMP while its libvirt link is down is partitioned, not gone.
 */
export class HostPinger implements HostIcmp {
  private readonly pool: FpingPool;
  private readonly probers = new Map<string, ReturnType<FpingPool['prober']>>();
  /**
   * Each address's last answer, kept until its samples change: health asks for every host's at
   * each snapshot build and health judgement, and working it out goes over a minute of samples
   * (at 1,000 hosts this was 40 % of keizokud's CPU).
   */
  private readonly lastOf = new Map<string, { changedAt: number; last: IcmpLast }>();

  constructor(
    addresses: readonly string[],
    o: Pick<FpingPoolOptions, 'intervalMs' | 'timeoutMs' | 'command' | 'netns' | 'now'>,
  ) {
    this.pool = new FpingPool(o);
    for (const a of new Set(addresses)) {
      const p = this.pool.prober(a);
      this.probers.set(a, p);
      p.start();
    }
  }

  last(address: string): IcmpLast | null {
    const p = this.probers.get(address);
    if (!p) return null;
    const kept = this.lastOf.get(address);
    if (kept && kept.changedAt === p.changedAt()) return kept.last;
    const samples = p.samples();
    let lastReplyAt: number | null = null;
    let lastSentAt: number | null = null;
    for (const s of samples) {
      if (lastSentAt === null || s.sentAt > lastSentAt) lastSentAt = s.sentAt;
      if (s.receivedAt !== null && (lastReplyAt === null || s.receivedAt > lastReplyAt))
        lastReplyAt = s.receivedAt;
    }
    const newest = Math.max(lastSentAt ?? 0, lastReplyAt ?? 0);
    if (newest > KEEP_MS) p.discardBefore(newest - KEEP_MS);
    const last = { lastReplyAt, lastSentAt };
    this.lastOf.set(address, { changedAt: p.changedAt(), last });
    return last;
  }

  /** The last stderr lines of fping (e.g. a missing binary or no permission for raw sockets). */
  get lastError(): string {
    return this.pool.stderrTail.trim().split('\n').at(-1) ?? '';
  }

  stop(): Promise<void> {
    return this.pool.stop();
  }
}
