/**
 * Writes the RBAC parts derived from src/kubernetes/rbac-rules.ts: the Helm chart's named rule templates and the
 * tables of docs/security.md.
 *
 *   npx tsx scripts/gen-rbac.ts           rewrite both files
 *   npx tsx scripts/gen-rbac.ts --check   exit 1 (naming the file) when a committed copy is stale
 */
import { readFileSync } from 'node:fs';
import { renderHelmRules, renderSecurityTables, spliceGenerated } from '../src/kubernetes/rbac-render.js';
import { repoFile, writeGenerated } from './generated.js';

const SECURITY_DOC = 'docs/security.md';

writeGenerated(
  [
    ['deploy/helm/runner-fleet/templates/_rbac-rules.tpl', renderHelmRules()],
    [SECURITY_DOC, spliceGenerated(readFileSync(repoFile(SECURITY_DOC), 'utf8'), renderSecurityTables())],
  ],
  'npm run gen:rbac',
);
