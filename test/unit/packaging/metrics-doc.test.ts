import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { METRICS_DOC, renderMetricsDoc } from '../../../scripts/gen-metrics-doc.ts';
import { createMetrics } from '../../../src/metrics/registry.ts';

const read = (rel: string) =>
  readFileSync(fileURLToPath(new URL(`../../../${rel}`, import.meta.url)), 'utf8');

describe('docs/metrics.md', () => {
  it('is what npm run gen:metrics-doc makes from the metric definitions today', () => {
    // On failure: npm run gen:metrics-doc, and commit docs/metrics.md with the metric change.
    expect(readFileSync(METRICS_DOC, 'utf8')).toBe(renderMetricsDoc());
  });

  it("lists every metric of keizokud's registry with its type, labels and buckets", async () => {
    const doc = renderMetricsDoc();
    const m = createMetrics();
    m.loopDuration.observe({ loop: 'inventory' }, 0.01);
    for (const metric of await m.registry.getMetricsAsJSON())
      expect(doc).toMatch(new RegExp(`\\| \`${metric.name}\` \\| ${metric.type} \\|`));
    expect(doc).toContain('- `keizoku_loop_duration_seconds`: 0.005, 0.01,');
    expect(doc).toMatch(/\| `keizoku_host_health` \| gauge \| `host`, `site`, `state` \|/);
  });

  it('names every metric the alert rules and the dashboard query', () => {
    const doc = renderMetricsDoc();
    const used = new Set(
      [
        ...`${read('dashboards/alerts.yml')}\n${read('dashboards/keizoku-overview.json')}`.matchAll(
          /\bkeizoku_\w+/g,
        ),
      ].map((x) => x[0].replace(/_(bucket|sum|count)$/, '')),
    );
    expect(used.size).toBeGreaterThan(5);
    for (const name of used) expect(doc, name).toContain(`\`${name}\``);
  });
});
