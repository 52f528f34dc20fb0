/**
 * Writes the AWS parts derived from src/aws/policies.ts: the CloudFormation template deploy/aws/runner-fleet.yaml,
 * and the IAM tables and the template's parameter table in docs/aws.md.
 *
 *   npx tsx scripts/gen-aws.ts           rewrite both files
 *   npx tsx scripts/gen-aws.ts --check   exit 1 (naming the file) when a committed copy is stale
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  CFN_PARAMETER_MARKS,
  renderCfnParameterTable,
  renderCloudFormation,
} from '../src/aws/cloudformation.js';
import { IAM_MARKS, renderIamTables } from '../src/aws/iam-render.js';
import { spliceGenerated } from '../src/kubernetes/rbac-render.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const TEMPLATE_FILE = path.join(repo, 'deploy/aws/runner-fleet.yaml');
const AWS_DOC = path.join(repo, 'docs/aws.md');

const outputs: Array<[string, string]> = [
  [TEMPLATE_FILE, renderCloudFormation()],
  [
    AWS_DOC,
    spliceGenerated(
      spliceGenerated(readFileSync(AWS_DOC, 'utf8'), renderIamTables(), IAM_MARKS),
      renderCfnParameterTable(),
      CFN_PARAMETER_MARKS,
    ),
  ],
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
    console.error(`${path.relative(repo, file)} is out of date: run npm run gen:aws`);
    stale++;
  } else {
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, content);
    console.log(`wrote ${path.relative(repo, file)}`);
  }
}
process.exitCode = stale > 0 ? 1 : 0;
