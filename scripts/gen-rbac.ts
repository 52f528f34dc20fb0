/**
 * Writes the RBAC parts derived from src/kubernetes/rbac-rules.ts: the Helm chart's named rule templates and the
 * tables of docs/security.md.
 *
 *   npx tsx scripts/gen-rbac.ts           rewrite both files
 *   npx tsx scripts/gen-rbac.ts --check   exit 1 (naming the file) when a committed copy is stale
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderHelmRules, renderSecurityTables, spliceGenerated } from '../src/kubernetes/rbac-render.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const HELM_RULES_FILE = path.join(repo, 'deploy/helm/runner-fleet/templates/_rbac-rules.tpl');
const SECURITY_DOC = path.join(repo, 'docs/security.md');

const outputs: Array<[string, string]> = [
  [HELM_RULES_FILE, renderHelmRules()],
  [SECURITY_DOC, spliceGenerated(readFileSync(SECURITY_DOC, 'utf8'), renderSecurityTables())],
];

const check = process.argv.includes('--check');
let stale = 0;
for (const [file, content] of outputs) {
  let current = '';
  try {
    current = readFileSync(file, 'utf8');
  } catch {
    // missing: stale
  }
  if (current === content) continue;
  if (check) {
    console.error(`${path.relative(repo, file)} is out of date: run npx tsx scripts/gen-rbac.ts`);
    stale++;
  } else {
    writeFileSync(file, content);
    console.log(`wrote ${path.relative(repo, file)}`);
  }
}
process.exitCode = stale > 0 ? 1 : 0;
