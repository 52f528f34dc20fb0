/**
 * Writes docs/metrics.md from the metric table in src/telemetry/metrics.ts: `npm run docs:metrics`.
 * With `--check`, writes nothing and exits 1 when the committed file is out of date.
 */
import { renderMetricsDoc } from '../src/telemetry/metrics-doc.js';
import { writeGenerated } from './generated.js';

writeGenerated([['docs/metrics.md', renderMetricsDoc()]], 'npm run docs:metrics');
