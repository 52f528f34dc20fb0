/**
 * `demo --provider ec2 --aws-endpoint URL`: the AWS side of the demo, in a local AWS endpoint such as moto (never
 * real AWS: endpoints of amazonaws.com are refused). Before the controller starts, it creates what the fleet's
 * instances need there: it finds an AMI, the default VPC's subnets and security group, creates the runner instances'
 * role and instance profile (with the instance policy of src/aws/policies.ts) and one launch template per SSM prefix
 * (IMDSv2 required, terminate on shutdown, the default user data). The controller's ec2 provider reaches the
 * endpoint with fixed placeholder credentials, and the EC2 bridge (src/sim/ec2-bridge) plays the machines: it runs
 * each instance's user data with bash, the AWS CLI and the runner emulator. At the end `census` reads what of the
 * fleet is left in the endpoint: pending or running instances, runner parameters.
 */
import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import {
  CreateLaunchTemplateCommand,
  CreateLaunchTemplateVersionCommand,
  DescribeImagesCommand,
  DescribeSecurityGroupsCommand,
  DescribeSubnetsCommand,
  EC2Client,
  ModifyLaunchTemplateCommand,
  paginateDescribeInstances,
} from '@aws-sdk/client-ec2';
import type { RequestLaunchTemplateData } from '@aws-sdk/client-ec2';
import { SSMClient, paginateGetParametersByPath } from '@aws-sdk/client-ssm';
import type { FleetConfig } from '../core/fleet-config.js';
import { defaultInstanceRoleName, ec2PolicyTarget, ec2ScaleSets as ec2Views } from '../aws/ec2-scale-sets.js';
import { policyDocument } from '../aws/policies.js';
import { TAG_FLEET } from '../aws/tags.js';
import { renderUserData, userDataBase64 } from '../aws/user-data.js';
import type { Ec2ProviderFactory } from '../providers/ec2/index.js';
import { createEc2ProviderFactory } from '../providers/ec2/index.js';
import { renderEc2UserData } from '../providers/ec2/user-data.js';
import type { Ec2Bridge } from '../sim/ec2-bridge/index.js';
import { startEc2Bridge } from '../sim/ec2-bridge/index.js';
import { AwsQueryError, awsQuery } from './aws-query.js';
import { checkDemoEndpoint } from './ec2-endpoint.js';
import type { DemoEc2World } from './fleet.js';
import { demoEc2Prefix, readUserFleet } from './fleet.js';

/** The region of the demo's instances (moto has a default VPC in every region). */
export const DEMO_AWS_REGION = 'eu-west-1';

/**
 * Credentials of every AWS call of the demo: AWS's documented example keys, which a local endpoint such as moto
 * accepts. The demo never reads the user's AWS credentials, so it cannot spend them on a real account.
 */
export const DEMO_AWS_CREDENTIALS = {
  accessKeyId: 'AKIAIOSFODNN7EXAMPLE',
  secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
} as const;

/** The account moto answers for. */
const DEMO_ACCOUNT = '123456789012';

/** Tools the start script on each (bridged) instance runs. */
const MACHINE_TOOLS = ['bash', 'curl', 'aws'] as const;

export class DemoEc2Error extends Error {
  override readonly name = 'DemoEc2Error';
  readonly code: string;
  constructor(message: string, code: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/** What of the fleet is left in the endpoint. */
export interface Ec2Census {
  readonly endpoint: string;
  readonly region: string;
  /** Instances of the fleet launched since the demo started (any state). */
  readonly launched: number;
  /** Instance ids of the fleet still pending or running. */
  readonly liveInstances: readonly string[];
  /** Runner parameters under the fleet's SSM prefixes. */
  readonly parameters: readonly string[];
}

export interface DemoEc2 {
  readonly endpoint: string;
  readonly world: DemoEc2World;
  /** The ec2 provider factory of the controller: the endpoint, the placeholder credentials, the default user data. */
  readonly factory: Ec2ProviderFactory;
  /** Starts the bridge for the fleet's instances; resolves to how to stop it. */
  startRunners(fleet: string): Promise<() => Promise<void>>;
  /** Reads what of the fleet is left in the endpoint (its own clients: the factory's counts stay the controller's). */
  census(config: FleetConfig, since: number): Promise<Ec2Census>;
  /** The machines' output (user data, start script, runner), one block per instance, for a failed run's files. */
  machineOutput(): string;
  close(): Promise<void>;
}

export interface DemoEc2Options {
  /** --aws-endpoint */
  readonly endpoint: string;
  /** A user's fleet.yaml (--config): its ec2 scale sets launch from the world the demo creates. */
  readonly configPath?: string;
  readonly env: Readonly<Record<string, string | undefined>>;
}

/** The directory holding `tool` on PATH, or undefined. */
function findTool(tool: string, path: string): string | undefined {
  return path
    .split(delimiter)
    .filter((dir) => dir !== '')
    .find((dir) => existsSync(join(dir, tool)));
}

function describeError(error: unknown): string {
  const e = error as { name?: string; message?: string; $metadata?: { httpStatusCode?: number } };
  const status = e.$metadata?.httpStatusCode;
  return `${e.name ?? 'Error'}${status !== undefined ? ` [HTTP ${status}]` : ''}: ${e.message ?? String(error)}`;
}

async function iam(endpoint: string, action: string, params: Record<string, string>): Promise<void> {
  try {
    await awsQuery({
      endpoint,
      region: 'us-east-1',
      service: 'iam',
      credentials: DEMO_AWS_CREDENTIALS,
      action,
      version: '2010-05-08',
      params,
    });
  } catch (error) {
    // A second demo against the same endpoint finds the role and profile of the first: the same ones.
    if (
      error instanceof AwsQueryError &&
      (error.code === 'EntityAlreadyExists' || error.code === 'LimitExceeded')
    )
      return;
    throw error;
  }
}

/** The SSM prefixes of the fleet's ec2 scale sets (built-in: the default prefix of fleet `demo`). */
function prefixesOf(sets: readonly Record<string, unknown>[], fleet: string): string[] {
  const prefixes = sets
    .map((set) => (set.provider ?? {}) as Record<string, unknown>)
    .filter((provider) => provider.kind === 'ec2')
    .map((provider) => demoEc2Prefix(provider, fleet));
  return [...new Set(prefixes.length > 0 ? prefixes : [`/runner-fleet/${fleet}`])];
}

/** Creates (or updates) the launch template `name`; a template of an earlier demo gets a new default version. */
async function putLaunchTemplate(
  ec2: EC2Client,
  name: string,
  data: RequestLaunchTemplateData,
): Promise<void> {
  try {
    await ec2.send(new CreateLaunchTemplateCommand({ LaunchTemplateName: name, LaunchTemplateData: data }));
    return;
  } catch (error) {
    if (!/AlreadyExists/.test((error as { name?: string }).name ?? '')) throw error;
  }
  const version = await ec2.send(
    new CreateLaunchTemplateVersionCommand({ LaunchTemplateName: name, LaunchTemplateData: data }),
  );
  await ec2.send(
    new ModifyLaunchTemplateCommand({
      LaunchTemplateName: name,
      DefaultVersion: String(version.LaunchTemplateVersion?.VersionNumber ?? '$Latest'),
    }),
  );
}

/** Builds the fleet's world in the endpoint and the controller's ec2 factory. Throws DemoEc2Error naming the problem. */
export async function prepareDemoEc2(options: DemoEc2Options): Promise<DemoEc2> {
  const checked = checkDemoEndpoint(options.endpoint);
  if (!checked.ok) throw new DemoEc2Error(checked.message, 'bad-endpoint');
  const endpoint = checked.endpoint;
  const path = options.env.PATH ?? '';
  const missing = MACHINE_TOOLS.filter((tool) => findTool(tool, path) === undefined);
  if (missing.length > 0) {
    throw new DemoEc2Error(
      `demo --provider ec2 runs each instance's start script on this machine and needs ${missing.join(', ')} on ` +
        `PATH (the AWS CLI, v1 or v2, for \`aws\`)`,
      'missing-tools',
    );
  }
  const awsDir = findTool('aws', path)!;
  const region = DEMO_AWS_REGION;
  const base = { region, endpoint, credentials: DEMO_AWS_CREDENTIALS, maxAttempts: 2 };
  const ec2 = new EC2Client(base);
  const ssm = new SSMClient(base);
  const user = options.configPath ? readUserFleet(options.configPath, options.env) : null;
  const fleet = user?.name ?? 'demo';
  let world: DemoEc2World;
  try {
    world = await createEc2World({
      ec2,
      endpoint,
      region,
      fleet,
      prefixes: prefixesOf(user?.scaleSets ?? [], fleet),
    });
  } catch (error) {
    ec2.destroy();
    ssm.destroy();
    if (error instanceof DemoEc2Error) throw error;
    throw new DemoEc2Error(
      `cannot set up the demo's EC2 world at ${endpoint}: ${describeError(error)}`,
      'ec2-setup-failed',
      { cause: error },
    );
  }
  const factory = createEc2ProviderFactory({
    endpoint,
    credentials: DEMO_AWS_CREDENTIALS,
    renderUserData: renderEc2UserData,
  });
  const bridges: Ec2Bridge[] = [];
  return {
    endpoint,
    world,
    factory,
    async startRunners(fleetName) {
      const bridge = await startEc2Bridge({
        endpoint,
        region,
        credentials: DEMO_AWS_CREDENTIALS,
        fleet: fleetName,
        path: [awsDir],
        env: {
          // A runner whose simulator vanished (the demo ended) gives up within seconds.
          RUNNER_FLEET_EMULATOR_RETRY_MS: '5000',
          RUNNER_FLEET_PARAMETER_TIMEOUT: '120',
          RUNNER_FLEET_PARAMETER_POLL_MAX: '2',
        },
        pollMs: 250,
        stopGraceMs: 3_000,
      });
      bridges.push(bridge);
      return () => bridge.stop();
    },
    async census(config, since) {
      const liveInstances: string[] = [];
      let launched = 0;
      for await (const page of paginateDescribeInstances(
        { client: ec2 },
        { Filters: [{ Name: `tag:${TAG_FLEET}`, Values: [config.name] }] },
      )) {
        for (const reservation of page.Reservations ?? []) {
          for (const instance of reservation.Instances ?? []) {
            if ((instance.LaunchTime?.getTime() ?? 0) >= since - 2_000) launched++;
            const state = instance.State?.Name;
            if ((state === 'pending' || state === 'running') && instance.InstanceId)
              liveInstances.push(instance.InstanceId);
          }
        }
      }
      const parameters: string[] = [];
      const prefixes = [...new Set(ec2Views(config).map((v) => v.ssm.pathPrefix))];
      for (const prefix of prefixes) {
        for await (const page of paginateGetParametersByPath(
          { client: ssm },
          { Path: prefix, Recursive: true, WithDecryption: false },
        )) {
          for (const parameter of page.Parameters ?? []) if (parameter.Name) parameters.push(parameter.Name);
        }
      }
      return {
        endpoint,
        region,
        launched,
        liveInstances: liveInstances.sort(),
        parameters: parameters.sort(),
      };
    },
    machineOutput() {
      return bridges
        .flatMap((bridge) =>
          bridge
            .instances()
            .map(
              (i) =>
                `==== ${i.instanceId} (${i.phase}${i.reason ? `, ${i.reason}` : ''})\n${bridge.output(i.instanceId)}`,
            ),
        )
        .join('\n');
    },
    async close() {
      await Promise.allSettled(bridges.splice(0).map((b) => b.stop()));
      await factory.close();
      ec2.destroy();
      ssm.destroy();
    },
  };
}

export interface Ec2WorldOptions {
  /** A client of the endpoint in `region`. */
  readonly ec2: EC2Client;
  readonly endpoint: string;
  readonly region: string;
  readonly fleet: string;
  /** The fleet's SSM prefixes: one launch template each. */
  readonly prefixes: readonly string[];
}

/**
 * Creates in a local AWS endpoint what a fleet's EC2 instances need (also used by the EC2 end-to-end suite and the
 * benchmark): finds a Linux AMI, the default VPC's subnets and security group, creates the instance role and profile
 * (`runner-fleet-<fleet>-instance`, deploy/aws's name, with the instance policy) and one launch template per prefix
 * (`runner-fleet-<fleet>`, then `-2`, ...). Idempotent: a second call against the same endpoint finds the role and
 * profile and gives each template a new default version.
 */
export async function createEc2World(options: Ec2WorldOptions): Promise<DemoEc2World> {
  const { ec2, endpoint, region, fleet } = options;
  let images;
  try {
    images = await ec2.send(
      new DescribeImagesCommand({
        Owners: ['amazon'],
        Filters: [{ Name: 'architecture', Values: ['x86_64'] }],
      }),
    );
  } catch (error) {
    throw new DemoEc2Error(
      `cannot reach the AWS endpoint ${endpoint} (DescribeImages: ${describeError(error)}); start moto first, ` +
        'e.g. `moto_server -p 5000`',
      'endpoint-unreachable',
      { cause: error },
    );
  }
  const linux = (images.Images ?? []).filter((i) => i.ImageId && i.Platform !== 'Windows');
  const image = linux.find((i) => /^al2023-ami-|^amzn2-ami-hvm-/.test(i.Name ?? '')) ?? linux[0];
  if (image?.ImageId === undefined) throw new DemoEc2Error(`${endpoint} lists no Linux AMI`, 'no-ami');
  const subnets = await ec2.send(
    new DescribeSubnetsCommand({ Filters: [{ Name: 'default-for-az', Values: ['true'] }] }),
  );
  const subnetIds = (subnets.Subnets ?? [])
    .map((s) => s.SubnetId ?? '')
    .filter((id) => id !== '')
    .sort();
  const groups = await ec2.send(
    new DescribeSecurityGroupsCommand({ Filters: [{ Name: 'group-name', Values: ['default'] }] }),
  );
  const securityGroupId = groups.SecurityGroups?.[0]?.GroupId;
  if (subnetIds.length < 2 || securityGroupId === undefined) {
    throw new DemoEc2Error(
      `${endpoint} has no default VPC in ${region} with two subnets and a default security group`,
      'no-default-vpc',
    );
  }

  // The runner instances' role and instance profile, deploy/aws's names, with the instance policy.
  const role = defaultInstanceRoleName(fleet);
  const prefixes = options.prefixes.length > 0 ? options.prefixes : [`/runner-fleet/${fleet}`];
  const policy = policyDocument(
    'instance',
    ec2PolicyTarget(
      fleet,
      prefixes.map((prefix, i) => ({
        scaleSet: `prefix-${i}`,
        region,
        subnetIds,
        securityGroupIds: [securityGroupId],
        spot: false,
        tagKeys: [],
        ssm: { pathPrefix: prefix },
      })),
      { account: DEMO_ACCOUNT },
    ),
  );
  const trust = {
    Version: '2012-10-17',
    Statement: [{ Effect: 'Allow', Principal: { Service: 'ec2.amazonaws.com' }, Action: 'sts:AssumeRole' }],
  };
  await iam(endpoint, 'CreateRole', { RoleName: role, AssumeRolePolicyDocument: JSON.stringify(trust) });
  await iam(endpoint, 'PutRolePolicy', {
    RoleName: role,
    PolicyName: 'runner-fleet-instance',
    PolicyDocument: JSON.stringify(policy),
  });
  await iam(endpoint, 'CreateInstanceProfile', { InstanceProfileName: role });
  await iam(endpoint, 'AddRoleToInstanceProfile', { InstanceProfileName: role, RoleName: role });

  const launchTemplates: Record<string, string> = {};
  for (const [index, prefix] of prefixes.entries()) {
    const name = index === 0 ? `runner-fleet-${fleet}` : `runner-fleet-${fleet}-${index + 1}`;
    await putLaunchTemplate(ec2, name, {
      ImageId: image.ImageId,
      InstanceType: 't3.micro',
      IamInstanceProfile: { Name: role },
      SecurityGroupIds: [securityGroupId],
      MetadataOptions: { HttpTokens: 'required', HttpEndpoint: 'enabled', HttpPutResponseHopLimit: 1 },
      InstanceInitiatedShutdownBehavior: 'terminate',
      UserData: userDataBase64(renderUserData({ ssmPrefix: prefix })),
    });
    launchTemplates[prefix] = name;
  }
  return {
    region,
    imageId: image.ImageId,
    subnetIds,
    securityGroupId,
    instanceProfile: role,
    launchTemplates,
  };
}
