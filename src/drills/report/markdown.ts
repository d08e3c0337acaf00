import {
  STUDY_COLUMNS as C,
  fmtCount,
  fmtDuration,
  fmtMs,
  fmtRate,
  fmtRtt,
  fmtSession,
  fmtTime,
  escapeMarkdown as md,
} from './format.ts';
import type { DrillFailover, DrillReport } from './model.ts';

export interface RenderOptions {
  /** Time zone of the times shown (default Asia/Tokyo). */
  timeZone?: string;
}

const row = (cells: readonly string[]): string => `| ${cells.join(' | ')} |`;
const head = (cells: readonly string[], align: readonly ('l' | 'r')[]): string[] => [
  row(cells),
  row(align.map((a) => (a === 'r' ? '---:' : '---'))),
];
const both = (c: { ja: string; en: string }): string => `${c.ja} ${c.en}`;

/** Every VM the failover restarted from the fenced host, with its RTO (from its failover record). */
function failoverSection(f: DrillFailover, tz: string): string[] {
  const basis = f.failureBasis === 'last-seen-up' ? 'the host last seen up' : 'the host first seen not up';
  const out = [
    `## Failover of ${md(f.host)}`,
    '',
    `Failover ${md(f.id)} (${md(f.status)}): RTO from ${basis} at ${fmtTime(f.failureAt, tz).slice(11, 23)} to the probe's first reply.`,
    '',
    ...head(
      ['VM', 'priority', 'tier', 'to', 'status', 'answering', 'RTO (ms)', '通信断 outage (ms)'],
      ['l', 'r', 'l', 'l', 'l', 'l', 'r', 'r'],
    ),
  ];
  for (const v of f.vms)
    out.push(
      row([
        md(v.vm),
        v.priority === null ? '–' : String(v.priority),
        md(v.tier ?? '–'),
        md(v.to ?? '–'),
        md(v.status),
        v.answeringAt === null ? '–' : fmtTime(v.answeringAt, tz).slice(11, 23),
        fmtMs(v.rtoMs),
        fmtMs(v.outageMs),
      ]),
    );
  if (f.vms.length === 0) out.push('', 'No VM was restarted.');
  out.push('');
  return out;
}

/** The report as GitHub-flavoured Markdown; every string that came from input is escaped. */
export function renderMarkdown(report: DrillReport, o: RenderOptions = {}): string {
  const tz = o.timeZone ?? 'Asia/Tokyo';
  const s = report.summary;
  const out: string[] = [];
  const verdict = s.overall.status === 'pass' ? 'PASS' : 'FAIL';
  out.push(`# Drill report: ${md(report.scenario)}, ${md(report.vms.join(', '))} — ${verdict}`, '');
  out.push(...head(['', ''], ['l', 'l']));
  out.push(row(['Result', `**${verdict}**: ${md(s.overall.reason)}`]));
  out.push(row(['Scenario', md(report.scenario)]));
  out.push(row([report.vms.length === 1 ? 'VM' : 'VMs', md(report.vms.join(', '))]));
  out.push(row(['Tier', `${md(report.tier.id)}: ${md(report.tier.label)} (${md(report.tier.labelJa)})`]));
  out.push(row(['Started', `${fmtTime(report.startedAt, tz)} (${md(tz)})`]));
  out.push(
    row(['Ended', `${fmtTime(report.endedAt, tz)}, after ${fmtDuration(report.endedAt - report.startedAt)}`]),
  );
  out.push(row(['Drill', md(report.id)]), '');

  const params = Object.entries(report.parameters);
  if (params.length > 0) {
    out.push('## Parameters', '');
    out.push(...head(['parameter', 'value'], ['l', 'l']));
    for (const [k, v] of params) out.push(row([md(k), md(v === null ? '–' : String(v))]));
    out.push('');
  }

  out.push('## Per mechanism', '');
  out.push(
    ...head(
      [
        'mechanism',
        'moves',
        both(C.sent),
        both(C.lost),
        both(C.lossRate),
        both(C.rttMin),
        both(C.rttMax),
        both(C.rttAvg),
        both(C.outageMax),
        both(C.outageP95),
        'objective (ms)',
        'pass',
        'fail',
        'not judged',
      ],
      ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
    ),
  );
  for (const m of s.mechanisms)
    out.push(
      row([
        md(m.mechanism),
        fmtCount(m.moves),
        fmtCount(m.sent),
        fmtCount(m.lost),
        fmtRate(m.lossRate),
        fmtRtt(m.rttMinMs),
        fmtRtt(m.rttMaxMs),
        fmtRtt(m.rttAvgMs),
        fmtMs(m.outageMaxMs),
        fmtMs(m.outageP95Ms),
        fmtMs(m.objectiveMs),
        fmtCount(m.pass),
        fmtCount(m.fail),
        fmtCount(m.notJudged),
      ]),
    );
  if (s.mechanisms.length === 0) out.push('', 'No moves.');
  out.push('');

  if (report.moves.length > 0) {
    out.push('## Moves', '');
    out.push(
      ...head(
        [
          '#',
          'VM',
          'mechanism',
          'from → to',
          'started',
          'total (ms)',
          'libvirt downtime (ms)',
          both(C.sent),
          both(C.lost),
          both(C.lossRate),
          'RTT min / avg / max (ms)',
          '通信断 outage (ms)',
          'session',
          'verdict',
        ],
        ['r', 'l', 'l', 'l', 'l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'l', 'l'],
      ),
    );
    for (const m of report.moves) {
      const p = m.probe;
      out.push(
        row([
          String(m.index),
          md(m.vm),
          md(m.mechanism),
          `${md(m.from)} → ${md(m.to)}`,
          fmtTime(m.startedMs, tz).slice(11),
          fmtMs(m.totalMs),
          fmtMs(m.libvirtDowntimeMs),
          p ? fmtCount(p.sent) : '–',
          p ? fmtCount(p.lost) : '–',
          p ? fmtRate(p.lossRate) : '–',
          p ? `${fmtRtt(p.rttMinMs)} / ${fmtRtt(p.rttAvgMs)} / ${fmtRtt(p.rttMaxMs)}` : '–',
          p ? fmtMs(p.outageMs) : '–',
          fmtSession(m.sessionSurvived),
          `**${md(m.verdict.status)}**`,
        ]),
      );
    }
    out.push('', '### Verdicts', '');
    for (const m of report.moves) out.push(`${m.index}. ${md(m.verdict.reason)}`);
    out.push('');
  }
  if (report.failover) out.push(...failoverSection(report.failover, tz));
  return `${out.join('\n')}\n`;
}
