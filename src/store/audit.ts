import { mkdirSync, readdirSync, unlinkSync } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { redisKeys } from './keys.ts';

/**
 * The audit log (standard spec 4.3: every operator action recorded and reviewed regularly).
 * Each entry is appended to a JSON-lines file per day (the durable, append-only record, rotated
 * daily and pruned after the retention) and to a capped Redis stream that the API queries.
 * Times are the system clock's, which the seeds require to be NTP-synchronised.
 */

/**
 * `received`: an API request about to be handled (written before anything acts on it; the
 * entry with the same requestId and one of the other outcomes says how it ended).
 */
export type AuditOutcome = 'received' | 'succeeded' | 'failed' | 'denied' | 'rejected';

export interface AuditEntry {
  time: string;
  /** Token id, `anonymous` (no valid token) or `controller` (keizokud's own actions). */
  actor: string;
  actorName: string;
  role: string | null;
  action: string;
  target: string | null;
  params: unknown;
  outcome: AuditOutcome;
  /** HTTP status for API requests. */
  status: number | null;
  message: string | null;
  requestId: string | null;
  remote: string | null;
}

export type AuditInput = Omit<AuditEntry, 'time' | 'status' | 'message' | 'requestId' | 'remote' | 'role'> &
  Partial<Pick<AuditEntry, 'status' | 'message' | 'requestId' | 'remote' | 'role'>>;

const SECRET_KEY = /token|secret|password|passphrase|authorization|cookie|private|api_?key|^key$|keyfile/i;

/** A copy with the values of secret-looking keys replaced, at any depth. */
export function redact(value: unknown, depth = 0): unknown {
  if (depth > 8) return '[too deep]';
  if (Array.isArray(value)) return value.slice(0, 100).map((v) => redact(v, depth + 1));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value as Record<string, unknown>).slice(0, 100))
      out[k] = SECRET_KEY.test(k) ? '[redacted]' : redact(v, depth + 1);
    return out;
  }
  if (typeof value === 'string' && value.length > 1000) return `${value.slice(0, 1000)}…`;
  return value;
}

export interface AuditQuery {
  sinceMs?: number;
  untilMs?: number;
  actor?: string;
  action?: string;
  target?: string;
  outcome?: AuditOutcome;
  limit: number;
}

export class AuditLog {
  private readonly streamKey: string;
  private chain: Promise<void> = Promise.resolve();
  private file: { day: string; handle: FileHandle } | null = null;
  private readonly dayFormat: Intl.DateTimeFormat;

  constructor(
    private readonly redis: Redis,
    prefix: string,
    private readonly o: { dir: string; retentionDays: number; streamMaxEntries: number; timeZone: string },
  ) {
    this.streamKey = redisKeys(prefix).audit;
    this.dayFormat = new Intl.DateTimeFormat('en-CA', {
      timeZone: o.timeZone,
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
    });
    mkdirSync(o.dir, { recursive: true, mode: 0o750 });
  }

  /** Appends one entry; resolves once it is in the day file and the stream. Entries keep their order. */
  record(input: AuditInput, now = new Date()): Promise<AuditEntry> {
    const entry: AuditEntry = {
      time: now.toISOString(),
      actor: input.actor,
      actorName: input.actorName,
      role: input.role ?? null,
      action: input.action,
      target: input.target,
      params: redact(input.params ?? null),
      outcome: input.outcome,
      status: input.status ?? null,
      message: input.message ?? null,
      requestId: input.requestId ?? null,
      remote: input.remote ?? null,
    };
    const line = JSON.stringify(entry);
    const done = this.chain.then(async () => {
      await this.append(this.dayFormat.format(now), line);
      await this.redis.xadd(this.streamKey, 'MAXLEN', '~', this.o.streamMaxEntries, '*', 'e', line);
    });
    // The chain goes on after a failure; the caller of this entry sees it.
    this.chain = done.catch(() => undefined);
    return done.then(() => entry);
  }

  private async append(day: string, line: string): Promise<void> {
    if (this.file?.day !== day) {
      await this.file?.handle.close();
      this.file = { day, handle: await open(join(this.o.dir, `audit-${day}.jsonl`), 'a', 0o640) };
      this.prune(day);
    }
    await this.file.handle.appendFile(`${line}\n`);
  }

  /** Deletes day files older than the retention (by the date in their name). */
  private prune(today: string): void {
    const cutoff = Date.parse(`${today}T00:00:00Z`) - this.o.retentionDays * 86_400_000;
    for (const f of readdirSync(this.o.dir)) {
      const m = /^audit-(\d{4}-\d{2}-\d{2})\.jsonl$/.exec(f);
      if (m && Date.parse(`${m[1]}T00:00:00Z`) < cutoff) unlinkSync(join(this.o.dir, f));
    }
  }

  /** Newest first, filtered; scans at most 20,000 stream entries. */
  async query(q: AuditQuery): Promise<AuditEntry[]> {
    const end = q.untilMs !== undefined ? String(q.untilMs) : '+';
    const start = q.sinceMs !== undefined ? String(q.sinceMs) : '-';
    const out: AuditEntry[] = [];
    let cursor = end;
    for (let scanned = 0; scanned < 20_000 && out.length < q.limit; ) {
      const batch = (await this.redis.xrevrange(this.streamKey, cursor, start, 'COUNT', 500)) as [
        string,
        string[],
      ][];
      if (batch.length === 0) break;
      for (const [, fields] of batch) {
        const e = JSON.parse(fields[1]!) as AuditEntry;
        if (matches(e, q)) out.push(e);
        if (out.length >= q.limit) break;
      }
      scanned += batch.length;
      cursor = `(${batch[batch.length - 1]![0]}`;
    }
    return out;
  }

  async close(): Promise<void> {
    await this.chain;
    await this.file?.handle.close();
    this.file = null;
  }
}

function matches(e: AuditEntry, q: AuditQuery): boolean {
  return (
    (q.actor === undefined || e.actor === q.actor) &&
    (q.action === undefined || e.action === q.action) &&
    (q.target === undefined || e.target === q.target) &&
    (q.outcome === undefined || e.outcome === q.outcome)
  );
}
