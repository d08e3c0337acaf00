import type { MoveStatus } from '../../core/tiers.ts';
import { renderTimelineSvg } from './chart.ts';
import {
  STUDY_COLUMNS as C,
  DASH,
  escapeHtml as esc,
  fmtCount,
  fmtDuration,
  fmtMs,
  fmtRate,
  fmtRtt,
  fmtSession,
  fmtTime,
} from './format.ts';
import type { RenderOptions } from './markdown.ts';
import type { DrillFailover, DrillReport } from './model.ts';

/**
 * The report as one self-contained HTML page: inline CSS and SVG, no scripts, nothing fetched.
 * Every string that came from input is escaped.
 */

const CSS = `
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; padding: 24px 32px 40px; background: #f8fafc; color: #0f172a;
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", "Noto Sans", "Noto Sans CJK JP",
  "Hiragino Sans", "Yu Gothic", Meiryo, "IPAGothic", "IPAexGothic", sans-serif; }
header { display: flex; align-items: flex-start; justify-content: space-between; gap: 24px;
  padding-bottom: 16px; border-bottom: 1px solid #cbd5e1; }
h1 { font-size: 22px; margin: 0 0 10px; }
h2 { font-size: 17px; margin: 28px 0 10px; }
.meta { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; margin: 0; }
.meta dt { color: #475569; }
.meta dd { margin: 0; }
.badge { display: inline-block; padding: 10px 22px; border-radius: 8px; color: #fff;
  font-size: 26px; font-weight: 700; letter-spacing: .06em; }
.badge.pass { background: #15803d; } .badge.fail { background: #b91c1c; }
.verdict-box { text-align: right; max-width: 440px; }
.verdict-box p { margin: 8px 0 0; color: #334155; }
.tag { display: inline-block; padding: 1px 7px; border-radius: 4px; font-size: 12px; font-weight: 600;
  color: #fff; white-space: nowrap; }
.tag.pass { background: #15803d; } .tag.fail { background: #b91c1c; }
.tag.no-objective, .tag.unmeasured { background: #a16207; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; background: #fff; width: 100%; }
th, td { border: 1px solid #cbd5e1; padding: 4px 8px; vertical-align: top; }
th { background: #e2e8f0; font-weight: 600; text-align: center; font-size: 13px; }
th .ja { display: block; font-size: 13px; white-space: nowrap; }
th .en { display: block; font-size: 11px; font-weight: 500; color: #475569; line-height: 1.25; }
td.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.nowrap { white-space: nowrap; }
td.reason { font-size: 12px; line-height: 1.35; color: #7f1d1d; }
.moves td, .moves th { padding: 3px 6px; }
tr.fail td { background: #fef2f2; }
tr.unjudged td { background: #fefce8; }
.params { width: auto; }
.chart { background: #fff; border: 1px solid #cbd5e1; padding: 8px; }
.chart svg { display: block; width: 100%; height: auto; }
svg .tick { font-size: 12px; fill: #334155; }
svg .axis { font-size: 13px; fill: #0f172a; }
svg .legend text { font-size: 12px; fill: #0f172a; }
svg .move-label { font-size: 11px; fill: #1d4ed8; font-weight: 600; }
svg .rtt { fill: none; stroke: #2563eb; stroke-width: 1.4; }
svg .rtt-point { fill: #2563eb; }
svg .lost { stroke: #dc2626; stroke-width: 2; }
svg .outage { fill: #dc2626; fill-opacity: .22; }
svg .move-span { fill: #94a3b8; fill-opacity: .12; }
svg .move-start { stroke: #1d4ed8; stroke-width: 1; }
svg .move-end { stroke: #475569; stroke-width: 1; stroke-dasharray: 4 3; }
footer { margin-top: 28px; color: #64748b; font-size: 12px; }
`;

const th = (c: { ja: string; en: string }) =>
  `<th><span class="ja">${c.ja}</span><span class="en">${c.en}</span></th>`;
const thEn = (en: string, ja = '') => (ja ? th({ ja, en }) : `<th><span class="ja">${en}</span></th>`);
const LIMIT_SIGN: Record<MoveStatus, string> = {
  pass: '≤',
  fail: '&gt;',
  'no-objective': '',
  unmeasured: 'limit',
};
const num = (s: string) => `<td class="n">${s}</td>`;

/** Every VM the failover restarted from the fenced host, with its RTO (its failover record). */
function failoverHtml(f: DrillFailover, tz: string): string[] {
  const basis = f.failureBasis === 'last-seen-up' ? 'the host last seen up' : 'the host first seen not up';
  const heads = ['VM', 'priority', 'tier', 'to', 'status', 'answering']
    .map((h) => thEn(h))
    .concat(thEn('RTO (ms)', '復旧時間'), th({ ja: '通信断', en: 'outage (ms)' }));
  const out = [
    `<h2>Failover of ${esc(f.host)} <span lang="ja">フェイルオーバー</span></h2>`,
    `<p>Failover ${esc(f.id)} (${esc(f.status)}): RTO from ${basis} at ${fmtTime(f.failureAt, tz).slice(11, 23)} to the probe's first reply.</p>`,
    '<div class="scroll"><table class="moves">',
    `<thead><tr>${heads.join('')}</tr></thead>`,
    '<tbody>',
  ];
  for (const v of f.vms)
    out.push(
      `<tr${v.status === 'answering' ? '' : ' class="fail"'}>${[
        `<td class="nowrap">${esc(v.vm)}</td>`,
        num(v.priority === null ? DASH : String(v.priority)),
        `<td class="nowrap">${esc(v.tier ?? DASH)}</td>`,
        `<td class="nowrap">${esc(v.to ?? DASH)}</td>`,
        `<td class="nowrap">${esc(v.status)}</td>`,
        num(v.answeringAt === null ? DASH : fmtTime(v.answeringAt, tz).slice(11, 23)),
        num(fmtMs(v.rtoMs)),
        num(fmtMs(v.outageMs)),
      ].join('')}</tr>`,
    );
  if (f.vms.length === 0) out.push(`<tr><td colspan="${heads.length}">No VM was restarted.</td></tr>`);
  out.push('</tbody></table></div>');
  return out;
}

export function renderHtml(report: DrillReport, o: RenderOptions = {}): string {
  const tz = o.timeZone ?? 'Asia/Tokyo';
  const s = report.summary;
  const status = s.overall.status;
  const title = `Drill ${report.scenario}: ${report.vms.join(', ')}`;
  const out: string[] = [];
  out.push('<!DOCTYPE html>', '<html lang="en">', '<head>', '<meta charset="utf-8">');
  out.push('<meta name="viewport" content="width=device-width, initial-scale=1">');
  out.push(`<title>${esc(title)} — ${status.toUpperCase()}</title>`);
  out.push(`<style>${CSS}</style>`, '</head>', '<body>');

  out.push('<header>', '<div>');
  out.push(`<h1>Drill report: ${esc(report.scenario)}</h1>`);
  out.push('<dl class="meta">');
  const meta: [string, string][] = [
    [report.vms.length === 1 ? 'VM' : 'VMs', esc(report.vms.join(', '))],
    [
      'Tier',
      `${esc(report.tier.id)}: ${esc(report.tier.label)} <span lang="ja">(${esc(report.tier.labelJa)})</span>`,
    ],
    ['Started', `${fmtTime(report.startedAt, tz)} <span class="tz">(${esc(tz)})</span>`],
    ['Ended', `${fmtTime(report.endedAt, tz)}, after ${fmtDuration(report.endedAt - report.startedAt)}`],
    ['Moves', fmtCount(report.moves.length)],
    ['Drill', esc(report.id)],
  ];
  for (const [k, v] of meta) out.push(`<dt>${k}</dt><dd>${v}</dd>`);
  out.push('</dl>', '</div>');
  out.push('<div class="verdict-box">');
  out.push(`<span class="badge ${status}">${status.toUpperCase()}</span>`);
  out.push(`<p>${esc(s.overall.reason)}</p>`, '</div>', '</header>');

  out.push('<h2>Per mechanism <span lang="ja">機構別</span></h2>', '<div class="scroll"><table>');
  out.push(
    `<thead><tr>${thEn('mechanism', '機構')}${thEn('moves', '移動回数')}${th(C.sent)}${th(C.lost)}${th(C.lossRate)}${th(
      C.rttMin,
    )}${th(C.rttMax)}${th(C.rttAvg)}${th(C.outageMax)}${th(C.outageP95)}${thEn('objective (ms)', '目標')}${thEn(
      'pass',
      '合格',
    )}${thEn('fail', '不合格')}${thEn('not judged', '判定不能')}${thEn('sessions kept', 'セッション維持')}</tr></thead>`,
  );
  out.push('<tbody>');
  for (const m of s.mechanisms)
    out.push(
      `<tr class="${m.fail > 0 ? 'fail' : ''}"><td class="nowrap">${esc(m.mechanism)}</td>${num(fmtCount(m.moves))}${num(
        fmtCount(m.sent),
      )}${num(fmtCount(m.lost))}${num(fmtRate(m.lossRate))}${num(fmtRtt(m.rttMinMs))}${num(fmtRtt(m.rttMaxMs))}${num(
        fmtRtt(m.rttAvgMs),
      )}${num(fmtMs(m.outageMaxMs))}${num(fmtMs(m.outageP95Ms))}${num(fmtMs(m.objectiveMs))}${num(
        fmtCount(m.pass),
      )}${num(fmtCount(m.fail))}${num(fmtCount(m.notJudged))}${num(
        m.sessionsChecked ? `${m.sessionsSurvived} / ${m.sessionsChecked}` : DASH,
      )}</tr>`,
    );
  if (s.mechanisms.length === 0) out.push('<tr><td colspan="15">No moves.</td></tr>');
  out.push('</tbody></table></div>');

  out.push('<h2>Timeline <span lang="ja">時系列</span></h2>');
  out.push(`<div class="chart">${renderTimelineSvg(report)}</div>`);

  // One VM: its name is in the header, not repeated on every row.
  const vmColumn = report.vms.length !== 1 || report.moves.some((m) => m.vm !== report.vms[0]);
  const moveHeads = [
    thEn('#'),
    ...(vmColumn ? [thEn('VM')] : []),
    thEn('mechanism', '機構'),
    thEn('from → to', '移動元 → 先'),
    thEn('started', '開始'),
    thEn('total (ms)', '所要時間'),
    thEn('libvirt downtime (ms)', '停止時間'),
    th(C.sent),
    th(C.lost),
    th(C.lossRate),
    thEn('RTT min / avg / max (ms)', 'RTT'),
    thEn('outage (ms)', '通信断'),
    thEn('session', 'セッション'),
    thEn('verdict', '判定'),
  ];
  out.push('<h2>Moves <span lang="ja">移動ごと</span></h2>', '<div class="scroll"><table class="moves">');
  out.push(`<thead><tr>${moveHeads.join('')}</tr></thead>`, '<tbody>');
  for (const m of report.moves) {
    const p = m.probe;
    const v = m.verdict;
    const cells = [
      num(String(m.index)),
      ...(vmColumn ? [`<td class="nowrap">${esc(m.vm)}</td>`] : []),
      `<td class="nowrap">${esc(m.mechanism)}</td>`,
      `<td class="nowrap">${esc(m.from)} → ${esc(m.to)}</td>`,
      num(fmtTime(m.startedMs, tz).slice(11, 23)),
      num(fmtMs(m.totalMs)),
      num(fmtMs(m.libvirtDowntimeMs)),
      num(p ? fmtCount(p.sent) : DASH),
      num(p ? fmtCount(p.lost) : DASH),
      num(p ? fmtRate(p.lossRate) : DASH),
      num(p ? `${fmtRtt(p.rttMinMs)} / ${fmtRtt(p.rttAvgMs)} / ${fmtRtt(p.rttMaxMs)}` : DASH),
      num(p ? fmtMs(p.outageMs) : DASH),
      `<td class="nowrap">${fmtSession(m.sessionSurvived)}</td>`,
      `<td class="nowrap" title="${esc(v.reason)}"><span class="tag ${esc(v.status)}">${esc(
        v.status,
      )}</span> ${v.limitMs === null ? '' : `${LIMIT_SIGN[v.status]} ${fmtMs(v.limitMs)} ms`}</td>`,
    ];
    const cls = v.status === 'pass' ? '' : v.status === 'fail' ? ' class="fail"' : ' class="unjudged"';
    out.push(`<tr${cls}>${cells.join('')}</tr>`);
    // Only a move that did not pass gets its reason spelled out under it.
    if (v.status !== 'pass')
      out.push(
        `<tr${cls}><td></td><td class="reason" colspan="${moveHeads.length - 1}">${esc(v.reason)}</td></tr>`,
      );
  }
  if (report.moves.length === 0) out.push(`<tr><td colspan="${moveHeads.length}">No moves.</td></tr>`);
  out.push('</tbody></table></div>');
  if (report.failover) out.push(...failoverHtml(report.failover, tz));

  const params = Object.entries(report.parameters);
  if (params.length > 0) {
    out.push('<h2>Parameters <span lang="ja">条件</span></h2>', '<table class="params"><tbody>');
    for (const [k, val] of params)
      out.push(`<tr><th>${esc(k)}</th><td>${esc(val === null ? DASH : String(val))}</td></tr>`);
    out.push('</tbody></table>');
  }
  out.push(
    `<footer>keizoku drill report ${esc(report.id)}. Outage (通信断), loss and RTT as measured by the probe from outside the hosts; times in ${esc(
      tz,
    )}.</footer>`,
  );
  out.push('</body>', '</html>', '');
  return out.join('\n');
}
