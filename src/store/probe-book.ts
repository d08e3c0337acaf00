import type { Redis } from 'ioredis';
import { type RedisKeys, redisKeys } from './keys.ts';

/**
 * The probe agents' registry and the outages they report (availability, 稼働率). Each agent's
 * outages are kept under its own key, so that one agent's reports can never push out
 * another's; every read is bounded by time and by count. Keys (store/keys.ts): the registry
 * (`probes`, `probesSeen`: pruned after `registrationTtlMs`), each agent's outages
 * (`probeOutages`: `retentionMs`, `maxPerProbe`) and who reported (`outageReporters`).
 */

export interface ProbeRegistration {
  name: string;
  site: string;
  /** The agent's origin (`http://host:port`), where jobs ask it for windows. */
  url: string;
  intervalMs: number;
  seenAt: number;
}

/** One outage as an agent reports it. */
export interface OutageReport {
  target: string;
  addresses: string[];
  startMs: number;
  endMs: number;
  outageMs: number;
  lost: number;
}

export interface OutageEvent extends OutageReport {
  probe: string;
  site: string;
}

export interface ProbeBookOptions {
  /** A registration counts as live this long (default 60 s). */
  liveMs?: number;
  /** Registrations not renewed for this long are deleted (default 10 min). */
  registrationTtlMs?: number;
  /** Outages kept this long after they started (default 400 days: this month and last year's). */
  retentionMs?: number;
  /** How long before now a reported outage may have started (default 7 days). */
  maxReportAgeMs?: number;
  /** How far ahead of keizokud's clock an agent's times may be (default 60 s). */
  clockSkewMs?: number;
  /** Outages kept per agent (default 100,000). */
  maxPerProbe?: number;
  /** Outages read per agent for one query (default 50,000); beyond, the answer is `truncated`. */
  readLimitPerProbe?: number;
  /** Live agents listed at most (default 100). */
  maxLive?: number;
}

/** Why an outage report is not taken, or null when it is. */
export type OutageCheck = string | null;

const READ_BATCH = 5_000;

function parseOutage(raw: string): OutageEvent | null {
  try {
    return JSON.parse(raw) as OutageEvent;
  } catch {
    return null;
  }
}

export class ProbeBook {
  readonly liveMs: number;
  readonly registrationTtlMs: number;
  readonly retentionMs: number;
  readonly maxReportAgeMs: number;
  readonly clockSkewMs: number;
  readonly maxPerProbe: number;
  readonly readLimitPerProbe: number;
  readonly maxLive: number;
  private readonly keys: RedisKeys;

  constructor(
    private readonly redis: Redis,
    prefix: string,
    o: ProbeBookOptions = {},
  ) {
    this.keys = redisKeys(prefix);
    this.liveMs = o.liveMs ?? 60_000;
    this.registrationTtlMs = o.registrationTtlMs ?? 600_000;
    this.retentionMs = o.retentionMs ?? 400 * 86_400_000;
    this.maxReportAgeMs = o.maxReportAgeMs ?? 7 * 86_400_000;
    this.clockSkewMs = o.clockSkewMs ?? 60_000;
    this.maxPerProbe = o.maxPerProbe ?? 100_000;
    this.readLimitPerProbe = o.readLimitPerProbe ?? 50_000;
    this.maxLive = o.maxLive ?? 100;
  }

  private get regKey() {
    return this.keys.probes;
  }
  private get seenKey() {
    return this.keys.probesSeen;
  }
  private outagesKey(probe: string) {
    return this.keys.probeOutages(probe);
  }
  private get reportersKey() {
    return this.keys.outageReporters;
  }

  /** Records (or renews) a registration and drops those not renewed within the TTL. */
  async register(r: Omit<ProbeRegistration, 'seenAt'>, now = Date.now()): Promise<void> {
    const stale = await this.redis.zrangebyscore(this.seenKey, '-inf', `(${now - this.registrationTtlMs}`);
    const m = this.redis.multi();
    if (stale.length > 0) {
      m.hdel(this.regKey, ...stale);
      m.zrem(this.seenKey, ...stale);
    }
    m.hset(this.regKey, r.name, JSON.stringify({ ...r, seenAt: now }));
    m.zadd(this.seenKey, now, r.name);
    await m.exec();
  }

  /** Registrations renewed within `liveMs`, by name (at most `maxLive`). */
  async live(now = Date.now()): Promise<ProbeRegistration[]> {
    const names = await this.redis.zrangebyscore(
      this.seenKey,
      `(${now - this.liveMs}`,
      '+inf',
      'LIMIT',
      0,
      this.maxLive,
    );
    if (names.length === 0) return [];
    const raws = await this.redis.hmget(this.regKey, ...names);
    const out: ProbeRegistration[] = [];
    for (const raw of raws) {
      if (raw === null) continue;
      try {
        out.push(JSON.parse(raw) as ProbeRegistration);
      } catch {
        // a damaged entry is left out; the agent's next registration replaces it
      }
    }
    return out.sort((a, b) => a.name.localeCompare(b.name));
  }

  /** Why keizokud does not take this outage (times against its clock and retention), or null. */
  check(e: Pick<OutageReport, 'startMs' | 'endMs'>, now = Date.now()): OutageCheck {
    if (e.endMs < e.startMs) return `endMs (${e.endMs}) is before startMs (${e.startMs})`;
    if (e.endMs > now + this.clockSkewMs)
      return `endMs (${e.endMs}) is in the future (keizokud's clock: ${now}); check the agent's clock`;
    if (e.startMs < now - this.maxReportAgeMs)
      return `startMs (${e.startMs}) is more than ${Math.round(this.maxReportAgeMs / 86_400_000)} days ago`;
    return null;
  }

  /** Stores one agent's outages (checked with `check` first), trimmed to its own quota. */
  async addOutages(probe: string, site: string, events: OutageReport[], now = Date.now()): Promise<void> {
    if (events.length === 0) return;
    const key = this.outagesKey(probe);
    const m = this.redis.multi();
    for (const e of events) {
      const stored: OutageEvent = {
        probe,
        site,
        target: e.target,
        addresses: e.addresses,
        startMs: e.startMs,
        endMs: e.endMs,
        outageMs: e.outageMs,
        lost: e.lost,
      };
      // The same outage sent twice (a retried push) is one member.
      m.zadd(key, e.startMs, JSON.stringify(stored));
    }
    m.zremrangebyscore(key, '-inf', `(${now - this.retentionMs}`);
    m.zremrangebyrank(key, 0, -(this.maxPerProbe + 1));
    // An agent that stops reporting leaves nothing behind once its outages are past retention.
    m.pexpire(key, this.retentionMs);
    m.zadd(this.reportersKey, now, probe);
    m.zremrangebyscore(this.reportersKey, '-inf', `(${now - this.retentionMs}`);
    await m.exec();
  }

  /**
   * Outage windows per target from every agent, for outages overlapping [fromMs, toMs].
   * Reads by start time only the range that can overlap (an outage is at most
   * `maxReportAgeMs + clockSkewMs` long), at most `readLimitPerProbe` entries per agent, in
   * batches; `truncated` when an agent had more.
   */
  async outagesBetween(
    fromMs: number,
    toMs: number,
  ): Promise<{ byTarget: Map<string, { startMs: number; endMs: number }[]>; truncated: boolean }> {
    const byTarget = new Map<string, { startMs: number; endMs: number }[]>();
    let truncated = false;
    // An agent that last reported before the period cannot have an outage ending in it.
    const probes = await this.redis.zrangebyscore(this.reportersKey, fromMs - this.clockSkewMs, '+inf');
    const lowest = String(fromMs - this.maxReportAgeMs - this.clockSkewMs);
    for (const probe of probes) {
      const key = this.outagesKey(probe);
      // Pages of one range by offset; an outage added meanwhile may be read twice, which the
      // union of windows absorbs.
      for (let read = 0; ; ) {
        const want = Math.min(READ_BATCH, this.readLimitPerProbe - read);
        if (want <= 0) {
          if ((await this.redis.zcount(key, lowest, String(toMs))) > read) truncated = true;
          break;
        }
        const rows = await this.redis.zrangebyscore(key, lowest, String(toMs), 'LIMIT', read, want);
        for (const raw of rows) {
          const e = parseOutage(raw);
          if (e === null || e.endMs < fromMs || e.startMs > toMs) continue;
          if (!byTarget.has(e.target)) byTarget.set(e.target, []);
          byTarget.get(e.target)!.push({ startMs: e.startMs, endMs: e.endMs });
        }
        read += rows.length;
        if (rows.length < want) break;
      }
    }
    return { byTarget, truncated };
  }
}
