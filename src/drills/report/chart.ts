import { mergeWindows } from '../../core/tiers.ts';
import { escapeHtml as esc } from './format.ts';
import type { DrillReport } from './model.ts';

/**
 * The timeline of a drill as inline SVG: RTT of every probe (a line, with points when few),
 * lost probes marked under the plot, outage windows shaded, each move's start and end marked.
 * Many probes are reduced to the lowest and highest RTT per pixel column, so a drill of
 * 100,000 pings draws as fast as one of 1,000 and looks the same.
 */

export interface ChartOptions {
  width?: number;
  height?: number;
}

const NICE = [1, 2, 2.5, 5, 10];

/** A round step near span / count: 1, 2, 2.5 or 5 times a power of ten. */
export function niceStep(span: number, count: number): number {
  if (!(span > 0)) return 1;
  const raw = span / count;
  const pow = 10 ** Math.floor(Math.log10(raw));
  const f = raw / pow;
  return (NICE.find((n) => n >= f) ?? 10) * pow;
}

const r1 = (v: number) => Math.round(v * 10) / 10;

function timeLabel(ms: number, step: number): string {
  if (step >= 1000) {
    const s = ms / 1000;
    return `${Number.isInteger(s) ? s : s.toFixed(step % 1000 === 0 ? 0 : 1)} s`;
  }
  return `${Math.round(ms)} ms`;
}

export function renderTimelineSvg(report: DrillReport, o: ChartOptions = {}): string {
  const W = o.width ?? 1200;
  const H = o.height ?? 400;
  const m = { left: 70, right: 20, top: 56, bottom: 62 };
  const pw = W - m.left - m.right;
  const ph = H - m.top - m.bottom;
  const times = [
    report.startedAt,
    report.endedAt,
    ...(report.rtt.length ? [report.rtt[0]!.tMs, report.rtt[report.rtt.length - 1]!.tMs] : []),
  ];
  const t0 = Math.min(...times);
  const t1 = Math.max(...times, t0 + 1);
  const x = (t: number) => m.left + ((t - t0) / (t1 - t0)) * pw;
  const top = report.rtt.reduce((a, p) => (p.rttMs === null ? a : Math.max(a, p.rttMs)), 1);
  const yStep = niceStep(top, 5);
  const yMax = Math.max(yStep, Math.ceil(top / yStep) * yStep);
  const y = (v: number) => m.top + ph - (v / yMax) * ph;
  const parts: string[] = [];
  const el = (s: string) => parts.push(s);

  el(
    `<svg class="timeline" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="RTT and outages over the drill">`,
  );
  el(`<title>RTT per probe over drill ${esc(report.id)}, outages shaded, moves marked</title>`);
  el(`<rect x="${m.left}" y="${m.top}" width="${pw}" height="${ph}" fill="#fff" stroke="#cbd5e1"/>`);

  // Grid and axes.
  for (let v = 0; v <= yMax + yStep / 1e6; v += yStep) {
    const yy = r1(y(v));
    el(`<line x1="${m.left}" x2="${m.left + pw}" y1="${yy}" y2="${yy}" stroke="#e2e8f0"/>`);
    el(
      `<text x="${m.left - 8}" y="${yy + 4}" text-anchor="end" class="tick">${Number(v.toPrecision(6))}</text>`,
    );
  }
  const xStep = niceStep(t1 - t0, 10);
  for (let t = 0; t <= t1 - t0 + xStep / 1e6; t += xStep) {
    const xx = r1(x(t0 + t));
    el(`<line x1="${xx}" x2="${xx}" y1="${m.top + ph}" y2="${m.top + ph + 5}" stroke="#64748b"/>`);
    el(
      `<text x="${xx}" y="${m.top + ph + 19}" text-anchor="middle" class="tick">${timeLabel(t, xStep)}</text>`,
    );
  }
  el(
    `<text x="${m.left + pw / 2}" y="${H - 14}" text-anchor="middle" class="axis">time since the drill started (${xStep >= 1000 ? 's' : 'ms'})</text>`,
  );
  el(
    `<text transform="translate(18 ${m.top + ph / 2}) rotate(-90)" text-anchor="middle" class="axis">RTT (ms)</text>`,
  );

  // Outage windows, shaded (at least 2 px wide so that a short one still shows).
  for (const w of mergeWindows(report.outages, t0, t1)) {
    const xa = x(w.startMs);
    const wd = Math.max(2, x(w.endMs) - xa);
    el(
      `<rect class="outage" x="${r1(xa)}" y="${m.top}" width="${r1(wd)}" height="${ph}"><title>outage ${Math.round(w.endMs - w.startMs)} ms</title></rect>`,
    );
  }

  // Moves: start (solid) and end (dashed) lines, numbered above the plot; labels too close to
  // the previous one go on a second row.
  let lastLabelX = Number.NEGATIVE_INFINITY;
  let row = 0;
  for (const mv of report.moves) {
    const xs = r1(x(mv.startedMs));
    const xe = r1(x(mv.endedMs));
    if (xe - xs >= 1)
      el(`<rect x="${xs}" y="${m.top}" width="${r1(xe - xs)}" height="${ph}" class="move-span"/>`);
    el(`<line x1="${xs}" x2="${xs}" y1="${m.top - 4}" y2="${m.top + ph}" class="move-start"/>`);
    el(`<line x1="${xe}" x2="${xe}" y1="${m.top}" y2="${m.top + ph}" class="move-end"/>`);
    row = xs - lastLabelX < 26 ? 1 - row : 0;
    if (row === 0) lastLabelX = xs;
    el(
      `<text x="${xs}" y="${m.top - 8 - row * 14}" text-anchor="middle" class="move-label">#${mv.index}<title>move ${mv.index}: ${esc(mv.vm)} ${esc(mv.from)} → ${esc(mv.to)} (${esc(mv.mechanism)})</title></text>`,
    );
  }

  // RTT: min and max per pixel column; a column with only lost probes breaks the line.
  const cols = new Map<number, { lo: number | null; hi: number | null; lost: boolean; n: number }>();
  for (const p of report.rtt) {
    const c = Math.round(x(p.tMs) * 2) / 2;
    const b = cols.get(c) ?? { lo: null, hi: null, lost: false, n: 0 };
    b.n++;
    if (p.rttMs === null) b.lost = true;
    else {
      b.lo = b.lo === null ? p.rttMs : Math.min(b.lo, p.rttMs);
      b.hi = b.hi === null ? p.rttMs : Math.max(b.hi, p.rttMs);
    }
    cols.set(c, b);
  }
  const ordered = [...cols.entries()].sort((a, b) => a[0] - b[0]);
  let d = '';
  let pen = false;
  for (const [cx, b] of ordered) {
    if (b.lo === null || b.hi === null) {
      pen = false;
      continue;
    }
    d += `${pen ? 'L' : 'M'}${cx} ${r1(y(b.lo))}`;
    if (b.hi !== b.lo) d += `L${cx} ${r1(y(b.hi))}`;
    pen = true;
  }
  if (d) el(`<path d="${d}" class="rtt"/>`);
  if (report.rtt.length <= 600)
    for (const p of report.rtt)
      if (p.rttMs !== null)
        el(`<circle cx="${r1(x(p.tMs))}" cy="${r1(y(p.rttMs))}" r="2" class="rtt-point"/>`);
  for (const [cx, b] of ordered)
    if (b.lost)
      el(`<line x1="${cx}" x2="${cx}" y1="${m.top + ph - 9}" y2="${m.top + ph - 1}" class="lost"/>`);
  if (report.rtt.length === 0)
    el(
      `<text x="${m.left + pw / 2}" y="${m.top + ph / 2}" text-anchor="middle" class="axis">no probe samples</text>`,
    );

  // Legend, above the plot on the right.
  const lx = m.left + pw - 560;
  const ly = 16;
  el(`<g class="legend" transform="translate(${lx} ${ly})">`);
  el(`<line x1="0" x2="18" y1="0" y2="0" class="rtt"/><text x="24" y="4">RTT</text>`);
  el(`<line x1="70" x2="70" y1="-5" y2="5" class="lost"/><text x="78" y="4">lost ping</text>`);
  el(`<rect x="150" y="-6" width="18" height="12" class="outage"/><text x="174" y="4">outage 通信断</text>`);
  el(`<line x1="290" x2="290" y1="-7" y2="7" class="move-start"/><text x="298" y="4">move start</text>`);
  el(`<line x1="390" x2="390" y1="-7" y2="7" class="move-end"/><text x="398" y="4">move end</text>`);
  el(`<rect x="476" y="-6" width="18" height="12" class="move-span"/><text x="500" y="4">moving</text>`);
  el('</g>');
  el('</svg>');
  return parts.join('\n');
}
