/**
 * The ec2 scale sets of a fleet as IAM and the access check see them: region, endpoint, launch template, AMI,
 * network, instance profile, spot and the SSM prefix and key of the runner parameters. Read structurally from the
 * validated `provider:` blocks, so this module depends on the fields it needs and not on the provider's schema
 * module (both `spot: true` and `capacity: spot` mean spot).
 */
import type { FleetConfig } from '../core/fleet-config.js';
import type { PolicyTarget, RegionalId } from './policies.js';
import { partitionOf, urlSuffixOf } from './policies.js';

export interface Ec2ScaleSetView {
  readonly scaleSet: string;
  readonly region: string;
  /** AWS endpoint override (tests). */
  readonly endpoint?: string;
  readonly launchTemplate?: { readonly id?: string; readonly name?: string; readonly version?: string };
  readonly imageId?: string;
  /** [] when the launch template chooses the subnet. */
  readonly subnetIds: readonly string[];
  /** [] when the launch template chooses them. */
  readonly securityGroupIds: readonly string[];
  /** Name or ARN. */
  readonly instanceProfile?: string;
  readonly spot: boolean;
  /** Keys of the scale set's own `tags`. */
  readonly tagKeys: readonly string[];
  readonly ssm: { readonly pathPrefix: string; readonly kmsKeyId?: string };
}

/** The SSM path prefix of a fleet's runner parameters unless a scale set sets `ssm.pathPrefix`. */
export function defaultSsmPrefix(fleet: string): string {
  return `/runner-fleet/${fleet}`;
}

/** The name deploy/aws gives the runner instances' role (and instance profile). */
export function defaultInstanceRoleName(fleet: string): string {
  return `runner-fleet-${fleet}-instance`;
}

type Block = Readonly<Record<string, unknown>>;

const text = (block: Block | undefined, key: string): string | undefined => {
  const value = block?.[key];
  if (typeof value === 'number') return String(value);
  return typeof value === 'string' && value !== '' ? value : undefined;
};
const texts = (block: Block, key: string): string[] => {
  const value = block[key];
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
};
const object = (block: Block, key: string): Block | undefined => {
  const value = block[key];
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Block) : undefined;
};

/** `/a/b/` -> `/a/b`; `a/b` -> `/a/b` */
export function normalizePrefix(prefix: string): string {
  const trimmed = prefix.replace(/\/+$/, '');
  return trimmed.startsWith('/') ? trimmed : `/${trimmed}`;
}

/** The ec2 scale sets of a fleet, in config order. */
export function ec2ScaleSets(config: Pick<FleetConfig, 'name' | 'scaleSets'>): Ec2ScaleSetView[] {
  return config.scaleSets
    .filter((set) => set.provider.kind === 'ec2')
    .map((set) => {
      const p = set.provider as Block;
      const lt = object(p, 'launchTemplate');
      const ssm = object(p, 'ssm');
      const region = text(p, 'region');
      if (region === undefined) throw new Error(`scale set ${set.name}: ec2 provider without a region`);
      const endpoint = text(p, 'endpoint');
      const imageId = text(p, 'imageId');
      const instanceProfile = text(p, 'instanceProfile');
      const kmsKeyId = text(ssm, 'kmsKeyId');
      const launchTemplate = lt
        ? {
            ...(text(lt, 'id') ? { id: text(lt, 'id') } : {}),
            ...(text(lt, 'name') ? { name: text(lt, 'name') } : {}),
            ...(text(lt, 'version') ? { version: text(lt, 'version') } : {}),
          }
        : undefined;
      return {
        scaleSet: set.name,
        region,
        ...(endpoint ? { endpoint } : {}),
        ...(launchTemplate ? { launchTemplate } : {}),
        ...(imageId ? { imageId } : {}),
        subnetIds: texts(p, 'subnetIds'),
        securityGroupIds: texts(p, 'securityGroupIds'),
        ...(instanceProfile ? { instanceProfile } : {}),
        spot: p.spot === true || p.capacity === 'spot',
        tagKeys: Object.keys(object(p, 'tags') ?? {}),
        ssm: {
          pathPrefix: normalizePrefix(text(ssm, 'pathPrefix') ?? defaultSsmPrefix(config.name)),
          ...(kmsKeyId ? { kmsKeyId } : {}),
        },
      };
    });
}

export class PolicyTargetError extends Error {
  readonly code = 'aws-policy-target';
}

export interface PolicyTargetOptions {
  /** 12-digit account id; default `*` (EC2 and SSM resources of another account are out of reach anyway). */
  readonly account?: string;
  /**
   * The runner instances' role, name or ARN. Default: the role named like each scale set's instance profile
   * (the console and deploy/aws give both the same name), or deploy/aws's `runner-fleet-<fleet>-instance` for
   * scale sets whose launch template names the profile.
   */
  readonly instanceRole?: string;
}

const unique = <T>(values: Iterable<T>): T[] => [...new Set(values)];

/** `arn:aws:iam::123456789012:instance-profile/path/name` -> name and account */
function profileName(profile: string): { name: string; account?: string } {
  const arn = /^arn:[^:]+:iam::(\d{12}):instance-profile\/(?:.*\/)?([^/]+)$/.exec(profile);
  if (arn) return { account: arn[1] as string, name: arn[2] as string };
  return { name: profile };
}

/** The KMS key of a scale set as an ARN, or its alias. */
function kmsKeyOf(
  keyId: string,
  region: string,
  partition: string,
  account: string,
): { arn: string } | { alias: string } {
  const aliasArn = /^arn:[^:]+:kms:[^:]*:[^:]*:(alias\/.+)$/.exec(keyId);
  if (aliasArn) return { alias: aliasArn[1] as string };
  if (keyId.startsWith('alias/')) return { alias: keyId };
  if (keyId.startsWith('arn:')) return { arn: keyId };
  return { arn: `arn:${partition}:kms:${region}:${account}:key/${keyId}` };
}

/** The PolicyTarget of a fleet's ec2 scale sets (at least one). */
export function ec2PolicyTarget(
  fleet: string,
  views: readonly Ec2ScaleSetView[],
  options: PolicyTargetOptions = {},
): PolicyTarget {
  if (views.length === 0) throw new PolicyTargetError('the fleet has no ec2 scale sets');
  const account = options.account ?? '*';
  if (account !== '*' && !/^\d{12}$/.test(account)) {
    throw new PolicyTargetError(`account must be 12 digits, got ${JSON.stringify(account)}`);
  }
  const regions = unique(views.map((v) => v.region));
  const partitions = unique(regions.map(partitionOf));
  if (partitions.length > 1) {
    throw new PolicyTargetError(
      `the ec2 scale sets span AWS partitions (${partitions.join(', ')}): one IAM policy cannot; ` +
        'give each partition its own fleet',
    );
  }
  const partition = partitions[0] as string;
  const roleArn = (name: string, roleAccount = account) =>
    name.startsWith('arn:') ? name : `arn:${partition}:iam::${roleAccount}:role/${name}`;
  const instanceRoleArns = options.instanceRole
    ? [roleArn(options.instanceRole)]
    : unique(
        views.map((v) => {
          if (v.instanceProfile === undefined) return roleArn(defaultInstanceRoleName(fleet));
          const profile = profileName(v.instanceProfile);
          return roleArn(profile.name, profile.account ?? account);
        }),
      );
  const every = (pick: (v: Ec2ScaleSetView) => readonly string[]): 'any' | string[] =>
    views.some((v) => pick(v).length === 0) ? 'any' : unique(views.flatMap(pick));
  const regional = (pairs: RegionalId[]): RegionalId[] => {
    const seen = new Map(pairs.map((p) => [`${p.region}/${p.id}`, p]));
    return [...seen.values()];
  };
  const withTemplate = views.filter((v) => v.launchTemplate !== undefined);
  const launchTemplates = withTemplate.some((v) => v.launchTemplate?.id === undefined)
    ? 'any'
    : regional(withTemplate.map((v) => ({ region: v.region, id: v.launchTemplate?.id as string })));
  const images = views.some((v) => v.imageId === undefined)
    ? 'any'
    : regional(views.map((v) => ({ region: v.region, id: v.imageId as string })));
  const keys = views.flatMap((v) =>
    v.ssm.kmsKeyId ? [kmsKeyOf(v.ssm.kmsKeyId, v.region, partition, account)] : [],
  );
  return {
    fleet,
    partition,
    urlSuffix: urlSuffixOf(partition),
    account,
    regions,
    ssmPrefixes: unique(views.map((v) => v.ssm.pathPrefix)),
    instanceRoleArns,
    images,
    launchTemplates,
    subnets: every((v) => v.subnetIds),
    securityGroups: every((v) => v.securityGroupIds),
    extraTagKeys: unique(views.flatMap((v) => v.tagKeys)),
    spot: views.some((v) => v.spot),
    kmsKeys: unique(keys.flatMap((k) => ('arn' in k ? [k.arn] : []))),
    kmsAliases: unique(keys.flatMap((k) => ('alias' in k ? [k.alias] : []))),
  };
}
