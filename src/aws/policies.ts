/**
 * Least privilege as data, for AWS: every IAM permission the controller and a runner instance need for the `ec2`
 * provider, each tied to the AWS API call that needs it and the reason. `runner-fleet aws-policy`, deploy/aws (the
 * CloudFormation template, scripts/gen-aws.ts), docs/aws.md and the access check of `start` and `doctor`
 * (src/providers/ec2/access-check.ts) all derive from these tables, so a permission is added or removed here and
 * nowhere else.
 *
 * The rules are symbolic (resource and condition kinds); policyDocuments() resolves them against a PolicyTarget:
 * the concrete fleet (runner-fleet aws-policy) or CloudFormation references (deploy/aws).
 */
import { TAG_EXIT_CODE, TAG_FLEET, TAG_INSTANCE_ARN, TAG_RUNNER, TAG_SCALE_SET } from './tags.js';

export type Principal = 'controller' | 'instance';

/**
 * Optional parts of a fleet's AWS use; a rule or call marked with one applies only when it is in use:
 * - launchTemplate: a scale set starts instances from a launch template (which also allows CreateFleet);
 * - spot: a scale set requests spot capacity;
 * - kmsKey / kmsAlias: runner parameters are encrypted with a configured KMS key, named by id/ARN or by alias.
 */
export type AwsFeature = 'launchTemplate' | 'spot' | 'kmsKey' | 'kmsAlias';

export const AWS_FEATURES: readonly AwsFeature[] = ['launchTemplate', 'spot', 'kmsKey', 'kmsAlias'];

/** An IAM action, or one granted only while a feature is in use. */
export type RuleAction = string | { readonly action: string; readonly when: AwsFeature };

/** One AWS API call runner-fleet makes (or that AWS makes for it), with the IAM actions it is authorized by. */
export interface ApiCall {
  readonly principal: Principal;
  /** `EC2 RunInstances` */
  readonly call: string;
  readonly actions: readonly string[];
  /** The call is made only while one of these features is in use. */
  readonly when?: readonly AwsFeature[];
  readonly why: string;
}

/**
 * Every AWS call of the ec2 provider, the start script on the instance and the access check. The tests hold the
 * policy rules to this table: each action a rule grants is needed by a call here, and each call's actions are
 * granted.
 */
export const API_CALLS: readonly ApiCall[] = [
  {
    principal: 'controller',
    call: 'EC2 RunInstances',
    actions: ['ec2:RunInstances', 'ec2:CreateTags', 'iam:PassRole'],
    why:
      'start one instance per runner, tagged with fleet, scale set, runner and Name (CreateTags authorizes the ' +
      'tags of the request; PassRole hands the instance its role)',
  },
  {
    principal: 'controller',
    call: 'EC2 CreateFleet (type instant)',
    actions: ['ec2:CreateFleet', 'ec2:RunInstances', 'ec2:CreateTags', 'iam:PassRole'],
    when: ['launchTemplate'],
    why:
      'start instances from a launch template over several subnets or instance types in one request; EC2 ' +
      'authorizes the launch itself as RunInstances of the caller',
  },
  {
    principal: 'controller',
    call: 'EC2 DescribeInstances',
    actions: ['ec2:DescribeInstances'],
    why: 'list the fleet’s instances (filtered by the runner-fleet:fleet tag) and their states',
  },
  {
    principal: 'controller',
    call: 'EC2 TerminateInstances',
    actions: ['ec2:TerminateInstances'],
    why: 'remove an instance when its runner is done, failed or orphaned',
  },
  {
    principal: 'controller',
    call: 'EC2 DescribeSubnets',
    actions: ['ec2:DescribeSubnets'],
    why: 'check the configured subnets exist (the provider at start, and the access check)',
  },
  {
    principal: 'controller',
    call: 'EC2 DescribeSecurityGroups',
    actions: ['ec2:DescribeSecurityGroups'],
    why: 'check the configured security groups exist, when a scale set names them (the provider at start)',
  },
  {
    principal: 'controller',
    call: 'EC2 DescribeImages',
    actions: ['ec2:DescribeImages'],
    why: 'check the configured AMI exists, when a scale set names one (the provider at start)',
  },
  {
    principal: 'controller',
    call: 'EC2 DescribeLaunchTemplates',
    actions: ['ec2:DescribeLaunchTemplates'],
    when: ['launchTemplate'],
    why: 'check the configured launch template exists, by id or name (the access check)',
  },
  {
    principal: 'controller',
    call: 'EC2 DescribeLaunchTemplateVersions',
    actions: ['ec2:DescribeLaunchTemplateVersions'],
    when: ['launchTemplate'],
    why:
      'check the launch template version requires IMDSv2, terminates on shutdown and names an instance profile ' +
      '(the provider at start, and the access check)',
  },
  {
    principal: 'controller',
    call: 'SSM PutParameter (with Tags)',
    actions: ['ssm:PutParameter', 'ssm:AddTagsToResource'],
    why:
      'write one runner’s registration as a SecureString at <prefix>/<instance id>, tagged with the instance ARN ' +
      'that alone may read it (a PutParameter with Tags also needs AddTagsToResource)',
  },
  {
    principal: 'controller',
    call: 'SSM DeleteParameter',
    actions: ['ssm:DeleteParameter'],
    why: 'remove a runner parameter the instance did not consume (instance gone, runner removed)',
  },
  {
    principal: 'controller',
    call: 'SSM DeleteParameters',
    actions: ['ssm:DeleteParameters'],
    why: 'remove leftover runner parameters in batches of 10 (garbage collection)',
  },
  {
    principal: 'controller',
    call: 'SSM GetParametersByPath',
    actions: ['ssm:GetParametersByPath'],
    why: 'find leftover runner parameters under the prefix, whose instance is gone (garbage collection)',
  },
  {
    principal: 'controller',
    call: 'KMS Encrypt / GenerateDataKey (made by SSM for PutParameter)',
    actions: ['kms:Encrypt', 'kms:GenerateDataKey'],
    when: ['kmsKey', 'kmsAlias'],
    why: 'encrypt the SecureString with the configured key (standard parameters use Encrypt, advanced ones a data key)',
  },
  {
    principal: 'controller',
    call: 'STS GetCallerIdentity',
    actions: [],
    why: 'learn the account (for instance ARNs) and show who the controller is; needs no permission',
  },
  {
    principal: 'instance',
    call: 'SSM GetParameter (WithDecryption)',
    actions: ['ssm:GetParameter'],
    why: 'the start script reads the instance’s own runner parameter',
  },
  {
    principal: 'instance',
    call: 'SSM DeleteParameter',
    actions: ['ssm:DeleteParameter'],
    why: 'the start script deletes its parameter as soon as it has read it: the registration exists once',
  },
  {
    principal: 'instance',
    call: 'KMS Decrypt (made by SSM for GetParameter)',
    actions: ['kms:Decrypt'],
    when: ['kmsKey', 'kmsAlias'],
    why: 'decrypt the SecureString encrypted with the configured key',
  },
  {
    principal: 'instance',
    call: `EC2 CreateTags (${TAG_EXIT_CODE} on itself)`,
    actions: ['ec2:CreateTags'],
    why:
      'the start script reports how its runner ended (exit code, or why none ran) on its own instance right before ' +
      'it shuts down, and `interrupted` when it sees a spot interruption notice; best effort',
  },
];

/**
 * What a rule's Resource element names, resolved per region by policyDocuments():
 * - any: `*`, for calls without resource-level permissions (EC2 Describe*);
 * - instance, volume, network-interface, spot-instances-request, fleet: all of that type (`instance/*`), narrowed by
 *   the rule's conditions (the fleet's tags);
 * - image: the configured AMIs (all AMIs when a launch template picks it);
 * - subnet, security-group: all of the type, narrowed to the configured ids by a condition;
 * - launch-template: the configured launch templates (all, when one is named by name: ARNs carry ids);
 * - instance-role: the runner instances' IAM role;
 * - runner-parameters: `<prefix>/*`; parameter-path: `<prefix>` itself (GetParametersByPath);
 * - kms-key: the configured key ARNs; kms-any-key: any key, narrowed to the configured aliases by a condition.
 */
export type ResourceKind =
  | 'any'
  | 'instance'
  | 'volume'
  | 'network-interface'
  | 'image'
  | 'subnet'
  | 'security-group'
  | 'launch-template'
  | 'spot-instances-request'
  | 'fleet'
  | 'instance-role'
  | 'runner-parameters'
  | 'parameter-path'
  | 'kms-key'
  | 'kms-any-key';

/**
 * The conditions a rule carries:
 * - fleetTagsOnRequest: the request tags the resource with this fleet's name and uses no other tag keys than
 *   runner-fleet's (aws:RequestTag, aws:TagKeys);
 * - createdAtLaunch: tags only while launching (ec2:CreateAction);
 * - fleetTagOnResource: the resource already carries this fleet's tag (ec2:ResourceTag);
 * - configuredSubnets / configuredSecurityGroups: ec2:SubnetID / ec2:SecurityGroupID is one of the configured ids
 *   (left out when a launch template chooses them);
 * - passedToEc2: iam:PassedToService is EC2;
 * - requestedRegion: aws:RequestedRegion is one of the fleet's regions;
 * - taggedForCallingInstance: the parameter's runner-fleet:instance-arn tag equals the calling instance's ARN
 *   (ec2:SourceInstanceARN, present only for requests signed with instance role credentials);
 * - viaSsm: KMS is called by SSM in the fleet's regions (kms:ViaService);
 * - keyAlias: the key carries one of the configured aliases (kms:ResourceAliases);
 * - exitCodeTagOnly: the request sets no tag key but runner-fleet:exit-code (aws:TagKeys, ForAllValues).
 */
export type ConditionKind =
  | 'fleetTagsOnRequest'
  | 'createdAtLaunch'
  | 'fleetTagOnResource'
  | 'configuredSubnets'
  | 'configuredSecurityGroups'
  | 'passedToEc2'
  | 'requestedRegion'
  | 'taggedForCallingInstance'
  | 'viaSsm'
  | 'keyAlias'
  | 'exitCodeTagOnly';

export interface PolicyRule {
  /** Statement id: unique, [A-Za-z0-9]. */
  readonly sid: string;
  readonly principal: Principal;
  readonly actions: readonly RuleAction[];
  readonly resources: readonly ResourceKind[];
  readonly conditions?: readonly ConditionKind[];
  /** The whole statement applies only while this feature is in use. */
  readonly when?: AwsFeature;
  readonly why: string;
}

/** Statement ids the access check names in its failures. */
export const SID = {
  launchTagged: 'LaunchOnlyFleetTaggedInstances',
  launchSubnets: 'LaunchIntoConfiguredSubnets',
  launchSecurityGroups: 'LaunchWithConfiguredSecurityGroups',
  launchImagesTemplates: 'LaunchFromConfiguredImagesAndTemplates',
  launchInterfaces: 'LaunchNetworkInterfaces',
  launchVolumes: 'LaunchInstanceVolumes',
  launchSpot: 'LaunchSpotInstances',
  createFleet: 'CreateInstantFleets',
  tagAtLaunch: 'TagOnlyAtLaunch',
  tagVolumesAtLaunch: 'TagVolumesOnlyAtLaunch',
  terminate: 'TerminateOnlyFleetInstances',
  describe: 'DescribeWithoutResourceScope',
  passRole: 'PassOnlyInstanceRoleToEc2',
  parameters: 'WriteAndDeleteRunnerParameters',
  listParameters: 'ListRunnerParameters',
  encrypt: 'EncryptRunnerParameters',
  encryptByAlias: 'EncryptRunnerParametersByAlias',
  readOwn: 'ReadAndDeleteOwnRunnerParameter',
  decrypt: 'DecryptOwnRunnerParameter',
  decryptByAlias: 'DecryptOwnRunnerParameterByAlias',
  tagOwnOutcome: 'TagRunnerOutcomeOnFleetInstances',
} as const;

const createFleet = { action: 'ec2:CreateFleet', when: 'launchTemplate' } as const;

export const POLICY_RULES: readonly PolicyRule[] = [
  {
    sid: SID.launchTagged,
    principal: 'controller',
    actions: ['ec2:RunInstances', createFleet],
    resources: ['instance'],
    conditions: ['fleetTagsOnRequest'],
    why:
      'a new instance must be tagged with this fleet at launch, and only with runner-fleet’s tag keys and the ' +
      'configured `tags`: the controller cannot start anything it would not own, nor set tags other policies ' +
      'may trust',
  },
  {
    sid: SID.launchSubnets,
    principal: 'controller',
    actions: ['ec2:RunInstances', createFleet],
    resources: ['subnet'],
    conditions: ['configuredSubnets'],
    why: 'launch only into the configured subnets (any subnet when a launch template chooses it)',
  },
  {
    sid: SID.launchSecurityGroups,
    principal: 'controller',
    actions: ['ec2:RunInstances'],
    resources: ['security-group'],
    conditions: ['configuredSecurityGroups'],
    why: 'attach only the configured security groups (any when a launch template chooses them)',
  },
  {
    sid: SID.launchImagesTemplates,
    principal: 'controller',
    actions: ['ec2:RunInstances', createFleet],
    resources: ['image', 'launch-template'],
    why: 'boot only the configured AMI and launch template (any AMI when the launch template picks it)',
  },
  {
    sid: SID.launchInterfaces,
    principal: 'controller',
    actions: ['ec2:RunInstances'],
    resources: ['network-interface'],
    why: 'RunInstances creates each instance’s network interface (in a subnet the statements above allow)',
  },
  {
    sid: SID.launchVolumes,
    principal: 'controller',
    actions: ['ec2:RunInstances', createFleet],
    resources: ['volume'],
    why:
      'a launch creates the instance’s volumes; not narrowed by tag, as CreateFleet cannot tag volumes (a launch ' +
      'template’s tag specifications do): these volumes exist only with an instance the statements above allow',
  },
  {
    sid: SID.launchSpot,
    principal: 'controller',
    when: 'spot',
    actions: ['ec2:RunInstances'],
    resources: ['spot-instances-request'],
    why: 'a spot launch creates a spot instance request along with the instance',
  },
  {
    sid: SID.createFleet,
    principal: 'controller',
    when: 'launchTemplate',
    actions: ['ec2:CreateFleet'],
    resources: ['fleet'],
    why: 'an instant EC2 Fleet is a record of one CreateFleet request; its instances are authorized above',
  },
  {
    sid: SID.tagAtLaunch,
    principal: 'controller',
    actions: ['ec2:CreateTags'],
    resources: ['instance'],
    conditions: ['createdAtLaunch', 'fleetTagsOnRequest'],
    why: 'tags are set only by the launch request itself, never afterwards: an instance cannot be adopted into the fleet',
  },
  {
    sid: SID.tagVolumesAtLaunch,
    principal: 'controller',
    actions: ['ec2:CreateTags'],
    resources: ['volume'],
    conditions: ['createdAtLaunch'],
    why: 'the tags of the launched volumes (from the request or the launch template), only while launching',
  },
  {
    sid: SID.terminate,
    principal: 'controller',
    actions: ['ec2:TerminateInstances'],
    resources: ['instance'],
    conditions: ['fleetTagOnResource'],
    why: 'terminate only instances tagged with this fleet',
  },
  {
    sid: SID.describe,
    principal: 'controller',
    actions: [
      'ec2:DescribeInstances',
      'ec2:DescribeSubnets',
      'ec2:DescribeSecurityGroups',
      'ec2:DescribeImages',
      { action: 'ec2:DescribeLaunchTemplates', when: 'launchTemplate' },
      { action: 'ec2:DescribeLaunchTemplateVersions', when: 'launchTemplate' },
    ],
    resources: ['any'],
    conditions: ['requestedRegion'],
    why:
      'EC2 Describe calls do not support resource-level permissions, so the resource is `*`; limited to the ' +
      'fleet’s regions',
  },
  {
    sid: SID.passRole,
    principal: 'controller',
    actions: ['iam:PassRole'],
    resources: ['instance-role'],
    conditions: ['passedToEc2'],
    why: 'give new instances the runner instance role, and only that role, only to EC2',
  },
  {
    sid: SID.parameters,
    principal: 'controller',
    actions: ['ssm:PutParameter', 'ssm:AddTagsToResource', 'ssm:DeleteParameter', 'ssm:DeleteParameters'],
    resources: ['runner-parameters'],
    why:
      'write and delete runner parameters under the prefix only; no ssm:GetParameter: the controller never reads ' +
      'a registration back',
  },
  {
    sid: SID.listParameters,
    principal: 'controller',
    actions: ['ssm:GetParametersByPath'],
    resources: ['parameter-path', 'runner-parameters'],
    why:
      'list the prefix to clean up leftover parameters (with a configured KMS key the values stay encrypted: the ' +
      'controller has no kms:Decrypt)',
  },
  {
    sid: SID.encrypt,
    principal: 'controller',
    when: 'kmsKey',
    actions: ['kms:Encrypt', 'kms:GenerateDataKey'],
    resources: ['kms-key'],
    conditions: ['viaSsm'],
    why: 'encrypt runner parameters with the configured key, only through SSM',
  },
  {
    sid: SID.encryptByAlias,
    principal: 'controller',
    when: 'kmsAlias',
    actions: ['kms:Encrypt', 'kms:GenerateDataKey'],
    resources: ['kms-any-key'],
    conditions: ['viaSsm', 'keyAlias'],
    why: 'as above for a key named by alias: IAM cannot name a key by alias in Resource, so the alias is a condition',
  },
  {
    sid: SID.readOwn,
    principal: 'instance',
    actions: ['ssm:GetParameter', 'ssm:DeleteParameter'],
    resources: ['runner-parameters'],
    conditions: ['taggedForCallingInstance'],
    why:
      'an instance reads and deletes only the parameter tagged with its own ARN (ec2:SourceInstanceARN); ' +
      'nothing else by default',
  },
  {
    sid: SID.decrypt,
    principal: 'instance',
    when: 'kmsKey',
    actions: ['kms:Decrypt'],
    resources: ['kms-key'],
    conditions: ['viaSsm'],
    why: 'decrypt the parameter with the configured key, only through SSM',
  },
  {
    sid: SID.decryptByAlias,
    principal: 'instance',
    when: 'kmsAlias',
    actions: ['kms:Decrypt'],
    resources: ['kms-any-key'],
    conditions: ['viaSsm', 'keyAlias'],
    why: 'as above for a key named by alias',
  },
  {
    sid: SID.tagOwnOutcome,
    principal: 'instance',
    actions: ['ec2:CreateTags'],
    resources: ['instance'],
    conditions: ['fleetTagOnResource', 'exitCodeTagOnly'],
    why:
      `the start script tags its own instance with how its runner ended (${TAG_EXIT_CODE}); only that key, only ` +
      'on instances of this fleet. The statement does not tie the tagged instance to the calling one, so an ' +
      'instance could tag another of the fleet: the provider reads the tag only once an instance has ended, and an ' +
      'instance that ends by itself sets its own value last',
  },
];

/** Tag keys a launch request may always carry (aws:TagKeys): runner-fleet's own and Name; plus the configured ones. */
export const LAUNCH_TAG_KEYS: readonly string[] = [TAG_FLEET, TAG_SCALE_SET, TAG_RUNNER, 'Name'];

/** A CloudFormation reference to a List parameter (deploy/aws only; a concrete fleet has plain lists). */
export interface ListRef {
  readonly Ref: string;
}

/** An id that exists in one region (AMIs and launch templates are regional). */
export interface RegionalId {
  readonly region: string;
  readonly id: string;
}

/** Ids a launch may use: the configured ones, or `any` when a launch template chooses. */
export type IdScope = 'any' | readonly string[] | ListRef;

/**
 * What the rules are resolved against. Strings may carry CloudFormation `${...}` references (deploy/aws); the
 * values of a concrete fleet come from ec2PolicyTarget() in ec2-scale-sets.ts.
 */
export interface PolicyTarget {
  /** Fleet name: the value of the runner-fleet:fleet tag. */
  readonly fleet: string;
  /** aws, aws-cn, aws-us-gov */
  readonly partition: string;
  /** amazonaws.com (amazonaws.com.cn in China): service endpoints and principals. */
  readonly urlSuffix: string;
  /** 12 digits, or `*` when not given. */
  readonly account: string;
  readonly regions: readonly string[];
  /** SSM path prefixes without trailing slash, e.g. /runner-fleet/acme */
  readonly ssmPrefixes: readonly string[];
  readonly instanceRoleArns: readonly string[];
  /** AMIs; `any` when a launch template picks the AMI. */
  readonly images: 'any' | readonly RegionalId[];
  /** Launch templates; `any` when one is named by name; [] when none is used. */
  readonly launchTemplates: 'any' | readonly RegionalId[];
  readonly subnets: IdScope;
  readonly securityGroups: IdScope;
  /** The scale sets' own tag keys (their `tags`), allowed at launch besides runner-fleet's. */
  readonly extraTagKeys: readonly string[] | ListRef;
  readonly spot: boolean;
  /** KMS key ARNs. */
  readonly kmsKeys: readonly string[];
  /** KMS aliases, `alias/<name>`. */
  readonly kmsAliases: readonly string[];
}

/** Literal values followed by those of a CloudFormation List parameter (deploy/aws only). */
export interface ListWithRef {
  readonly base: readonly string[];
  readonly plus: ListRef;
}

export type ConditionValue = string | readonly string[] | ListRef | ListWithRef;
export type PolicyConditions = Record<string, Record<string, ConditionValue>>;

export interface PolicyStatement {
  Sid: string;
  Effect: 'Allow';
  Action: string[];
  Resource: string | string[];
  Condition?: PolicyConditions;
}

export interface PolicyDocument {
  Version: '2012-10-17';
  Statement: PolicyStatement[];
}

/** The features a target uses. */
export function targetFeatures(target: PolicyTarget): Set<AwsFeature> {
  const features = new Set<AwsFeature>();
  if (target.launchTemplates === 'any' || target.launchTemplates.length > 0) features.add('launchTemplate');
  if (target.spot) features.add('spot');
  if (target.kmsKeys.length > 0) features.add('kmsKey');
  if (target.kmsAliases.length > 0) features.add('kmsAlias');
  return features;
}

/** The actions of a rule while `features` are in use. */
export function ruleActions(rule: PolicyRule, features: ReadonlySet<AwsFeature>): string[] {
  return rule.actions.flatMap((a) => (typeof a === 'string' ? [a] : features.has(a.when) ? [a.action] : []));
}

/** The API calls made while `features` are in use. */
export function activeCalls(principal: Principal, features: ReadonlySet<AwsFeature>): ApiCall[] {
  return API_CALLS.filter(
    (c) => c.principal === principal && (c.when === undefined || c.when.some((f) => features.has(f))),
  );
}

const ec2Arn = (t: PolicyTarget, region: string, rest: string) =>
  `arn:${t.partition}:ec2:${region}:${t.account}:${rest}`;

/** `arn:aws:ssm:eu-west-1:123456789012:parameter/runner-fleet/acme` (+ suffix) */
function parameterArn(t: PolicyTarget, region: string, prefix: string, suffix: string): string {
  const path = prefix.startsWith('/') || prefix.startsWith('${') ? prefix : `/${prefix}`;
  return `arn:${t.partition}:ssm:${region}:${t.account}:parameter${path}${suffix}`;
}

function resolveResources(kind: ResourceKind, t: PolicyTarget): string[] {
  const perRegion = (rest: string) => t.regions.map((r) => ec2Arn(t, r, rest));
  switch (kind) {
    case 'any':
      return ['*'];
    case 'instance':
    case 'volume':
    case 'network-interface':
    case 'spot-instances-request':
    case 'fleet':
    case 'subnet':
    case 'security-group':
      return perRegion(`${kind}/*`);
    case 'image':
      // AMI ARNs carry no account: an AMI may belong to another account.
      return t.images === 'any'
        ? t.regions.map((r) => `arn:${t.partition}:ec2:${r}::image/*`)
        : t.images.map((i) => `arn:${t.partition}:ec2:${i.region}::image/${i.id}`);
    case 'launch-template':
      return t.launchTemplates === 'any'
        ? perRegion('launch-template/*')
        : t.launchTemplates.map((lt) => ec2Arn(t, lt.region, `launch-template/${lt.id}`));
    case 'instance-role':
      return [...t.instanceRoleArns];
    case 'runner-parameters':
      return t.regions.flatMap((r) => t.ssmPrefixes.map((p) => parameterArn(t, r, p, '/*')));
    case 'parameter-path':
      return t.regions.flatMap((r) => t.ssmPrefixes.map((p) => parameterArn(t, r, p, '')));
    case 'kms-key':
      return [...t.kmsKeys];
    case 'kms-any-key':
      return t.regions.map((r) => `arn:${t.partition}:kms:${r}:${t.account}:key/*`);
  }
}

const list = (values: readonly string[]): string[] => [...values];

function idCondition(key: string, scope: IdScope): PolicyConditions {
  if (scope === 'any') return {};
  return { StringEquals: { [key]: Array.isArray(scope) ? list(scope) : (scope as ListRef) } };
}

function resolveCondition(
  kind: ConditionKind,
  t: PolicyTarget,
  f: ReadonlySet<AwsFeature>,
): PolicyConditions {
  switch (kind) {
    case 'fleetTagsOnRequest':
      return {
        StringEquals: { [`aws:RequestTag/${TAG_FLEET}`]: t.fleet },
        'ForAllValues:StringEquals': {
          'aws:TagKeys': Array.isArray(t.extraTagKeys)
            ? [...new Set([...LAUNCH_TAG_KEYS, ...t.extraTagKeys])]
            : { base: list(LAUNCH_TAG_KEYS), plus: t.extraTagKeys as ListRef },
        },
      };
    case 'createdAtLaunch':
      return {
        StringEquals: {
          'ec2:CreateAction': f.has('launchTemplate') ? ['RunInstances', 'CreateFleet'] : ['RunInstances'],
        },
      };
    case 'fleetTagOnResource':
      return { StringEquals: { [`ec2:ResourceTag/${TAG_FLEET}`]: t.fleet } };
    case 'configuredSubnets':
      return idCondition('ec2:SubnetID', t.subnets);
    case 'configuredSecurityGroups':
      return idCondition('ec2:SecurityGroupID', t.securityGroups);
    case 'passedToEc2':
      return { StringEquals: { 'iam:PassedToService': `ec2.${t.urlSuffix}` } };
    case 'requestedRegion':
      return { StringEquals: { 'aws:RequestedRegion': list(t.regions) } };
    case 'taggedForCallingInstance':
      return {
        StringEquals: { [`aws:ResourceTag/${TAG_INSTANCE_ARN}`]: '${ec2:SourceInstanceARN}' },
        Null: { 'ec2:SourceInstanceARN': 'false' },
      };
    case 'viaSsm':
      return { StringEquals: { 'kms:ViaService': t.regions.map((r) => `ssm.${r}.${t.urlSuffix}`) } };
    case 'keyAlias':
      return { 'ForAnyValue:StringEquals': { 'kms:ResourceAliases': list(t.kmsAliases) } };
    case 'exitCodeTagOnly':
      return { 'ForAllValues:StringEquals': { 'aws:TagKeys': [TAG_EXIT_CODE] } };
  }
}

function mergeConditions(parts: PolicyConditions[]): PolicyConditions | undefined {
  const out: PolicyConditions = {};
  for (const part of parts) {
    for (const [operator, keys] of Object.entries(part)) out[operator] = { ...out[operator], ...keys };
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

/** The statement of one rule for a target, or undefined when it does not apply (feature off, nothing to name). */
export function ruleStatement(
  rule: PolicyRule,
  target: PolicyTarget,
  features: ReadonlySet<AwsFeature> = targetFeatures(target),
): PolicyStatement | undefined {
  if (rule.when !== undefined && !features.has(rule.when)) return undefined;
  const actions = ruleActions(rule, features);
  const resources = [...new Set(rule.resources.flatMap((kind) => resolveResources(kind, target)))];
  if (actions.length === 0 || resources.length === 0) return undefined;
  const statement: PolicyStatement = {
    Sid: rule.sid,
    Effect: 'Allow',
    Action: actions,
    Resource: resources.length === 1 ? (resources[0] as string) : resources,
  };
  const condition = mergeConditions(
    (rule.conditions ?? []).map((k) => resolveCondition(k, target, features)),
  );
  if (condition) statement.Condition = condition;
  return statement;
}

/** The IAM policy of one principal for a target. */
export function policyDocument(principal: Principal, target: PolicyTarget): PolicyDocument {
  const features = targetFeatures(target);
  return {
    Version: '2012-10-17',
    Statement: POLICY_RULES.filter((r) => r.principal === principal).flatMap((rule) => {
      const statement = ruleStatement(rule, target, features);
      return statement ? [statement] : [];
    }),
  };
}

/** What `runner-fleet aws-policy` prints: the controller's policy and the runner instances' policy. */
export function policyDocuments(target: PolicyTarget): {
  controller: PolicyDocument;
  instance: PolicyDocument;
} {
  return { controller: policyDocument('controller', target), instance: policyDocument('instance', target) };
}

/**
 * The ARN of an instance: the value of the runner-fleet:instance-arn tag on its runner parameter, which the instance
 * policy compares with ec2:SourceInstanceARN. `account` is the launching account (RunInstances' OwnerId, or STS).
 */
export function instanceArn(region: string, account: string, instanceId: string): string {
  return `arn:${partitionOf(region)}:ec2:${region}:${account}:instance/${instanceId}`;
}

/** The partition of a region: aws-cn for cn-*, aws-us-gov for us-gov-*, else aws. */
export function partitionOf(region: string): string {
  if (region.startsWith('cn-')) return 'aws-cn';
  if (region.startsWith('us-gov-')) return 'aws-us-gov';
  return 'aws';
}

/** The domain suffix of a partition's endpoints and service principals. */
export function urlSuffixOf(partition: string): string {
  return partition === 'aws-cn' ? 'amazonaws.com.cn' : 'amazonaws.com';
}
