import { timeZoneOffsetMs } from '../../core/tiers.ts';

/** Escaping and number/time formatting shared by the renderers. Pure. */

const HTML_ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

/** Text safe in HTML element content and in quoted attribute values. */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]!);
}

/**
 * Text shown literally in Markdown, also inside a table cell: HTML is neutralised as entities,
 * inline Markdown punctuation (emphasis, code, links, cell separators) is backslash-escaped and
 * line breaks become spaces, so the text can never start a line (a heading or list).
 */
export function escapeMarkdown(s: string): string {
  return s
    .replace(/[\r\n]+/g, ' ')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/[\\`*_[\]|~]/g, '\\$&');
}

export const DASH = '–';

/** Whole milliseconds with thousands separators, or a dash. */
export function fmtMs(v: number | null | undefined): string {
  return v === null || v === undefined ? DASH : Math.round(v).toLocaleString('en-US');
}

/** RTTs: two decimals below 10 ms, one below 100, whole above. */
export function fmtRtt(v: number | null | undefined): string {
  if (v === null || v === undefined) return DASH;
  if (v < 10) return v.toFixed(2);
  if (v < 100) return v.toFixed(1);
  return Math.round(v).toLocaleString('en-US');
}

/** A 0..1 rate as a percentage with two decimals. */
export function fmtRate(v: number | null | undefined): string {
  return v === null || v === undefined ? DASH : `${(v * 100).toFixed(2)} %`;
}

export function fmtCount(v: number): string {
  return v.toLocaleString('en-US');
}

/** `2026-02-03 10:00:00.123 +09:00` in the given zone. */
export function fmtTime(epochMs: number, timeZone: string): string {
  const off = timeZoneOffsetMs(epochMs, timeZone);
  const local = new Date(epochMs + off).toISOString();
  const sign = off < 0 ? '-' : '+';
  const a = Math.abs(off) / 60_000;
  const hh = String(Math.floor(a / 60)).padStart(2, '0');
  const mm = String(a % 60).padStart(2, '0');
  return `${local.slice(0, 10)} ${local.slice(11, 23)} ${sign}${hh}:${mm}`;
}

/** A duration in words: `850 ms`, `12.3 s`, `4 min 05 s`. */
export function fmtDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h} h ${String(m).padStart(2, '0')} min ${sec} s` : `${m} min ${sec} s`;
}

export function fmtSession(v: boolean | null): string {
  return v === null ? DASH : v ? 'kept' : 'broken';
}

/** Headings of the studies' table, in Japanese and English. */
export const STUDY_COLUMNS = {
  sent: { ja: '実施回数', en: 'pings sent' },
  lost: { ja: '失敗回数', en: 'lost' },
  lossRate: { ja: '失敗率', en: 'loss rate' },
  rttMin: { ja: '最小RTT', en: 'RTT min (ms)' },
  rttMax: { ja: '最大RTT', en: 'RTT max (ms)' },
  rttAvg: { ja: '平均RTT', en: 'RTT avg (ms)' },
  outageMax: { ja: '通信断 最大', en: 'outage max (ms)' },
  outageP95: { ja: '通信断 p95', en: 'outage p95 (ms)' },
} as const;
