/**
 * `runner-fleet aws-policy --config F`: prints the IAM policies the ec2 scale sets of a fleet need, derived from the
 * rule data of src/aws/policies.ts (the same data deploy/aws and the access check of start and doctor use), as one
 * JSON object `{ "controller": <policy document>, "instance": <policy document> }`. Secret references in the
 * config are not resolved: IAM does not depend on them.
 */
import { parseArgs } from 'node:util';
import type { Command } from './command.js';
import { UsageError } from './command.js';
import { configOrProblems } from './config-without-secrets.js';
import { PolicyTargetError, ec2PolicyTarget, ec2ScaleSets } from '../aws/ec2-scale-sets.js';
import { policyDocuments } from '../aws/policies.js';

const usage = `Usage: runner-fleet aws-policy --config <fleet.yaml> [options]

Prints the IAM policies the fleet's ec2 scale sets need, as one JSON object:
  { "controller": <policy document>, "instance": <policy document> }
"controller" is for the role runner-fleet runs as; "instance" is for the runner instances' role (their instance
profile). docs/aws.md explains every statement; deploy/aws/runner-fleet.yaml creates both roles.

Options:
  -c, --config <file>          the fleet.yaml (required; secret references are not resolved)
  --account <id>               the 12-digit AWS account id in ARNs (default: *)
  --instance-role <name|arn>   the runner instances' role, which the controller may pass to EC2 (default: the role
                               named like each scale set's instanceProfile, else runner-fleet-<fleet>-instance,
                               the name deploy/aws gives it)
  -h, --help                   show this help

Exit status: 0 printed; 2 usage or config error, or no ec2 scale set in the fleet.
`;

export interface AwsPolicyArgs {
  readonly config: string;
  readonly account?: string;
  readonly instanceRole?: string;
}

export function parseAwsPolicyArgs(argv: readonly string[]): AwsPolicyArgs {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        config: { type: 'string', short: 'c' },
        account: { type: 'string' },
        'instance-role': { type: 'string' },
      },
      strict: true,
    }) as { values: Record<string, string | undefined> });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const config = values.config as string | undefined;
  if (!config) throw new UsageError('--config <fleet.yaml> is required');
  const account = values.account as string | undefined;
  if (account !== undefined && !/^\d{12}$/.test(account)) {
    throw new UsageError(`--account must be a 12-digit AWS account id, not ${JSON.stringify(account)}`);
  }
  const instanceRole = values['instance-role'] as string | undefined;
  if (
    instanceRole !== undefined &&
    !/^(arn:[^:]+:iam::\d{12}:role\/\S+|[\w+=,.@/-]{1,512})$/.test(instanceRole)
  ) {
    throw new UsageError(
      `--instance-role must be an IAM role name or ARN, not ${JSON.stringify(instanceRole)}`,
    );
  }
  return {
    config,
    ...(account !== undefined ? { account } : {}),
    ...(instanceRole !== undefined ? { instanceRole } : {}),
  };
}

/** AWS's limit for a customer managed policy, whitespace not counted. */
const MANAGED_POLICY_MAX_CHARS = 6144;

export const command: Command = {
  summary: 'Print the IAM policies (controller and runner instances) a fleet’s ec2 scale sets need',
  usage,
  async run(argv, io) {
    const args = parseAwsPolicyArgs(argv);
    const config = configOrProblems(args.config, io.env, io.stderr);
    if (config === null) return 2;
    const views = ec2ScaleSets(config);
    if (views.length === 0) {
      io.stderr.write(
        `runner-fleet aws-policy: ${args.config} has no scale set with provider kind ec2: there is no AWS access to grant\n`,
      );
      return 2;
    }
    let documents;
    try {
      documents = policyDocuments(
        ec2PolicyTarget(config.name, views, {
          ...(args.account !== undefined ? { account: args.account } : {}),
          ...(args.instanceRole !== undefined ? { instanceRole: args.instanceRole } : {}),
        }),
      );
    } catch (error) {
      if (!(error instanceof PolicyTargetError)) throw error;
      io.stderr.write(`runner-fleet aws-policy: ${error.message}\n`);
      return 2;
    }
    const size = JSON.stringify(documents.controller).length;
    if (size > MANAGED_POLICY_MAX_CHARS) {
      io.stderr.write(
        `runner-fleet aws-policy: note: the controller policy has ${size} characters, more than a managed policy ` +
          `takes (${MANAGED_POLICY_MAX_CHARS}); attach it as an inline role policy (up to 10,240) or split the fleet\n`,
      );
    }
    io.stdout.write(`${JSON.stringify(documents, null, 2)}\n`);
    return 0;
  },
};
