/**
 * Writes the AWS parts derived from src/aws/policies.ts: the CloudFormation template deploy/aws/runner-fleet.yaml,
 * and the IAM tables and the template's parameter table in docs/aws.md.
 *
 *   npx tsx scripts/gen-aws.ts           rewrite both files
 *   npx tsx scripts/gen-aws.ts --check   exit 1 (naming the file) when a committed copy is stale
 */
import { readFileSync } from 'node:fs';
import {
  CFN_PARAMETER_MARKS,
  renderCfnParameterTable,
  renderCloudFormation,
} from '../src/aws/cloudformation.js';
import { IAM_MARKS, renderIamTables } from '../src/aws/iam-render.js';
import { spliceGenerated } from '../src/kubernetes/rbac-render.js';
import { repoFile, writeGenerated } from './generated.js';

const AWS_DOC = 'docs/aws.md';

writeGenerated(
  [
    ['deploy/aws/runner-fleet.yaml', renderCloudFormation()],
    [
      AWS_DOC,
      spliceGenerated(
        spliceGenerated(readFileSync(repoFile(AWS_DOC), 'utf8'), renderIamTables(), IAM_MARKS),
        renderCfnParameterTable(),
        CFN_PARAMETER_MARKS,
      ),
    ],
  ],
  'npm run gen:aws',
);
