import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { METRIC_DEFINITIONS } from './metrics.js';
import { renderMetricsDoc } from './metrics-doc.js';

describe('docs/metrics.md', () => {
  it('is the rendering of the metric table (regenerate with npx tsx scripts/gen-metrics-docs.ts)', () => {
    const committed = readFileSync(new URL('../../docs/metrics.md', import.meta.url), 'utf8');
    expect(committed).toBe(renderMetricsDoc());
  });

  it('names every metric', () => {
    const doc = renderMetricsDoc();
    for (const def of Object.values(METRIC_DEFINITIONS)) expect(doc).toContain(`\`${def.name}\``);
  });
});
