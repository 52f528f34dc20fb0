import { describe, expect, it } from 'vitest';
import { ec2ProviderSchema } from './schema.js';
import { renderEc2UserData, userDataSettingsOf } from './user-data.js';

const base = { kind: 'ec2', region: 'eu-west-1' } as const;
const image = { ...base, imageId: 'ami-0123abcd', instanceProfile: 'runner', instanceTypes: ['m7g.large'] };
const template = { ...base, launchTemplate: { name: 'ci-runners' } };

/** `path: message`, with a record key's own message rather than zod's "Invalid key in record" (as the loader does). */
function problems(block: unknown): string[] {
  const result = ec2ProviderSchema.safeParse(block);
  if (result.success) return [];
  return result.error.issues.map((i) => {
    const message = i.code === 'invalid_key' ? (i.issues[0]?.message ?? i.message) : i.message;
    return `${i.path.join('.') || '(block)'}: ${message}`;
  });
}

describe('ec2 provider schema', () => {
  it('parses the two launch shapes, leaving capacity-dependent defaults to the provider', () => {
    expect(ec2ProviderSchema.parse(image)).toEqual({
      ...image,
      capacity: 'on-demand',
      ssm: {},
    });
    const parsed = ec2ProviderSchema.parse({
      ...template,
      launchTemplate: { id: 'lt-0abc', version: 7 },
      instanceTypes: ['m7g.large', 'm6g.large'],
      subnetIds: ['subnet-0a', 'subnet-0b'],
      capacity: 'spot',
      allocationStrategy: 'capacity-optimized',
      onDemandFailover: false,
      ssm: { pathPrefix: '/ci/runners', kmsKeyId: 'alias/runners' },
      tags: { team: 'ci' },
    });
    expect(parsed.launchTemplate).toEqual({ id: 'lt-0abc', version: '7' });
    expect(ec2ProviderSchema.parse(parsed)).toEqual(parsed);
  });

  it('needs an instance profile and one instance type for an imageId launch without a template', () => {
    expect(problems({ ...base, imageId: 'ami-0123abcd' })).toEqual([
      'imageId: an `imageId` launch without a launch template needs `instanceProfile` (the instance reads its SSM parameter with it)',
      'imageId: an `imageId` launch without a launch template needs `instanceTypes` (one type)',
    ]);
    expect(problems({ ...image, subnetIds: ['subnet-0a', 'subnet-0b'] })).toEqual([
      'subnetIds: several subnets launch through CreateFleet, which needs `launchTemplate`; give one subnet or a launch template',
    ]);
  });

  it('keeps instance profile, security groups and user data in the launch template when there is one', () => {
    expect(
      problems({ ...template, instanceProfile: 'runner', securityGroupIds: ['sg-0a'], userData: {} }),
    ).toEqual([
      'instanceProfile: with `launchTemplate`, put `instanceProfile` in the launch template (CreateFleet cannot override it)',
      'securityGroupIds: with `launchTemplate`, put `securityGroupIds` in the launch template (CreateFleet cannot override it)',
      'userData: with `launchTemplate`, the template’s user data starts the runner; remove `userData`',
    ]);
  });

  it('checks allocation strategies against the capacity and the launch path', () => {
    const fleet = { ...template, instanceTypes: ['m7g.large', 'm6g.large'] };
    expect(problems({ ...fleet, capacity: 'spot', allocationStrategy: 'price-capacity-optimized' })).toEqual(
      [],
    );
    expect(problems({ ...fleet, allocationStrategy: 'prioritized' })).toEqual([]);
    expect(problems({ ...fleet, allocationStrategy: 'capacity-optimized' })).toEqual([
      'allocationStrategy: `capacity-optimized` is not a on-demand allocation strategy; use one of lowest-price, prioritized',
    ]);
    expect(problems({ ...template, capacity: 'spot', allocationStrategy: 'lowest-price' })).toEqual([
      'allocationStrategy: an allocation strategy chooses among several instance types or subnets; with one of each (RunInstances) remove it',
    ]);
  });

  it('takes failover codes for spot only, and never an empty list', () => {
    expect(
      problems({ ...template, capacity: 'spot', onDemandFailover: ['InsufficientInstanceCapacity'] }),
    ).toEqual([]);
    expect(problems({ ...template, capacity: 'spot', onDemandFailover: [] })).toEqual([
      'onDemandFailover: give at least one error code, or false to turn failover off',
    ]);
    expect(problems({ ...template, onDemandFailover: false })).toEqual([
      'onDemandFailover: `onDemandFailover` applies to `capacity: spot` only',
    ]);
    expect(problems({ ...template, spot: true })).toEqual(['(block): Unrecognized key: "spot"']);
  });

  it('rejects reserved and oversized tags, bad SSM paths, duplicates and malformed ids', () => {
    expect(
      problems({
        ...template,
        tags: { Name: 'x', 'runner-fleet:fleet': 'y', 'aws:cloudformation': 'z', ok: 'v'.repeat(257) },
        ssm: { pathPrefix: '/aws/runners' },
        instanceTypes: ['m7g.large', 'm7g.large'],
        subnetIds: ['subnet-xyz'],
      }),
    ).toEqual([
      'instanceTypes.1: duplicate instance type m7g.large',
      'subnetIds.0: must look like subnet-0123456789abcdef0',
      'ssm.pathPrefix: must not start with /aws or /ssm (reserved by AWS)',
      'tags.Name: runner-fleet sets this tag itself (Name and runner-fleet:*)',
      'tags.runner-fleet:fleet: runner-fleet sets this tag itself (Name and runner-fleet:*)',
      'tags.aws:cloudformation: tag keys starting with aws: are reserved',
      'tags.ok: a tag value is at most 256 characters',
    ]);
    expect(problems({ ...template, ssm: { pathPrefix: 'runners/' } })).toEqual([
      'ssm.pathPrefix: must be an SSM path such as /runner-fleet/ci: /-separated segments of letters, digits and _.-',
    ]);
    expect(
      problems({ ...image, instanceProfile: 'arn:aws:iam::123456789012:instance-profile/ci/runner' }),
    ).toEqual([]);
    expect(problems({ ...image, instanceProfile: 'arn:aws:iam::12:role/x' })).toHaveLength(1);
  });

  it('takes the start script settings for imageId launches, with durations and bounds, parsed idempotently', () => {
    const userData = {
      runnerDir: '/opt/runner',
      runAs: 'runner',
      hooks: { jobStarted: '/opt/hooks/started.sh', jobCompleted: '/opt/hooks/completed.sh' },
      preRunnerScript: 'apt-get install -y jq\n',
      shutdownCommand: 'systemctl poweroff',
      parameterTimeout: '90s',
    };
    const parsed = ec2ProviderSchema.parse({ ...image, userData });
    expect(parsed.userData).toEqual({ ...userData, parameterTimeout: 90_000 });
    expect(ec2ProviderSchema.parse(parsed)).toEqual(parsed);
    expect(userDataSettingsOf('/runner-fleet/acme', { parameterTimeout: 90_500 })).toEqual({
      ssmPrefix: '/runner-fleet/acme',
      parameterTimeoutSeconds: 91,
    });
    const text = renderEc2UserData({
      fleet: 'acme',
      scaleSet: 'linux',
      runnerName: 'linux-abc',
      region: 'eu-west-1',
      parameterPrefix: '/runner-fleet/acme',
      settings: parsed.userData,
    });
    for (const line of [
      `RUNNER_FLEET_SSM_PREFIX='/runner-fleet/acme'`,
      `RUNNER_FLEET_RUNNER_DIR='/opt/runner'`,
      `RUNNER_FLEET_RUN_AS='runner'`,
      `RUNNER_FLEET_HOOK_JOB_STARTED='/opt/hooks/started.sh'`,
      `RUNNER_FLEET_HOOK_JOB_COMPLETED='/opt/hooks/completed.sh'`,
      `RUNNER_FLEET_SHUTDOWN_COMMAND='systemctl poweroff'`,
      `RUNNER_FLEET_PARAMETER_TIMEOUT='90'`,
      'apt-get install -y jq',
    ]) {
      expect(text).toContain(line);
    }
  });

  it('names each bad user data setting, and user data that would not fit EC2’s 16 KB', () => {
    expect(
      problems({
        ...image,
        userData: {
          runnerDir: 'opt/runner',
          runAs: 'Runner User',
          hooks: { jobStarted: '/opt/a\nb' },
          shutdownCommand: 'a\nb',
          parameterTimeout: '5s',
          preRunnerScript: 'x\nRUNNER_FLEET_PRE_RUNNER_EOF\n',
          secrets: 'no',
        },
      }),
    ).toEqual([
      'userData.runnerDir: runnerDir must be an absolute path (start with /)',
      'userData.runAs: must be a Linux user name: 1 to 32 of lower case letters, digits, _ and -, not starting with a digit',
      'userData.hooks.jobStarted: hooks.jobStarted must not contain control characters (newline, tab, ...)',
      'userData.preRunnerScript: must not contain a line RUNNER_FLEET_PRE_RUNNER_EOF (it ends the embedded script)',
      'userData.shutdownCommand: must be one line',
      'userData.parameterTimeout: must be at least 30s',
      'userData: Unrecognized key: "secrets"',
    ]);
    const big = problems({ ...image, userData: { preRunnerScript: 'echo x\n'.repeat(1000) } });
    expect(big).toHaveLength(1);
    expect(big[0]).toMatch(/^userData: user data is \d+ bytes; EC2 takes at most 16384/);
  });
});
