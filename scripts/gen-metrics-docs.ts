/**
 * Writes docs/metrics.md from the metric table in src/telemetry/metrics.ts. `--check` exits 1 instead of writing
 * when the committed file differs (for CI).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderMetricsDoc } from '../src/telemetry/metrics-doc.js';

const target = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'docs', 'metrics.md');
const wanted = renderMetricsDoc();

if (process.argv.includes('--check')) {
  let current = '';
  try {
    current = readFileSync(target, 'utf8');
  } catch {
    // A missing file is a difference like any other.
  }
  if (current !== wanted) {
    console.error('docs/metrics.md is out of date: run `npx tsx scripts/gen-metrics-docs.ts`');
    process.exit(1);
  }
  console.log('docs/metrics.md is up to date');
} else {
  writeFileSync(target, wanted);
  console.log(`wrote ${path.relative(process.cwd(), target)}`);
}
