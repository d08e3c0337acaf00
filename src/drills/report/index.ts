export { renderTimelineSvg } from './chart.ts';
export { writeReportFiles } from './files.ts';
export { escapeHtml, escapeMarkdown } from './format.ts';
export { renderHtml } from './html.ts';
export { DRILL_REPORT_FORMAT, renderJson } from './json.ts';
export { type RenderOptions, renderMarkdown } from './markdown.ts';
export {
  buildReport,
  DRILL_SCENARIOS,
  type DrillFailover,
  type DrillMove,
  type DrillMoveInput,
  type DrillOverall,
  type DrillReport,
  type DrillReportInput,
  type DrillScenario,
  type DrillSummary,
  type DrillTierInfo,
  drillFailover,
  type MechanismSummary,
  type ProbeFigures,
  p95,
  type RttPoint,
  summarize,
} from './model.ts';
