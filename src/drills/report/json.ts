import type { DrillReport } from './model.ts';

/** Identifies the JSON form; bumped when a field changes meaning or goes away. */
export const DRILL_REPORT_FORMAT = 'keizoku-drill-report/1';

/** The report as JSON: the model itself, with its format first. */
export function renderJson(report: DrillReport): string {
  return `${JSON.stringify({ format: DRILL_REPORT_FORMAT, ...report }, null, 2)}\n`;
}
