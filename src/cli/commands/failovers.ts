import type { Command } from 'commander';
import type { FailoverRecord } from '../../core/ha/timeline.ts';
import { CliError, EXIT } from '../client.ts';
import { clientFrom, enc, jsonFlag } from '../context.ts';
import { emit, table } from '../output.ts';

/**
 * `keizoku ha failovers` (one line per host failure) and `keizoku ha failover ID` (its
 * timeline, and per VM: priority, from, to, restart start, first probe reply, RTO, outage).
 */

export interface FailoverSummaryView {
  id: string;
  host: string;
  status: string;
  failureAt: number;
  detectedAt: number;
  fencedAt: number | null;
  endedAt: number | null;
  vms: number;
  answering: number;
  rtoMaxMs: number | null;
  reason: string | null;
}

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
/** A time as seconds after the failure: `+9.6s`. */
const after = (ms: number | null, t0: number) => (ms === null ? null : `+${((ms - t0) / 1000).toFixed(1)}s`);
const sec = (ms: number | null) => (ms === null ? null : (ms / 1000).toFixed(1));

export function formatFailovers(list: readonly FailoverSummaryView[]): string {
  if (list.length === 0) return 'no failover recorded\n';
  return table(
    ['ID', 'HOST', 'STATUS', 'FAILURE', 'FENCED', 'VMS', 'ANSWERING', 'MAX RTO S'],
    list.map((f) => [
      f.id,
      f.host,
      f.status,
      iso(f.failureAt),
      after(f.fencedAt, f.failureAt),
      f.vms,
      f.answering,
      sec(f.rtoMaxMs),
    ]),
  );
}

export function formatFailover(r: FailoverRecord): string {
  const t0 = r.failureAt;
  const basis = r.failureBasis === 'last-seen-up' ? 'last seen up' : 'first seen not up';
  const out = [
    `failover ${r.id}: host ${r.host}, ${r.status}${r.reason ? ` (${r.reason})` : ''}`,
    `failure ${iso(t0)} (${basis}); times below are after it`,
    `detected ${after(r.detectedAt, t0)}, declared down ${after(r.declaredDownAt, t0) ?? '-'}, fenced ${after(r.fence.confirmedAt, t0) ?? '-'} (method ${r.fence.method}${r.fence.evidence ? `: ${r.fence.evidence}` : ''}${r.fence.ref ? `, by ${r.fence.ref}` : ''})`,
  ];
  if (r.fence.errors.length > 0) out.push(...r.fence.errors.map((e) => `  ${e}`));
  out.push(
    table(
      [
        'VM',
        'PRIORITY',
        'FROM',
        'TO',
        'STATUS',
        'PLACED',
        'STARTED',
        'RUNNING',
        'ANSWERING',
        'RTO S',
        'OUTAGE MS',
      ],
      r.vms.map((v) => [
        v.vm,
        v.priority,
        v.from,
        v.to,
        v.status,
        after(v.placedAt, t0),
        after(v.startedAt, t0),
        after(v.runningAt, t0),
        after(v.answeringAt, t0),
        sec(v.rtoMs),
        v.probe ? Math.round(v.probe.outageMs) : null,
      ]),
    ).trimEnd(),
  );
  for (const v of r.vms) {
    for (const f of v.failed) out.push(`  ${v.vm}: restart on ${f.to} failed: ${f.error}`);
    if (v.note) out.push(`  ${v.vm}: ${v.note}`);
  }
  out.push('timeline:');
  for (const e of r.events) out.push(`  ${after(e.at, t0)?.padStart(8)}  ${e.text}`);
  return `${out.join('\n')}\n`;
}

export function failoverCommands(ha: Command): void {
  ha.command('failovers')
    .description('failover records, newest first: one per host failure, its outcome and longest RTO')
    .option('--host <name>', 'only this host')
    .option('--limit <n>', 'at most this many (1-500)', '20')
    .action(async (o: { host?: string; limit: string }, cmd: Command) => {
      const limit = Number(o.limit);
      if (!Number.isInteger(limit) || limit < 1 || limit > 500)
        throw new CliError(`--limit "${o.limit}": expected a whole number from 1 to 500`, EXIT.usage);
      const q = new URLSearchParams({ limit: String(limit), ...(o.host ? { host: o.host } : {}) });
      const r = await clientFrom(cmd).call<{ failovers: FailoverSummaryView[] }>(
        'GET',
        `/v1/ha/failovers?${q}`,
      );
      emit({ json: jsonFlag(cmd) }, r, () => formatFailovers(r.failovers));
    });
  ha.command('failover')
    .description('one failover: its timeline and per VM where it went, when it answered, its RTO')
    .argument('<id>', 'failover id (from `keizoku ha failovers`)')
    .action(async (id: string, _o, cmd: Command) => {
      const r = await clientFrom(cmd).call<FailoverRecord>('GET', `/v1/ha/failovers/${enc(id)}`);
      emit({ json: jsonFlag(cmd) }, r, () => formatFailover(r));
    });
}
