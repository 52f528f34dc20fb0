/**
 * checkEc2Access against moto: a good fleet passes every line and leaves no probe behind; a missing subnet, a missing
 * launch template and one without IMDSv2 are each named; with moto's IAM enforcement on, a credential that lacks an
 * action gets the action and the statement (Sid) that grants it.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateLaunchTemplateCommand, DescribeSubnetsCommand, EC2Client } from '@aws-sdk/client-ec2';
import { GetParameterCommand, PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AwsClients } from '../../src/aws/clients.js';
import { awsClientConfig, createAwsClients } from '../../src/aws/clients.js';
import { SID } from '../../src/aws/policies.js';
import { parseConfig } from '../../src/config/index.js';
import type { FleetConfig } from '../../src/core/fleet-config.js';
import { ACCESS_PROBE_NAME, checkEc2Access } from '../../src/providers/ec2/access-check.js';
import type { MotoServer } from '../support/moto.js';
import { MOTO_ACCOUNT, MOTO_CREDENTIALS, awsPeersBin, requireAwsPeers, startMoto } from '../support/moto.js';

const REGION = 'eu-west-1';
/** A launch without a launch template (the provider's imageId path). */
const IMAGE_LAUNCH = 'imageId: ami-0123456789abcdef0, instanceTypes: [t3.small], instanceProfile: runners';

describe.skipIf(!requireAwsPeers('aws/access-check'))('checkEc2Access on moto', () => {
  let moto: MotoServer;
  let clients: AwsClients;
  let ec2: EC2Client;
  let ssm: SSMClient;
  let secureTemplate: string;
  let openTemplate: string;
  let subnets: string[];
  // Made when the suite runs: a skipped suite's body is still collected, and its afterAll would not remove it.
  let dir = '';
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'rf-access-'));
  });

  beforeAll(async () => {
    moto = await startMoto();
    const config = awsClientConfig({ region: REGION, endpoint: moto.url, credentials: MOTO_CREDENTIALS });
    ec2 = new EC2Client(config);
    ssm = new SSMClient(config);
    clients = createAwsClients({ credentials: MOTO_CREDENTIALS });
    const secure = await ec2.send(
      new CreateLaunchTemplateCommand({
        LaunchTemplateName: 'runners',
        LaunchTemplateData: { MetadataOptions: { HttpTokens: 'required' } },
      }),
    );
    secureTemplate = secure.LaunchTemplate?.LaunchTemplateId as string;
    const open = await ec2.send(
      new CreateLaunchTemplateCommand({ LaunchTemplateName: 'open', LaunchTemplateData: {} }),
    );
    openTemplate = open.LaunchTemplate?.LaunchTemplateId as string;
    subnets = ((await ec2.send(new DescribeSubnetsCommand({}))).Subnets ?? [])
      .slice(0, 2)
      .map((s) => s.SubnetId as string);
  });
  afterAll(async () => {
    clients?.destroy();
    ec2?.destroy();
    ssm?.destroy();
    await moto?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  function fleet(providers: string[]): FleetConfig {
    const sets = providers
      .map(
        (provider, i) => `  - name: set${i}
    scope: { org: octo-org }
    labels: [l${i}]
    max: 2
    provider: { kind: ec2, region: ${REGION}, endpoint: "${moto.url}", ${provider} }
`,
      )
      .join('');
    const result = parseConfig(
      `name: acme\ngithub: { auth: { token: t } }\nwebhook: { secret: s }\nscaleSets:\n${sets}`,
      'fleet.yaml',
      { env: {} },
    );
    if (!result.ok) throw new Error(JSON.stringify(result.problems));
    return result.config;
  }

  const texts = (lines: readonly { ok: boolean; text: string }[]) =>
    lines.map((l) => `${l.ok ? 'ok' : 'FAIL'} ${l.text}`);

  async function probeExists(prefix: string): Promise<boolean> {
    try {
      await ssm.send(new GetParameterCommand({ Name: `${prefix}/${ACCESS_PROBE_NAME}` }));
      return true;
    } catch (error) {
      if ((error as Error).name === 'ParameterNotFound') return false;
      throw error;
    }
  }

  it('a good fleet: identity, launch templates (by id and by name), subnets and the SSM prefix all pass', async () => {
    const config = fleet([
      `launchTemplate: { id: ${secureTemplate}, version: 1 }, subnetIds: [${subnets.join(', ')}]`,
      `launchTemplate: { name: runners }, subnetIds: [${subnets[0]}]`,
    ]);
    // A probe left over from an interrupted check does not get in the way.
    await ssm.send(
      new PutParameterCommand({
        Name: `/runner-fleet/acme/${ACCESS_PROBE_NAME}`,
        Value: 'x',
        Type: 'String',
      }),
    );
    const report = await checkEc2Access(config, clients, AbortSignal.timeout(60_000));
    expect(texts(report.lines)).toEqual([
      `ok AWS identity (endpoint ${moto.url}): arn:aws:sts::${MOTO_ACCOUNT}:user/moto (account ${MOTO_ACCOUNT})`,
      `ok launch template ${secureTemplate} version 1 exists in ${REGION} and requires IMDSv2`,
      `ok launch template "runners" (${secureTemplate}) version 1 exists in ${REGION} and requires IMDSv2`,
      `ok subnets ${subnets.join(', ')} exist in ${REGION}`,
      `ok SSM prefix /runner-fleet/acme is writable in ${REGION} (put and deleted /runner-fleet/acme/${ACCESS_PROBE_NAME})`,
    ]);
    expect(report.ok).toBe(true);
    expect(await probeExists('/runner-fleet/acme')).toBe(false);
  });

  it('names a missing subnet, a missing launch template and one that does not require IMDSv2', async () => {
    const config = fleet([
      `launchTemplate: { id: lt-0123456789abcdef0 }, subnetIds: [${subnets[0]}, subnet-0123456789abcdef0]`,
      `launchTemplate: { id: ${openTemplate} }, ssm: { pathPrefix: /ci/runners, kmsKeyId: alias/ci }`,
      'launchTemplate: { name: missing, version: 3 }',
    ]);
    const report = await checkEc2Access(config, clients, AbortSignal.timeout(60_000));
    expect(report.ok).toBe(false);
    expect(texts(report.lines)).toEqual([
      expect.stringMatching(/^ok AWS identity/),
      `FAIL launch template lt-0123456789abcdef0 (scale set set0) does not exist in ${REGION}`,
      `FAIL launch template ${openTemplate} version 1 (scale set set1) does not require IMDSv2 ` +
        '(MetadataOptions.HttpTokens is not set): set HttpTokens to required, so that nothing on a runner can ' +
        'read the instance credentials with a plain GET',
      `FAIL launch template "missing" (scale set set2) does not exist in ${REGION}`,
      `ok subnet ${subnets[0]} exist in ${REGION}`,
      `FAIL subnet subnet-0123456789abcdef0 (scale set set0) does not exist in ${REGION}`,
      `ok SSM prefix /runner-fleet/acme is writable in ${REGION} (put and deleted /runner-fleet/acme/${ACCESS_PROBE_NAME})`,
      `ok SSM prefix /ci/runners is writable in ${REGION} with KMS key alias/ci (put and deleted /ci/runners/${ACCESS_PROBE_NAME})`,
    ]);
  });

  it('no ec2 scale set: nothing to check; an aborted signal: a failing line, no exception', async () => {
    const none = parseConfig(
      'name: acme\ngithub: { auth: { token: t } }\nwebhook: { secret: s }\nscaleSets:\n' +
        '  - { name: p, scope: { org: o }, labels: [x], max: 1, provider: { kind: process, command: /bin/true } }\n',
      'fleet.yaml',
      { env: {} },
    );
    if (!none.ok) throw new Error('bad fixture');
    expect(await checkEc2Access(none.config, clients, AbortSignal.timeout(10_000))).toEqual({
      ok: true,
      lines: [],
    });
    const aborted = await checkEc2Access(fleet([IMAGE_LAUNCH]), clients, AbortSignal.abort());
    expect(aborted).toEqual({
      ok: false,
      lines: [{ ok: false, text: 'AWS access check aborted before it was complete' }],
    });
  });

  it('an unreachable endpoint: every line fails with the cause', async () => {
    const config = fleet([`${IMAGE_LAUNCH}, subnetIds: [${subnets[0]}]`]).scaleSets.map((s) => ({
      ...s,
      provider: { ...s.provider, endpoint: 'http://127.0.0.1:9' },
    }));
    const unreachable = createAwsClients({ credentials: MOTO_CREDENTIALS, maxAttempts: 1 });
    try {
      const report = await checkEc2Access(
        { name: 'acme', scaleSets: config },
        unreachable,
        AbortSignal.timeout(60_000),
      );
      expect(report.ok).toBe(false);
      expect(report.lines.map((l) => l.ok)).toEqual([false, false, false]);
      expect(report.lines[0]?.text).toMatch(/STS GetCallerIdentity failed in eu-west-1: .*ECONNREFUSED/);
    } finally {
      unreachable.destroy();
    }
  });

  // Last: it turns on moto's IAM enforcement for the rest of this server's life.
  it('a denied call names the IAM action and the statement that grants it', async () => {
    const bin = awsPeersBin() as string;
    const aws = (...args: string[]) => {
      const result = spawnSync(`${bin}/aws`, [...args, '--output', 'json'], {
        encoding: 'utf8',
        timeout: 60_000,
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir, ...moto.env(REGION) },
      });
      if (result.status !== 0) throw new Error(`aws ${args.join(' ')}: ${result.stderr}`);
      return JSON.parse(result.stdout || '{}') as Record<string, Record<string, string>>;
    };
    aws('iam', 'create-user', '--user-name', 'partial');
    // Everything the check needs except ec2:DescribeSubnets and ssm:PutParameter.
    aws(
      'iam',
      'put-user-policy',
      '--user-name',
      'partial',
      '--policy-name',
      'partial',
      '--policy-document',
      JSON.stringify({
        Version: '2012-10-17',
        Statement: [
          {
            Effect: 'Allow',
            Action: [
              'ec2:DescribeLaunchTemplates',
              'ec2:DescribeLaunchTemplateVersions',
              'ssm:DeleteParameter',
              'ssm:AddTagsToResource',
            ],
            Resource: '*',
          },
        ],
      }),
    );
    const key = aws('iam', 'create-access-key', '--user-name', 'partial').AccessKey as Record<string, string>;
    const partial = createAwsClients({
      credentials: { accessKeyId: key.AccessKeyId as string, secretAccessKey: key.SecretAccessKey as string },
    });
    const enforce = await fetch(`${moto.url}/moto-api/reset-auth`, { method: 'POST', body: '0' });
    expect(enforce.ok).toBe(true);
    try {
      const config = fleet([`launchTemplate: { id: ${secureTemplate} }, subnetIds: [${subnets[0]}]`]);
      const report = await checkEc2Access(config, partial, AbortSignal.timeout(60_000));
      expect(report.ok).toBe(false);
      const lines = texts(report.lines);
      expect(lines[0]).toMatch(/^ok AWS identity .*:user\/partial/);
      expect(lines[1]).toMatch(/^ok launch template .* requires IMDSv2$/);
      expect(lines[2]).toMatch(
        new RegExp(
          `^FAIL subnets in ${REGION} \\(scale set set0\\): cannot be checked: .*; needs ec2:DescribeSubnets ` +
            `\\(statement ${SID.describe} of runner-fleet aws-policy\\)$`,
        ),
      );
      expect(lines[3]).toMatch(
        new RegExp(
          `^FAIL SSM prefix /runner-fleet/acme is not writable in ${REGION} \\(scale set set0\\): PutParameter ` +
            `.* failed: .*; needs ssm:PutParameter \\(statement ${SID.parameters} of runner-fleet aws-policy\\)$`,
        ),
      );
      expect(lines).toHaveLength(4);
    } finally {
      partial.destroy();
    }
  });
});
