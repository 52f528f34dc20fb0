/**
 * The AWS world of the ec2 provider suites, in moto: an instance profile, the default VPC's subnets and security
 * group, an AMI, and launch templates (a good one, and one that neither requires IMDSv2 nor terminates on shutdown).
 * Providers reach moto through the fault proxy; the suites check the result with their own clients, straight to moto.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  CreateLaunchTemplateCommand,
  DescribeImagesCommand,
  DescribeSecurityGroupsCommand,
  DescribeSubnetsCommand,
  EC2Client,
} from '@aws-sdk/client-ec2';
import { SSMClient } from '@aws-sdk/client-ssm';
import { pino } from 'pino';
import type { Logger } from 'pino';
import type { ScaleSetConfig } from '../../src/core/fleet-config.js';
import type { InstanceSpec, ProviderContext, ProviderNotice } from '../../src/providers/provider.js';
import { LogSink } from '../support/log-sink.js';
import type { MotoServer } from '../support/moto.js';
import { awsPeersBin, MOTO_CREDENTIALS } from '../support/moto.js';

export const REGION = 'eu-west-1';
export const PROFILE = 'runner-fleet-runner';
export const GOOD_TEMPLATE = 'runner-fleet-good';
export const LOOSE_TEMPLATE = 'runner-fleet-loose';
export const TEMPLATE_USER_DATA = '#!/bin/bash\nexec /opt/runner-fleet/start\n';

export interface AwsWorld {
  readonly ec2: EC2Client;
  readonly ssm: SSMClient;
  readonly imageId: string;
  readonly subnetIds: readonly string[];
  readonly securityGroupId: string;
  readonly goodTemplateId: string;
  destroy(): void;
}

function aws(moto: MotoServer, args: string[]): string {
  const bin = awsPeersBin();
  if (bin === undefined) throw new Error('the AWS CLI of the test peers is missing');
  const result = spawnSync(`${bin}/aws`, [...args, '--endpoint-url', moto.url, '--output', 'json'], {
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp', ...moto.env(REGION) },
  });
  if (result.status !== 0) throw new Error(`aws ${args.join(' ')}: ${result.stderr}`);
  return result.stdout;
}

export async function buildAwsWorld(moto: MotoServer): Promise<AwsWorld> {
  const base = { region: REGION, endpoint: moto.url, credentials: MOTO_CREDENTIALS };
  const ec2 = new EC2Client(base);
  const ssm = new SSMClient(base);
  // moto checks instance profiles against its IAM; the SDK's IAM client is not a dependency, the CLI is a test peer.
  aws(moto, ['iam', 'create-instance-profile', '--instance-profile-name', PROFILE]);
  const images = await ec2.send(new DescribeImagesCommand({}));
  const imageId = images.Images?.find((i) => i.ImageId?.startsWith('ami-'))?.ImageId;
  const subnets = await ec2.send(
    new DescribeSubnetsCommand({ Filters: [{ Name: 'default-for-az', Values: ['true'] }] }),
  );
  const groups = await ec2.send(
    new DescribeSecurityGroupsCommand({ Filters: [{ Name: 'group-name', Values: ['default'] }] }),
  );
  const subnetIds = (subnets.Subnets ?? []).map((s) => s.SubnetId!).sort();
  const securityGroupId = groups.SecurityGroups?.[0]?.GroupId;
  if (imageId === undefined || subnetIds.length < 2 || securityGroupId === undefined) {
    throw new Error('moto has no AMI, default subnets or default security group');
  }
  const good = await ec2.send(
    new CreateLaunchTemplateCommand({
      LaunchTemplateName: GOOD_TEMPLATE,
      LaunchTemplateData: {
        ImageId: imageId,
        InstanceType: 't3.micro',
        IamInstanceProfile: { Name: PROFILE },
        SecurityGroupIds: [securityGroupId],
        MetadataOptions: { HttpTokens: 'required', HttpEndpoint: 'enabled' },
        InstanceInitiatedShutdownBehavior: 'terminate',
        UserData: Buffer.from(TEMPLATE_USER_DATA).toString('base64'),
      },
    }),
  );
  await ec2.send(
    new CreateLaunchTemplateCommand({
      LaunchTemplateName: LOOSE_TEMPLATE,
      LaunchTemplateData: { ImageId: imageId, InstanceType: 't3.micro' },
    }),
  );
  return {
    ec2,
    ssm,
    imageId,
    subnetIds,
    securityGroupId,
    goodTemplateId: good.LaunchTemplate!.LaunchTemplateId!,
    destroy() {
      ec2.destroy();
      ssm.destroy();
    },
  };
}

/** A ProviderContext whose log lines and notices the test can read. */
export interface Observed {
  readonly context: ProviderContext;
  readonly logs: LogSink;
  readonly notices: ProviderNotice[];
  readonly logger: Logger;
}

export function observedContext(fleet: string, scaleSet: string, logs = new LogSink()): Observed {
  const notices: ProviderNotice[] = [];
  const logger = pino({ level: 'debug' }, logs);
  return {
    context: {
      fleet,
      scaleSet: { name: scaleSet } as ScaleSetConfig,
      logger,
      notify: (notice) => notices.push(notice),
    },
    logs,
    notices,
    logger,
  };
}

/** Secrets shaped like GitHub's: a JIT config (base64 JSON) and a registration token (29 uppercase/digits). */
export function jitSpec(name: string, fleet: string, scaleSet: string): InstanceSpec {
  const jitConfig = Buffer.from(
    JSON.stringify({
      '.runner': randomBytes(96).toString('base64'),
      '.credentials': randomBytes(64).toString('hex'),
    }),
  ).toString('base64');
  return { name, fleet, scaleSet, registration: { mode: 'jit', jitConfig } };
}

export function tokenSpec(name: string, fleet: string, scaleSet: string): InstanceSpec {
  const token = `A${randomBytes(21).toString('hex').toUpperCase()}`.slice(0, 29);
  return {
    name,
    fleet,
    scaleSet,
    registration: {
      mode: 'token',
      url: 'https://github.com/octo-org',
      token,
      labels: ['linux', 'x64'],
      runnerGroup: 'Default',
      ephemeral: true,
    },
  };
}

export function secretOf(spec: InstanceSpec): string {
  return spec.registration.mode === 'jit' ? spec.registration.jitConfig : spec.registration.token;
}
