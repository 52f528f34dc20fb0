import { describe, expect, it } from 'vitest';
import { parseConfig } from '../config/index.js';
import type { FleetConfig } from '../config/types.js';
import type { Ec2ScaleSetView } from './ec2-scale-sets.js';
import { ec2PolicyTarget, ec2ScaleSets } from './ec2-scale-sets.js';
import type { AwsFeature, PolicyDocument, PolicyStatement, PolicyTarget, Principal } from './policies.js';
import {
  API_CALLS,
  AWS_FEATURES,
  LAUNCH_TAG_KEYS,
  POLICY_RULES,
  SID,
  activeCalls,
  instanceArn,
  policyDocument,
  policyDocuments,
  targetFeatures,
} from './policies.js';

const base: PolicyTarget = {
  fleet: 'acme',
  partition: 'aws',
  urlSuffix: 'amazonaws.com',
  account: '123456789012',
  regions: ['eu-west-1'],
  ssmPrefixes: ['/runner-fleet/acme'],
  instanceRoleArns: ['arn:aws:iam::123456789012:role/runner-fleet-acme-instance'],
  images: [{ region: 'eu-west-1', id: 'ami-0123456789abcdef0' }],
  launchTemplates: [],
  subnets: ['subnet-0aaa', 'subnet-0bbb'],
  securityGroups: ['sg-0ccc'],
  extraTagKeys: [],
  spot: false,
  kmsKeys: [],
  kmsAliases: [],
};

/** A target that uses exactly `features`. */
function targetWith(features: readonly AwsFeature[]): PolicyTarget {
  return {
    ...base,
    launchTemplates: features.includes('launchTemplate')
      ? [{ region: 'eu-west-1', id: 'lt-0123456789abcdef0' }]
      : [],
    spot: features.includes('spot'),
    kmsKeys: features.includes('kmsKey') ? ['arn:aws:kms:eu-west-1:123456789012:key/1234abcd'] : [],
    kmsAliases: features.includes('kmsAlias') ? ['alias/runners'] : [],
  };
}

/** Every subset of the features. */
const featureSets: AwsFeature[][] = Array.from({ length: 1 << AWS_FEATURES.length }, (_, mask) =>
  AWS_FEATURES.filter((_, i) => mask & (1 << i)),
);

const actionsOf = (doc: PolicyDocument) => new Set(doc.Statement.flatMap((s) => s.Action));
const resourcesOf = (s: PolicyStatement) => (Array.isArray(s.Resource) ? s.Resource : [s.Resource]);
const statement = (doc: PolicyDocument, sid: string) => doc.Statement.find((s) => s.Sid === sid);

describe('the rule data', () => {
  it('statement ids are unique and IAM-valid; every rule has a reason', () => {
    const sids = POLICY_RULES.map((r) => r.sid);
    expect(new Set(sids).size).toBe(sids.length);
    for (const rule of POLICY_RULES) {
      expect(rule.sid).toMatch(/^[A-Za-z0-9]+$/);
      expect(rule.why.length).toBeGreaterThan(20);
    }
    expect(new Set(Object.values(SID))).toEqual(new Set(sids));
  });

  it('no action has a wildcard, in any combination of features', () => {
    for (const features of featureSets) {
      for (const doc of Object.values(policyDocuments(targetWith(features)))) {
        for (const action of actionsOf(doc)) expect(action).toMatch(/^[a-z0-9]+:[A-Za-z]+$/);
      }
    }
  });

  it('every granted action is needed by a call in API_CALLS, and every call is granted (all feature sets)', () => {
    for (const features of featureSets) {
      const target = targetWith(features);
      expect(targetFeatures(target)).toEqual(new Set(features));
      for (const principal of ['controller', 'instance'] as Principal[]) {
        const needed = new Set(activeCalls(principal, new Set(features)).flatMap((c) => c.actions));
        expect(actionsOf(policyDocument(principal, target)), `${principal} with [${features}]`).toEqual(
          needed,
        );
      }
    }
  });

  it('every call in API_CALLS says why; STS GetCallerIdentity needs no permission', () => {
    for (const call of API_CALLS) expect(call.why.length).toBeGreaterThan(20);
    expect(API_CALLS.find((c) => c.call === 'STS GetCallerIdentity')?.actions).toEqual([]);
  });

  it('`*` as resource only where AWS offers no resource-level permission (EC2 Describe), limited to the regions', () => {
    const docs = policyDocuments(targetWith(['launchTemplate', 'spot', 'kmsKey']));
    for (const doc of Object.values(docs)) {
      for (const s of doc.Statement) {
        if (!resourcesOf(s).includes('*')) continue;
        expect(s.Sid).toBe(SID.describe);
        for (const action of s.Action) expect(action).toMatch(/^ec2:Describe/);
        expect(s.Condition).toEqual({ StringEquals: { 'aws:RequestedRegion': ['eu-west-1'] } });
      }
    }
  });
});

describe('scoping', () => {
  const { controller, instance } = policyDocuments(targetWith(['launchTemplate']));

  it('launches only instances with the fleet tag and runner-fleet tag keys', () => {
    const launch = statement(controller, SID.launchTagged);
    expect(launch).toEqual({
      Sid: SID.launchTagged,
      Effect: 'Allow',
      Action: ['ec2:RunInstances', 'ec2:CreateFleet'],
      Resource: 'arn:aws:ec2:eu-west-1:123456789012:instance/*',
      Condition: {
        StringEquals: { 'aws:RequestTag/runner-fleet:fleet': 'acme' },
        'ForAllValues:StringEquals': { 'aws:TagKeys': [...LAUNCH_TAG_KEYS] },
      },
    });
    expect(LAUNCH_TAG_KEYS).toEqual([
      'runner-fleet:fleet',
      'runner-fleet:scale-set',
      'runner-fleet:runner',
      'Name',
    ]);
    // Nothing else in the controller's policy may create or tag an instance.
    for (const s of controller.Statement) {
      if (s.Sid === SID.launchTagged || s.Sid === SID.tagAtLaunch || s.Sid === SID.terminate) continue;
      for (const r of resourcesOf(s)) expect(r).not.toMatch(/:instance\//);
    }
    // Volumes come only with a launch, and are tagged only while launching.
    expect(statement(controller, SID.launchVolumes)).toMatchObject({
      Action: ['ec2:RunInstances', 'ec2:CreateFleet'],
      Resource: 'arn:aws:ec2:eu-west-1:123456789012:volume/*',
    });
    expect(statement(controller, SID.tagVolumesAtLaunch)?.Condition).toEqual({
      StringEquals: { 'ec2:CreateAction': ['RunInstances', 'CreateFleet'] },
    });
  });

  it('the scale sets’ own tag keys are allowed at launch', () => {
    const withTags = policyDocument('controller', {
      ...targetWith([]),
      extraTagKeys: ['team', 'cost-center'],
    });
    for (const sid of [SID.launchTagged, SID.tagAtLaunch]) {
      expect(statement(withTags, sid)?.Condition?.['ForAllValues:StringEquals']).toEqual({
        'aws:TagKeys': [...LAUNCH_TAG_KEYS, 'team', 'cost-center'],
      });
    }
  });

  it('tags only at launch, terminates only the fleet’s instances', () => {
    expect(statement(controller, SID.tagAtLaunch)?.Condition).toEqual({
      StringEquals: {
        'ec2:CreateAction': ['RunInstances', 'CreateFleet'],
        'aws:RequestTag/runner-fleet:fleet': 'acme',
      },
      'ForAllValues:StringEquals': { 'aws:TagKeys': [...LAUNCH_TAG_KEYS] },
    });
    expect(statement(controller, SID.terminate)).toMatchObject({
      Action: ['ec2:TerminateInstances'],
      Resource: 'arn:aws:ec2:eu-west-1:123456789012:instance/*',
      Condition: { StringEquals: { 'ec2:ResourceTag/runner-fleet:fleet': 'acme' } },
    });
  });

  it('network, image, template and role are the configured ones', () => {
    expect(statement(controller, SID.launchSubnets)?.Condition).toEqual({
      StringEquals: { 'ec2:SubnetID': ['subnet-0aaa', 'subnet-0bbb'] },
    });
    expect(statement(controller, SID.launchSecurityGroups)?.Condition).toEqual({
      StringEquals: { 'ec2:SecurityGroupID': ['sg-0ccc'] },
    });
    expect(statement(controller, SID.launchImagesTemplates)?.Resource).toEqual([
      'arn:aws:ec2:eu-west-1::image/ami-0123456789abcdef0',
      'arn:aws:ec2:eu-west-1:123456789012:launch-template/lt-0123456789abcdef0',
    ]);
    expect(statement(controller, SID.passRole)).toMatchObject({
      Resource: 'arn:aws:iam::123456789012:role/runner-fleet-acme-instance',
      Condition: { StringEquals: { 'iam:PassedToService': 'ec2.amazonaws.com' } },
    });
  });

  it('SSM access stays under the prefix; the controller has no GetParameter and no kms:Decrypt', () => {
    expect(statement(controller, SID.parameters)?.Resource).toBe(
      'arn:aws:ssm:eu-west-1:123456789012:parameter/runner-fleet/acme/*',
    );
    expect(statement(controller, SID.listParameters)?.Resource).toEqual([
      'arn:aws:ssm:eu-west-1:123456789012:parameter/runner-fleet/acme',
      'arn:aws:ssm:eu-west-1:123456789012:parameter/runner-fleet/acme/*',
    ]);
    expect(actionsOf(controller).has('ssm:GetParameter')).toBe(false);
    expect(actionsOf(controller).has('kms:Decrypt')).toBe(false);
  });

  it('an instance may read and delete only the parameter tagged with its own ARN, tag fleet instances with its outcome, and nothing else', () => {
    expect(instance.Statement).toEqual([
      {
        Sid: SID.readOwn,
        Effect: 'Allow',
        Action: ['ssm:GetParameter', 'ssm:DeleteParameter'],
        Resource: 'arn:aws:ssm:eu-west-1:123456789012:parameter/runner-fleet/acme/*',
        Condition: {
          StringEquals: { 'aws:ResourceTag/runner-fleet:instance-arn': '${ec2:SourceInstanceARN}' },
          Null: { 'ec2:SourceInstanceARN': 'false' },
        },
      },
      {
        Sid: SID.tagOwnOutcome,
        Effect: 'Allow',
        Action: ['ec2:CreateTags'],
        Resource: 'arn:aws:ec2:eu-west-1:123456789012:instance/*',
        Condition: {
          StringEquals: { 'ec2:ResourceTag/runner-fleet:fleet': 'acme' },
          'ForAllValues:StringEquals': { 'aws:TagKeys': ['runner-fleet:exit-code'] },
        },
      },
    ]);
  });

  it('the instance ARN a parameter is tagged with is the one ec2:SourceInstanceARN carries', () => {
    expect(instanceArn('eu-west-1', '123456789012', 'i-0123456789abcdef0')).toBe(
      'arn:aws:ec2:eu-west-1:123456789012:instance/i-0123456789abcdef0',
    );
    expect(instanceArn('cn-north-1', '123456789012', 'i-1')).toBe(
      'arn:aws-cn:ec2:cn-north-1:123456789012:instance/i-1',
    );
  });

  it('launch-template scoped statements and calls appear only with a launch template', () => {
    const plain = policyDocument('controller', targetWith([]));
    expect(actionsOf(plain).has('ec2:CreateFleet')).toBe(false);
    expect(actionsOf(plain).has('ec2:DescribeLaunchTemplates')).toBe(false);
    expect(statement(plain, SID.tagAtLaunch)?.Condition?.StringEquals?.['ec2:CreateAction']).toEqual([
      'RunInstances',
    ]);
    expect(statement(plain, SID.launchImagesTemplates)?.Resource).toBe(
      'arn:aws:ec2:eu-west-1::image/ami-0123456789abcdef0',
    );
  });
});

describe('KMS', () => {
  it('no KMS permission without a configured key', () => {
    for (const doc of Object.values(policyDocuments(targetWith(['launchTemplate', 'spot'])))) {
      expect([...actionsOf(doc)].filter((a) => a.startsWith('kms:'))).toEqual([]);
    }
  });

  it('a key id: encrypt for the controller, decrypt for instances, that key only, only through SSM', () => {
    const { controller, instance } = policyDocuments(targetWith(['kmsKey']));
    const viaSsm = { StringEquals: { 'kms:ViaService': ['ssm.eu-west-1.amazonaws.com'] } };
    expect(statement(controller, SID.encrypt)).toEqual({
      Sid: SID.encrypt,
      Effect: 'Allow',
      Action: ['kms:Encrypt', 'kms:GenerateDataKey'],
      Resource: 'arn:aws:kms:eu-west-1:123456789012:key/1234abcd',
      Condition: viaSsm,
    });
    expect(statement(instance, SID.decrypt)).toMatchObject({
      Action: ['kms:Decrypt'],
      Resource: 'arn:aws:kms:eu-west-1:123456789012:key/1234abcd',
      Condition: viaSsm,
    });
  });

  it('an alias: any key carrying that alias', () => {
    const instance = policyDocument('instance', targetWith(['kmsAlias']));
    expect(statement(instance, SID.decryptByAlias)).toMatchObject({
      Resource: 'arn:aws:kms:eu-west-1:123456789012:key/*',
      Condition: {
        StringEquals: { 'kms:ViaService': ['ssm.eu-west-1.amazonaws.com'] },
        'ForAnyValue:StringEquals': { 'kms:ResourceAliases': ['alias/runners'] },
      },
    });
  });
});

function fleet(yaml: string): FleetConfig {
  const result = parseConfig(yaml, 'fleet.yaml', { env: {} });
  if (!result.ok) throw new Error(JSON.stringify(result.problems));
  return result.config;
}

const header = `name: acme
github: { auth: { token: t } }
webhook: { secret: s }
scaleSets:
`;

describe('from a fleet config', () => {
  it('reads the ec2 scale sets: capacity, tags, the SSM prefix (default or configured) and key', () => {
    const config = fleet(
      header +
        `  - name: lt
    scope: { org: o }
    labels: [a]
    max: 2
    provider:
      kind: ec2
      region: eu-west-1
      launchTemplate: { id: lt-0abc, version: 3 }
      capacity: spot
      tags: { team: ci }
  - name: ami
    scope: { org: o }
    labels: [b]
    max: 2
    provider:
      kind: ec2
      region: eu-west-1
      imageId: ami-0def
      instanceTypes: [m7g.large]
      subnetIds: [subnet-0a]
      securityGroupIds: [sg-0b]
      instanceProfile: arn:aws:iam::210987654321:instance-profile/ci/runners
      ssm: { pathPrefix: /ci/runners, kmsKeyId: alias/ci }
  - name: local
    scope: { org: o }
    labels: [c]
    max: 1
    provider: { kind: process, command: /bin/true }
`,
    );
    const views = ec2ScaleSets(config);
    expect(views).toEqual([
      {
        scaleSet: 'lt',
        region: 'eu-west-1',
        launchTemplate: { id: 'lt-0abc', version: '3' },
        subnetIds: [],
        securityGroupIds: [],
        spot: true,
        tagKeys: ['team'],
        ssm: { pathPrefix: '/runner-fleet/acme' },
      },
      {
        scaleSet: 'ami',
        region: 'eu-west-1',
        imageId: 'ami-0def',
        subnetIds: ['subnet-0a'],
        securityGroupIds: ['sg-0b'],
        instanceProfile: 'arn:aws:iam::210987654321:instance-profile/ci/runners',
        spot: false,
        tagKeys: [],
        ssm: { pathPrefix: '/ci/runners', kmsKeyId: 'alias/ci' },
      },
    ]);
    const target = ec2PolicyTarget(config.name, views);
    // The launch template picks AMI and network for one scale set: those are not narrowed.
    expect(target).toMatchObject({
      account: '*',
      images: 'any',
      subnets: 'any',
      securityGroups: 'any',
      launchTemplates: [{ region: 'eu-west-1', id: 'lt-0abc' }],
      spot: true,
      instanceRoleArns: [
        'arn:aws:iam::*:role/runner-fleet-acme-instance',
        'arn:aws:iam::210987654321:role/runners',
      ],
    });
  });

  it('reads the provider’s refined fields structurally: capacity, tags, ssm', () => {
    const provider = {
      kind: 'ec2',
      region: 'us-east-1',
      launchTemplate: { name: 'runners' },
      capacity: 'spot',
      tags: { team: 'ci', 'cost-center': '42' },
      ssm: { pathPrefix: 'ci/runners/', kmsKeyId: 'alias/ci' },
    };
    const scaleSets = [{ name: 'x', provider }] as unknown as FleetConfig['scaleSets'];
    expect(ec2ScaleSets({ name: 'acme', scaleSets })).toEqual([
      {
        scaleSet: 'x',
        region: 'us-east-1',
        launchTemplate: { name: 'runners' },
        subnetIds: [],
        securityGroupIds: [],
        spot: true,
        tagKeys: ['team', 'cost-center'],
        ssm: { pathPrefix: '/ci/runners', kmsKeyId: 'alias/ci' },
      },
    ]);
  });

  it('narrows to every configured id when each scale set names them', () => {
    const views: Ec2ScaleSetView[] = [
      {
        scaleSet: 'a',
        region: 'eu-west-1',
        imageId: 'ami-1',
        subnetIds: ['subnet-1', 'subnet-2'],
        securityGroupIds: ['sg-1'],
        instanceProfile: 'runners',
        spot: false,
        tagKeys: [],
        ssm: { pathPrefix: '/ci/a', kmsKeyId: '1234abcd-12ab' },
      },
      {
        scaleSet: 'b',
        region: 'us-east-1',
        launchTemplate: { name: 'runners' },
        imageId: 'ami-2',
        subnetIds: ['subnet-3'],
        securityGroupIds: ['sg-2'],
        spot: false,
        tagKeys: [],
        ssm: { pathPrefix: '/ci/b', kmsKeyId: 'arn:aws:kms:us-east-1:123456789012:alias/ci' },
      },
    ];
    const target = ec2PolicyTarget('acme', views, { account: '123456789012', instanceRole: 'ci-runner' });
    expect(target).toMatchObject({
      regions: ['eu-west-1', 'us-east-1'],
      ssmPrefixes: ['/ci/a', '/ci/b'],
      images: [
        { region: 'eu-west-1', id: 'ami-1' },
        { region: 'us-east-1', id: 'ami-2' },
      ],
      subnets: ['subnet-1', 'subnet-2', 'subnet-3'],
      securityGroups: ['sg-1', 'sg-2'],
      launchTemplates: 'any',
      instanceRoleArns: ['arn:aws:iam::123456789012:role/ci-runner'],
      kmsKeys: ['arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab'],
      kmsAliases: ['alias/ci'],
    });
    const controller = policyDocument('controller', target);
    expect(statement(controller, SID.parameters)?.Resource).toEqual([
      'arn:aws:ssm:eu-west-1:123456789012:parameter/ci/a/*',
      'arn:aws:ssm:eu-west-1:123456789012:parameter/ci/b/*',
      'arn:aws:ssm:us-east-1:123456789012:parameter/ci/a/*',
      'arn:aws:ssm:us-east-1:123456789012:parameter/ci/b/*',
    ]);
    expect(statement(controller, SID.launchImagesTemplates)?.Resource).toContain(
      'arn:aws:ec2:us-east-1:123456789012:launch-template/*',
    );
  });

  it('refuses a bad account and scale sets across partitions', () => {
    const view: Ec2ScaleSetView = {
      scaleSet: 'a',
      region: 'eu-west-1',
      imageId: 'ami-1',
      subnetIds: [],
      securityGroupIds: [],
      spot: false,
      tagKeys: [],
      ssm: { pathPrefix: '/p' },
    };
    expect(() => ec2PolicyTarget('acme', [view], { account: '12' })).toThrow(/12 digits/);
    expect(() => ec2PolicyTarget('acme', [view, { ...view, region: 'cn-north-1' }])).toThrow(/partitions/);
    expect(() => ec2PolicyTarget('acme', [])).toThrow(/no ec2 scale sets/);
    const china = policyDocument('controller', ec2PolicyTarget('acme', [{ ...view, region: 'cn-north-1' }]));
    expect(statement(china, SID.passRole)?.Condition).toEqual({
      StringEquals: { 'iam:PassedToService': 'ec2.amazonaws.com.cn' },
    });
    expect(statement(china, SID.terminate)?.Resource).toBe('arn:aws-cn:ec2:cn-north-1:*:instance/*');
  });

  it('a fleet of 6 scale sets in 2 regions stays within the 6,144 characters of a managed policy', () => {
    const hex = (i: number, n: number) => `${i}`.padStart(n, '0');
    const views: Ec2ScaleSetView[] = Array.from({ length: 6 }, (_, i) => ({
      scaleSet: `s${i}`,
      region: i % 2 ? 'eu-west-1' : 'us-east-1',
      launchTemplate: { id: `lt-0${hex(i, 16)}` },
      imageId: `ami-0${hex(i, 16)}`,
      subnetIds: [0, 1, 2].map((n) => `subnet-0${hex(i * 10 + n, 16)}`),
      securityGroupIds: [`sg-0${hex(i, 16)}`],
      spot: i % 2 === 0,
      tagKeys: ['team'],
      ssm: { pathPrefix: '/runner-fleet/acme', kmsKeyId: '1234abcd-12ab-34cd-56ef-1234567890ab' },
    }));
    const { controller } = policyDocuments(ec2PolicyTarget('acme', views, { account: '123456789012' }));
    expect(JSON.stringify(controller).length).toBeLessThan(6144);
  });
});
