import { generateKeyPairSync } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { formatProblem, loadConfig } from '../../src/config/index.js';

const example = fileURLToPath(new URL('../../examples/fleet.yaml', import.meta.url));
const ec2Example = fileURLToPath(new URL('../../examples/fleet-ec2.yaml', import.meta.url));

describe('examples/fleet.yaml', () => {
  it('validates, with a scale set for each of the process, sim and kubernetes providers', () => {
    const result = loadConfig(example, {
      env: { GITHUB_TOKEN: 'ghp_example', WEBHOOK_SECRET: 'example-secret' },
    });
    if (!result.ok) throw new Error(result.problems.map(formatProblem).join('\n'));
    const kinds = result.config.scaleSets.map((set) => set.provider.kind);
    expect(kinds).toEqual(['process', 'sim', 'kubernetes']);
    expect(result.config.scaleSets.find((set) => set.identity)?.identity).toEqual({
      aws: { roleArn: 'arn:aws:iam::123456789012:role/ci-runner' },
    });
  });

  it('names the environment variables it needs when they are missing', () => {
    const result = loadConfig(example, { env: {} });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.problems.map((problem) => problem.message)).toEqual([
      'environment variable GITHUB_TOKEN is not set',
      'environment variable WEBHOOK_SECRET is not set',
    ]);
  });
});

describe('examples/fleet-ec2.yaml', () => {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
  const env = {
    GITHUB_APP_PRIVATE_KEY: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    WEBHOOK_SECRET: 'example-secret',
  };

  it('validates: an ephemeral JIT set on spot through a launch template, a persistent token-mode set', () => {
    const result = loadConfig(ec2Example, { env });
    if (!result.ok) throw new Error(result.problems.map(formatProblem).join('\n'));
    const [spot, persistent] = result.config.scaleSets;
    expect(result.config.scaleSets).toHaveLength(2);
    expect(spot).toMatchObject({
      ephemeral: true,
      registration: 'jit',
      minIdle: 0,
      rerunInterruptedJobs: true,
    });
    expect(spot!.provider).toMatchObject({
      kind: 'ec2',
      launchTemplate: { id: 'lt-0123456789abcdef0' },
      capacity: 'spot',
      allocationStrategy: 'price-capacity-optimized',
      onDemandFailover: [
        'InsufficientInstanceCapacity',
        'MaxSpotInstanceCountExceeded',
        'UnfulfillableCapacity',
      ],
    });
    const sp = spot!.provider as unknown as { instanceTypes: string[]; subnetIds: string[] };
    expect(sp.instanceTypes.length).toBeGreaterThan(1);
    expect(sp.subnetIds.length).toBeGreaterThan(1);
    expect(persistent).toMatchObject({ ephemeral: false, registration: 'token', minIdle: 1 });
    expect(persistent!.provider).toMatchObject({
      kind: 'ec2',
      imageId: 'ami-0123456789abcdef0',
      capacity: 'on-demand',
      userData: { runAs: 'runner', hooks: { jobStarted: '/opt/ci/hooks/job-started.sh' } },
    });
  });

  it('names the environment variables it needs when they are missing', () => {
    const result = loadConfig(ec2Example, { env: {} });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.problems.map((problem) => problem.message)).toEqual([
      'environment variable GITHUB_APP_PRIVATE_KEY is not set',
      'environment variable WEBHOOK_SECRET is not set',
    ]);
  });
});
