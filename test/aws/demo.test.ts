/**
 * `runner-fleet demo --provider ec2 --aws-endpoint URL` as users run it: the built CLI in a child process against a
 * moto server of its own, with the AWS CLI of the test peers on PATH (the bridged machines' start script uses it).
 * The built-in fleet and a user's fleet.yaml both finish every routable job, the JSON summary reports the EC2 side,
 * and nothing of the fleet is left in moto: no pending or running instance, no runner parameter.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Instance } from '@aws-sdk/client-ec2';
import { DescribeLaunchTemplateVersionsCommand, EC2Client } from '@aws-sdk/client-ec2';
import { SSMClient } from '@aws-sdk/client-ssm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TAG_SCALE_SET } from '../../src/aws/tags.js';
import { SUMMARY_KEYS, runCli } from '../demo/helpers.js';
import { ec2Census } from '../support/ec2-fleet.js';
import { MOTO_CREDENTIALS, awsPeersBin, requireAwsPeers, startMoto } from '../support/moto.js';
import type { MotoServer } from '../support/moto.js';

const REGION = 'eu-west-1';

const tagOf = (instance: Instance, key: string) => instance.Tags?.find((t) => t.Key === key)?.Value;

describe.skipIf(!requireAwsPeers('aws/demo'))('demo --provider ec2', () => {
  let moto: MotoServer;
  let ec2: EC2Client;
  let ssm: SSMClient;
  let env: NodeJS.ProcessEnv;
  // Made when the suite runs: a skipped suite's body is still collected, and its afterAll would not remove it.
  let dir = '';
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'rf-ec2-demo-'));
  });

  beforeAll(async () => {
    moto = await startMoto();
    const base = { region: REGION, endpoint: moto.url, credentials: MOTO_CREDENTIALS };
    ec2 = new EC2Client(base);
    ssm = new SSMClient(base);
    // The AWS CLI of the test peers, for the start script on the bridged machines; no AWS credentials at all.
    env = { PATH: `${awsPeersBin()}:${process.env.PATH ?? '/usr/bin:/bin'}` };
  }, 60_000);

  afterAll(async () => {
    ec2?.destroy();
    ssm?.destroy();
    await moto?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('runs the built-in EC2 fleet in moto and exits 0 with nothing left there', async () => {
    const run = await runCli(
      ['demo', '--provider', 'ec2', '--aws-endpoint', moto.url, '--jobs', '12', '--duration', '4s', '--json'],
      env,
    );
    expect(run.code, run.stderr.slice(-3000)).toBe(0);
    const lines = run.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(1);
    const summary = JSON.parse(lines[0]!) as Record<string, unknown>;
    for (const key of SUMMARY_KEYS) expect(summary, key).toHaveProperty(key);
    expect(summary).toMatchObject({
      jobs: 12,
      routable: 11,
      completed: 11,
      failed: 0,
      cancelled: 1,
      unroutable: 1,
      leakedRunners: 0,
      leakedInstances: 0,
      ok: true,
      problems: [],
    });
    const sets = summary.scaleSets as { name: string; provider: string; jobs: number }[];
    expect(sets.map((s) => [s.name, s.provider])).toEqual([
      ['ec2-spot', 'ec2'],
      ['ec2-persistent', 'ec2'],
    ]);
    const ec2Summary = summary.ec2 as {
      endpoint: string;
      region: string;
      instancesLaunched: number;
      instancesLeft: number;
      parametersLeft: number;
      awsCalls: Record<string, number>;
    };
    expect(ec2Summary).toMatchObject({
      endpoint: moto.url,
      region: REGION,
      instancesLeft: 0,
      parametersLeft: 0,
    });
    // Each ephemeral job ran on an instance of its own; the cancelled job's runner counts too.
    const spotJobs = sets.find((s) => s.name === 'ec2-spot')!.jobs;
    expect(ec2Summary.instancesLaunched).toBeGreaterThanOrEqual(spotJobs);
    // Both launch paths: CreateFleet from the launch template, RunInstances from the AMI.
    expect(ec2Summary.awsCalls.CreateFleet).toBeGreaterThanOrEqual(spotJobs);
    expect(ec2Summary.awsCalls.RunInstances ?? 0).toBeGreaterThanOrEqual(1);
    expect(ec2Summary.awsCalls.PutParameter).toBe(ec2Summary.instancesLaunched);
    expect(run.stderr).toMatch(/Dashboard: +http:\/\/127\.0\.0\.1:\d+\//);

    // moto agrees: every instance of the fleet ended, no runner parameter is left.
    const census = await ec2Census({ ec2, ssm }, 'demo', ['/runner-fleet/demo']);
    const instances = census.instances;
    expect(instances).toHaveLength(ec2Summary.instancesLaunched);
    expect(census.liveIds).toEqual([]);
    expect(census.parameters).toEqual([]);
    const spot = instances.filter((i) => tagOf(i, TAG_SCALE_SET) === 'ec2-spot');
    expect(spot.length).toBe(spotJobs);
    expect(spot.every((i) => i.InstanceLifecycle === 'spot')).toBe(true);
    expect(new Set(spot.map((i) => i.InstanceType)).size).toBeGreaterThanOrEqual(1);
    const persistent = instances.filter((i) => tagOf(i, TAG_SCALE_SET) === 'ec2-persistent');
    expect(persistent.length).toBeGreaterThanOrEqual(1);
    expect(persistent.every((i) => i.InstanceLifecycle !== 'spot')).toBe(true);
    // The launch template the demo created is one the provider accepts: IMDSv2, terminate on shutdown.
    const template = await ec2.send(
      new DescribeLaunchTemplateVersionsCommand({
        LaunchTemplateName: 'runner-fleet-demo',
        Versions: ['$Default'],
      }),
    );
    expect(template.LaunchTemplateVersions?.[0]?.LaunchTemplateData).toMatchObject({
      MetadataOptions: { HttpTokens: 'required' },
      InstanceInitiatedShutdownBehavior: 'terminate',
      IamInstanceProfile: { Name: 'runner-fleet-demo-instance' },
    });
  }, 300_000);

  it("--config points a user's ec2 scale sets at the demo's world", async () => {
    const file = join(dir, 'fleet.yaml');
    writeFileSync(
      file,
      `name: acme-ci
github:
  url: https://github.com
  auth: { token: "\${env:GITHUB_TOKEN_NOT_SET_IN_THIS_TEST}" }
webhook: { secret: "\${env:WEBHOOK_SECRET_NOT_SET_IN_THIS_TEST}" }
scaleSets:
  - name: ci
    scope: { org: acme }
    labels: [linux, ci]
    minIdle: 1
    max: 4
    provider:
      kind: ec2
      region: us-east-2
      launchTemplate: { id: lt-0123456789abcdef0 }
      instanceTypes: [m7i.large, m6i.large]
      subnetIds: [subnet-0aaaaaaaaaaaaaaaa, subnet-0bbbbbbbbbbbbbbbb]
      capacity: spot
      ssm: { pathPrefix: /ci/runners, kmsKeyId: alias/ci-runners }
`,
    );
    const run = await runCli(
      [
        'demo',
        '--provider',
        'ec2',
        '--aws-endpoint',
        moto.url,
        '--config',
        file,
        '--jobs',
        '6',
        '--duration',
        '3s',
        '--json',
      ],
      env,
    );
    expect(run.code, run.stderr.slice(-3000)).toBe(0);
    const summary = JSON.parse(run.stdout.trim()) as Record<string, unknown>;
    expect(summary).toMatchObject({ routable: 5, completed: 5, failed: 0, ok: true });
    expect(summary.ec2).toMatchObject({ instancesLeft: 0, parametersLeft: 0 });
    expect(run.stderr).toContain(
      "Note: ci: launches from the demo's launch template, subnets and instance profile in the AWS endpoint " +
        '(region eu-west-1); SSM default key instead of kmsKeyId',
    );
    expect(run.stderr).toContain('Note: ci: minIdle 0 for the demo');
    const census = await ec2Census({ ec2, ssm }, 'acme-ci', ['/ci/runners']);
    expect(census.instances.length).toBeGreaterThanOrEqual(4);
    expect(census.instances.every((i) => i.InstanceLifecycle === 'spot')).toBe(true);
    expect(census.liveIds).toEqual([]);
    expect(census.parameters).toEqual([]);
  }, 300_000);

  it('refuses to run without --aws-endpoint, against AWS itself, or without the AWS CLI', async () => {
    const missing = await runCli(['demo', '--provider', 'ec2'], env);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('--provider ec2 needs --aws-endpoint URL');
    const real = await runCli(
      ['demo', '--provider', 'ec2', '--aws-endpoint', 'https://ec2.eu-west-1.amazonaws.com'],
      env,
    );
    expect(real.code).toBe(2);
    expect(real.stderr).toContain('is AWS itself');
    const stray = await runCli(['demo', '--aws-endpoint', moto.url], env);
    expect(stray.code).toBe(2);
    expect(stray.stderr).toContain('--aws-endpoint goes with --provider ec2');
    const noCli = await runCli(['demo', '--provider', 'ec2', '--aws-endpoint', moto.url], {
      PATH: '/usr/bin:/bin',
    });
    expect(noCli.code).toBe(1);
    expect(noCli.stderr).toMatch(/needs aws on PATH/);
  }, 60_000);
});
