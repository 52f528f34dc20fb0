/**
 * deploy/aws/runner-fleet.yaml against real peers: cfn-lint passes on it, and moto's CloudFormation creates it; the
 * policies of the created roles are exactly what src/aws/policies.ts gives for the same values, and the launch
 * template is what the template promises. The AWS CLI of the peers' environment talks to moto (the repository has
 * no CloudFormation or IAM SDK client).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PolicyDocument, PolicyStatement, PolicyTarget } from '../../src/aws/policies.js';
import { policyDocuments } from '../../src/aws/policies.js';
import { renderUserData } from '../../src/aws/user-data.js';
import type { MotoServer } from '../support/moto.js';
import { MOTO_ACCOUNT, awsPeersBin, requireAwsPeers, startMoto } from '../support/moto.js';

const TEMPLATE = fileURLToPath(new URL('../../deploy/aws/runner-fleet.yaml', import.meta.url));
const REGION = 'eu-west-1';

describe.skipIf(!requireAwsPeers('aws/cloudformation'))('deploy/aws/runner-fleet.yaml', () => {
  const bin = awsPeersBin() as string;
  let moto: MotoServer;
  // Made when the suite runs: a skipped suite's body is still collected, and its afterAll would not remove it.
  let dir = '';
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'rf-cfn-'));
  });

  beforeAll(async () => {
    moto = await startMoto();
  });
  afterAll(async () => {
    await moto?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** The AWS CLI against moto; parsed JSON output. */
  function aws(...args: string[]): unknown {
    const result = spawnSync(`${bin}/aws`, [...args, '--output', 'json'], {
      encoding: 'utf8',
      timeout: 60_000,
      maxBuffer: 64 * 1024 * 1024,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir, ...moto.env(REGION) },
    });
    if (result.status !== 0) {
      throw new Error(`aws ${args.join(' ')}: ${result.error?.message ?? ''} ${result.stderr}`);
    }
    return result.stdout.trim() === '' ? undefined : JSON.parse(result.stdout);
  }

  it('passes cfn-lint', () => {
    const result = spawnSync(`${bin}/cfn-lint`, [TEMPLATE], { encoding: 'utf8', timeout: 120_000 });
    expect(result.stdout + result.stderr).toBe('');
    expect(result.status).toBe(0);
  });

  async function createStack(name: string, parameters: Record<string, string>) {
    const file = join(dir, `${name}.json`);
    writeFileSync(
      file,
      JSON.stringify(Object.entries(parameters).map(([k, v]) => ({ ParameterKey: k, ParameterValue: v }))),
    );
    aws(
      'cloudformation',
      'create-stack',
      '--stack-name',
      name,
      '--template-body',
      `file://${TEMPLATE}`,
      '--capabilities',
      'CAPABILITY_NAMED_IAM',
      '--parameters',
      `file://${file}`,
    );
    type Stack = {
      StackStatus: string;
      StackStatusReason?: string;
      Outputs?: { OutputKey: string; OutputValue: string }[];
    };
    const deadline = Date.now() + 60_000;
    for (;;) {
      const { Stacks } = aws('cloudformation', 'describe-stacks', '--stack-name', name) as {
        Stacks: Stack[];
      };
      const stack = Stacks[0] as Stack;
      if (stack.StackStatus === 'CREATE_COMPLETE') {
        return Object.fromEntries((stack.Outputs ?? []).map((o) => [o.OutputKey, o.OutputValue]));
      }
      if (!stack.StackStatus.endsWith('IN_PROGRESS') || Date.now() > deadline) {
        throw new Error(`stack ${name}: ${stack.StackStatus} ${stack.StackStatusReason ?? ''}`);
      }
      await new Promise((r) => setTimeout(r, 500));
    }
  }

  /** The statements of every managed policy attached to a role. */
  function roleStatements(role: string): PolicyStatement[] {
    const { AttachedPolicies } = aws('iam', 'list-attached-role-policies', '--role-name', role) as {
      AttachedPolicies: { PolicyArn: string }[];
    };
    return AttachedPolicies.flatMap(({ PolicyArn }) => {
      const { Policy } = aws('iam', 'get-policy', '--policy-arn', PolicyArn) as {
        Policy: { DefaultVersionId: string };
      };
      const { PolicyVersion } = aws(
        'iam',
        'get-policy-version',
        '--policy-arn',
        PolicyArn,
        '--version-id',
        Policy.DefaultVersionId,
      ) as { PolicyVersion: { Document: PolicyDocument | string } };
      const doc = PolicyVersion.Document;
      return (typeof doc === 'string' ? (JSON.parse(decodeURIComponent(doc)) as PolicyDocument) : doc)
        .Statement;
    });
  }

  const bySid = (statements: PolicyStatement[]) => [...statements].sort((a, b) => a.Sid.localeCompare(b.Sid));

  function network() {
    const { Subnets } = aws('ec2', 'describe-subnets') as { Subnets: { SubnetId: string }[] };
    const { SecurityGroups } = aws('ec2', 'describe-security-groups') as {
      SecurityGroups: { GroupId: string }[];
    };
    const { Images } = aws('ec2', 'describe-images', '--owners', 'amazon') as {
      Images: { ImageId: string }[];
    };
    return {
      subnets: Subnets.slice(0, 2).map((s) => s.SubnetId),
      securityGroup: (SecurityGroups[0] as { GroupId: string }).GroupId,
      image: (Images[0] as { ImageId: string }).ImageId,
    };
  }

  function target(
    outputs: Record<string, string>,
    values: { fleet: string; prefix: string; image: string; subnets: string[]; securityGroups: string[] },
    options: { spot: boolean; kmsKeys: string[]; extraTagKeys?: string[] },
  ): PolicyTarget {
    return {
      fleet: values.fleet,
      partition: 'aws',
      urlSuffix: 'amazonaws.com',
      account: MOTO_ACCOUNT,
      regions: [REGION],
      ssmPrefixes: [values.prefix],
      instanceRoleArns: [outputs.InstanceRoleArn as string],
      images: [{ region: REGION, id: values.image }],
      launchTemplates: [{ region: REGION, id: outputs.LaunchTemplateId as string }],
      subnets: values.subnets,
      securityGroups: values.securityGroups,
      extraTagKeys: options.extraTagKeys ?? [],
      spot: options.spot,
      kmsKeys: options.kmsKeys,
      kmsAliases: [],
    };
  }

  it('creates the defaults: the roles carry exactly the generated policies; pod identity trust', async () => {
    const net = network();
    const outputs = await createStack('acme', {
      FleetName: 'acme',
      ImageId: net.image,
      SubnetIds: net.subnets.join(','),
      SecurityGroupIds: net.securityGroup,
    });
    expect(outputs).toMatchObject({
      ControllerRoleArn: `arn:aws:iam::${MOTO_ACCOUNT}:role/runner-fleet-acme-controller`,
      InstanceRoleArn: `arn:aws:iam::${MOTO_ACCOUNT}:role/runner-fleet-acme-instance`,
      InstanceProfileName: 'runner-fleet-acme-instance',
      SsmPathPrefix: '/runner-fleet/acme',
    });
    const expected = policyDocuments(
      target(
        outputs,
        {
          fleet: 'acme',
          prefix: '/runner-fleet/acme',
          image: net.image,
          subnets: net.subnets,
          securityGroups: [net.securityGroup],
        },
        { spot: false, kmsKeys: [] },
      ),
    );
    expect(bySid(roleStatements('runner-fleet-acme-controller'))).toEqual(
      bySid(expected.controller.Statement),
    );
    expect(bySid(roleStatements('runner-fleet-acme-instance'))).toEqual(bySid(expected.instance.Statement));

    const { Role } = aws('iam', 'get-role', '--role-name', 'runner-fleet-acme-controller') as {
      Role: { AssumeRolePolicyDocument: PolicyDocument };
    };
    expect(Role.AssumeRolePolicyDocument.Statement).toEqual([
      {
        Effect: 'Allow',
        Principal: { Service: 'pods.eks.amazonaws.com' },
        Action: ['sts:AssumeRole', 'sts:TagSession'],
        Condition: {
          StringEquals: {
            'aws:RequestTag/kubernetes-namespace': 'runner-fleet',
            'aws:RequestTag/kubernetes-service-account': 'runner-fleet',
          },
        },
      },
    ]);

    type Version = { LaunchTemplateData: Record<string, unknown> & { UserData: string } };
    const { LaunchTemplateVersions } = aws(
      'ec2',
      'describe-launch-template-versions',
      '--launch-template-id',
      outputs.LaunchTemplateId as string,
    ) as { LaunchTemplateVersions: Version[] };
    const data = (LaunchTemplateVersions[0] as Version).LaunchTemplateData;
    expect(data).toMatchObject({
      ImageId: net.image,
      InstanceInitiatedShutdownBehavior: 'terminate',
      MetadataOptions: { HttpTokens: 'required', HttpEndpoint: 'enabled', HttpPutResponseHopLimit: 1 },
      IamInstanceProfile: { Arn: `arn:aws:iam::${MOTO_ACCOUNT}:instance-profile/runner-fleet-acme-instance` },
    });
    expect(data.InstanceType).toBeUndefined();
    expect(Buffer.from(data.UserData, 'base64').toString('utf8')).toBe(
      renderUserData({ ssmPrefix: '/runner-fleet/acme' }),
    );
  });

  it('with spot, a KMS key, a prefix, extra tag keys and an IAM role as trust: the extra policies', async () => {
    const net = network();
    const key = `arn:aws:kms:${REGION}:${MOTO_ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab`;
    const trusted = `arn:aws:iam::${MOTO_ACCOUNT}:role/controller-host`;
    const outputs = await createStack('ci', {
      FleetName: 'ci',
      ImageId: net.image,
      InstanceType: 't3.small',
      SubnetIds: net.subnets[0] as string,
      SecurityGroupIds: net.securityGroup,
      SsmPathPrefix: '/ci/runners',
      KmsKeyArn: key,
      AllowSpot: 'true',
      ExtraTagKeys: 'team,cost-center',
      ControllerTrust: 'iam-role',
      TrustedRoleArn: trusted,
    });
    expect(outputs.SsmPathPrefix).toBe('/ci/runners');
    const expected = policyDocuments(
      target(
        outputs,
        {
          fleet: 'ci',
          prefix: '/ci/runners',
          image: net.image,
          subnets: [net.subnets[0] as string],
          securityGroups: [net.securityGroup],
        },
        { spot: true, kmsKeys: [key], extraTagKeys: ['team', 'cost-center'] },
      ),
    );
    expect(bySid(roleStatements('runner-fleet-ci-controller'))).toEqual(bySid(expected.controller.Statement));
    expect(bySid(roleStatements('runner-fleet-ci-instance'))).toEqual(bySid(expected.instance.Statement));
    const { Role } = aws('iam', 'get-role', '--role-name', 'runner-fleet-ci-controller') as {
      Role: { AssumeRolePolicyDocument: PolicyDocument };
    };
    expect(Role.AssumeRolePolicyDocument.Statement).toEqual([
      { Effect: 'Allow', Principal: { AWS: trusted }, Action: 'sts:AssumeRole' },
    ]);
    const { LaunchTemplateVersions } = aws(
      'ec2',
      'describe-launch-template-versions',
      '--launch-template-id',
      outputs.LaunchTemplateId as string,
    ) as { LaunchTemplateVersions: { LaunchTemplateData: { InstanceType?: string; UserData: string } }[] };
    const data = LaunchTemplateVersions[0]?.LaunchTemplateData;
    expect(data?.InstanceType).toBe('t3.small');
    expect(Buffer.from(data?.UserData ?? '', 'base64').toString('utf8')).toBe(
      renderUserData({ ssmPrefix: '/ci/runners' }),
    );
  });

  it('IRSA trust: the issuer becomes the principal and the condition keys', async () => {
    const net = network();
    const issuer = `oidc.eks.${REGION}.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE`;
    await createStack('irsa', {
      FleetName: 'irsa',
      ImageId: net.image,
      SubnetIds: net.subnets.join(','),
      SecurityGroupIds: net.securityGroup,
      ControllerTrust: 'eks-irsa',
      EksOidcIssuer: issuer,
      KubernetesNamespace: 'ci',
      KubernetesServiceAccount: 'fleet',
    });
    const { Role } = aws('iam', 'get-role', '--role-name', 'runner-fleet-irsa-controller') as {
      Role: { AssumeRolePolicyDocument: PolicyDocument };
    };
    expect(Role.AssumeRolePolicyDocument.Statement).toEqual([
      {
        Effect: 'Allow',
        Principal: { Federated: `arn:aws:iam::${MOTO_ACCOUNT}:oidc-provider/${issuer}` },
        Action: 'sts:AssumeRoleWithWebIdentity',
        Condition: {
          StringEquals: {
            [`${issuer}:sub`]: 'system:serviceaccount:ci:fleet',
            [`${issuer}:aud`]: 'sts.amazonaws.com',
          },
        },
      },
    ]);
  });
});
