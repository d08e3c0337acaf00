import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { renderHtml } from './html.ts';
import { renderJson } from './json.ts';
import { type RenderOptions, renderMarkdown } from './markdown.ts';
import type { DrillReport } from './model.ts';

/**
 * Writes a drill's report as ID.json, ID.md and ID.html in `dir` (made 0750 if missing), each
 * 0640 (less with a stricter umask): reports name VMs, hosts and measured outages, which are
 * for keizokud's own group, as the audit files are.
 */
export function writeReportFiles(dir: string, report: DrillReport, o: RenderOptions): void {
  mkdirSync(dir, { recursive: true, mode: 0o750 });
  const write = (name: string, text: string) => writeFileSync(join(dir, name), text, { mode: 0o640 });
  write(`${report.id}.json`, renderJson(report));
  write(`${report.id}.md`, renderMarkdown(report, o));
  write(`${report.id}.html`, renderHtml(report, o));
}
