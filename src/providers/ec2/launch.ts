/**
 * What one launch sends to EC2, built from the provider block and the runner's spec. Pure: no client, no secret (the
 * registration never enters this file; user data is rendered from non-secret settings only).
 */
import { createHash } from 'node:crypto';
import type {
  CreateFleetCommandInput,
  FleetLaunchTemplateOverridesRequest,
  FleetLaunchTemplateSpecificationRequest,
  LaunchTemplateSpecification,
  RunInstancesCommandInput,
  Tag,
  _InstanceType,
} from '@aws-sdk/client-ec2';
import { TAG_FLEET, TAG_RUNNER, TAG_SCALE_SET } from '../../aws/tags.js';
import type { Ec2ProviderConfig } from './schema.js';
import { DEFAULT_ON_DEMAND_FAILOVER_CODES } from './schema.js';

export type Market = 'spot' | 'on-demand';
export type LaunchPath = 'RunInstances' | 'CreateFleet';

/** EC2 accepts at most 16 KB of user data before base64. */
export const MAX_USER_DATA_BYTES = 16 * 1024;

/** Several instance types or subnets need CreateFleet; one of each (or the template's) is one RunInstances. */
export function launchPathOf(config: Ec2ProviderConfig): LaunchPath {
  return (config.instanceTypes?.length ?? 0) > 1 || (config.subnetIds?.length ?? 0) > 1
    ? 'CreateFleet'
    : 'RunInstances';
}

/** The spot error codes that send a create to on-demand; empty when failover is off or capacity is on-demand. */
export function failoverCodesOf(config: Ec2ProviderConfig): ReadonlySet<string> {
  if (config.capacity !== 'spot' || config.onDemandFailover === false) return new Set();
  return new Set(config.onDemandFailover ?? DEFAULT_ON_DEMAND_FAILOVER_CODES);
}

export function allocationStrategyOf(config: Ec2ProviderConfig, market: Market): string {
  if (market === config.capacity && config.allocationStrategy !== undefined) return config.allocationStrategy;
  return market === 'spot' ? 'price-capacity-optimized' : 'lowest-price';
}

export interface RunnerIdentity {
  readonly name: string;
  readonly fleet: string;
  readonly scaleSet: string;
}

/** Ownership tags, Name, then the user's tags (the schema keeps them off our keys). */
export function instanceTags(runner: RunnerIdentity, extra: Readonly<Record<string, string>> = {}): Tag[] {
  return [
    { Key: TAG_FLEET, Value: runner.fleet },
    { Key: TAG_SCALE_SET, Value: runner.scaleSet },
    { Key: TAG_RUNNER, Value: runner.name },
    { Key: 'Name', Value: runner.name },
    ...Object.entries(extra).map(([Key, Value]) => ({ Key, Value })),
  ];
}

/**
 * EC2's idempotency token (at most 64 ASCII characters): the same runner name gives the same token, so a create
 * retried after a lost answer returns the instance the first one launched. `generation` changes after runner-fleet
 * itself terminated the instance of a failed create; the on-demand retry of a spot create has its own token (EC2
 * refuses a token reused with other parameters: IdempotentParameterMismatch).
 */
export function clientToken(runner: RunnerIdentity, generation: number, market: Market): string {
  const digest = createHash('sha256')
    .update(`${runner.fleet}\u0000${runner.name}\u0000${generation}`)
    .digest('base64url')
    .slice(0, 40);
  return `rf1-${digest}-${market === 'spot' ? 's' : 'o'}`;
}

function templateSpec(config: Ec2ProviderConfig): LaunchTemplateSpecification | undefined {
  const lt = config.launchTemplate;
  if (lt === undefined) return undefined;
  return {
    ...(lt.id !== undefined ? { LaunchTemplateId: lt.id } : { LaunchTemplateName: lt.name }),
    Version: lt.version ?? '$Default',
  };
}

function instanceProfileOf(value: string): { Arn: string } | { Name: string } {
  return value.startsWith('arn:') ? { Arn: value } : { Name: value };
}

export interface LaunchInput {
  readonly runner: RunnerIdentity;
  readonly market: Market;
  readonly clientToken: string;
  /** Rendered start script, plain text; only for launches without a launch template. */
  readonly userData?: string;
}

export function runInstancesInput(config: Ec2ProviderConfig, input: LaunchInput): RunInstancesCommandInput {
  const tags = instanceTags(input.runner, config.tags);
  const template = templateSpec(config);
  return {
    MinCount: 1,
    MaxCount: 1,
    ClientToken: input.clientToken,
    ...(template !== undefined ? { LaunchTemplate: template } : {}),
    ...(config.imageId !== undefined ? { ImageId: config.imageId } : {}),
    ...(config.instanceTypes?.[0] !== undefined
      ? { InstanceType: config.instanceTypes[0] as _InstanceType }
      : {}),
    ...(config.subnetIds?.[0] !== undefined ? { SubnetId: config.subnetIds[0] } : {}),
    ...(config.instanceProfile !== undefined
      ? { IamInstanceProfile: instanceProfileOf(config.instanceProfile) }
      : {}),
    ...(config.securityGroupIds !== undefined ? { SecurityGroupIds: [...config.securityGroupIds] } : {}),
    ...(input.userData !== undefined
      ? { UserData: Buffer.from(input.userData, 'utf8').toString('base64') }
      : {}),
    // With a launch template its MetadataOptions apply as a whole (prepare() checked they require tokens); an
    // override here would reset the template's other metadata settings such as the hop limit.
    ...(template === undefined
      ? { MetadataOptions: { HttpTokens: 'required', HttpEndpoint: 'enabled' } }
      : {}),
    InstanceInitiatedShutdownBehavior: 'terminate',
    ...(input.market === 'spot'
      ? {
          InstanceMarketOptions: {
            MarketType: 'spot',
            SpotOptions: { SpotInstanceType: 'one-time', InstanceInterruptionBehavior: 'terminate' },
          },
        }
      : {}),
    TagSpecifications: [
      { ResourceType: 'instance', Tags: tags },
      { ResourceType: 'volume', Tags: tags },
    ],
  };
}

/**
 * Overrides: every instance type x every subnet, in configuration order, which is also their priority (0 first)
 * under the `prioritized` strategy.
 */
export function fleetOverrides(
  config: Ec2ProviderConfig,
  prioritized: boolean,
): FleetLaunchTemplateOverridesRequest[] {
  const types: (string | undefined)[] = config.instanceTypes ?? [undefined];
  const subnets: (string | undefined)[] = config.subnetIds ?? [undefined];
  const overrides: FleetLaunchTemplateOverridesRequest[] = [];
  for (const type of types) {
    for (const subnet of subnets) {
      overrides.push({
        ...(type !== undefined ? { InstanceType: type as _InstanceType } : {}),
        ...(subnet !== undefined ? { SubnetId: subnet } : {}),
        ...(config.imageId !== undefined ? { ImageId: config.imageId } : {}),
        ...(prioritized ? { Priority: overrides.length } : {}),
      });
    }
  }
  return overrides;
}

export function createFleetInput(config: Ec2ProviderConfig, input: LaunchInput): CreateFleetCommandInput {
  const template = templateSpec(config);
  if (template === undefined)
    throw new Error('CreateFleet needs a launch template (the schema requires one)');
  const strategy = allocationStrategyOf(config, input.market);
  return {
    Type: 'instant',
    ClientToken: input.clientToken,
    TargetCapacitySpecification: { TotalTargetCapacity: 1, DefaultTargetCapacityType: input.market },
    ...(input.market === 'spot'
      ? {
          SpotOptions: {
            AllocationStrategy: strategy as NonNullable<
              CreateFleetCommandInput['SpotOptions']
            >['AllocationStrategy'],
            InstanceInterruptionBehavior: 'terminate',
          },
        }
      : {
          OnDemandOptions: {
            AllocationStrategy: strategy as NonNullable<
              CreateFleetCommandInput['OnDemandOptions']
            >['AllocationStrategy'],
          },
        }),
    LaunchTemplateConfigs: [
      {
        LaunchTemplateSpecification: template as FleetLaunchTemplateSpecificationRequest,
        Overrides: fleetOverrides(config, strategy === 'prioritized'),
      },
    ],
    // An instant fleet tags instances only; volumes get the launch template's tags.
    TagSpecifications: [{ ResourceType: 'instance', Tags: instanceTags(input.runner, config.tags) }],
  };
}
