/**
 * Writes docs/configuration.md from the config schema: `npx tsx scripts/gen-config-docs.ts`.
 * With `--check`, writes nothing and exits 1 when the committed file is out of date.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { renderConfigDocs } from '../src/config/docs.js';

const target = fileURLToPath(new URL('../docs/configuration.md', import.meta.url));
const rendered = renderConfigDocs();

if (process.argv.includes('--check')) {
  let current = '';
  try {
    current = readFileSync(target, 'utf8');
  } catch {
    // A missing file is simply out of date.
  }
  if (current !== rendered) {
    process.stderr.write('docs/configuration.md is out of date: run npx tsx scripts/gen-config-docs.ts\n');
    process.exitCode = 1;
  }
} else {
  writeFileSync(target, rendered);
  process.stdout.write(`wrote ${target}\n`);
}
