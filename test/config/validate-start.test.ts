/**
 * What `validate` accepts, `start` accepts: ec2 provider blocks generated over the schema's options (launch template
 * or AMI, one or several instance types and subnets, spot or on-demand, allocation strategies, failover codes, SSM
 * settings, user data), loaded as `validate` loads them; each one it accepts is set up by the provider list exactly
 * as `start` sets it up (the module's setup, then the scale set's provider from its factory), which must not refuse.
 */
import fc from 'fast-check';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { formatProblem, loadConfig } from '../../src/config/index.js';
import { createProviderRegistry } from '../../src/providers/registry.js';

const types = fc.subarray(['t3.micro', 't3a.micro', 'm7g.large'], { minLength: 1 });
const subnets = fc.subarray(['subnet-0123456789abcdef0', 'subnet-0fedcba9876543210'], { minLength: 1 });
const ssm = fc.record(
  { pathPrefix: fc.constantFrom('/runner-fleet/f', '/ci/runners') },
  { requiredKeys: [] },
);
const region = fc.constantFrom('eu-west-1', 'us-east-1');
/** Capacity with an allocation strategy it takes (spot: optionally with on-demand failover codes). */
const capacity = fc.oneof(
  fc.record(
    {
      capacity: fc.constant('spot'),
      allocationStrategy: fc.constantFrom('price-capacity-optimized', 'capacity-optimized', 'lowest-price'),
      onDemandFailover: fc.oneof(fc.constant(false), fc.constant(['InsufficientInstanceCapacity'])),
    },
    { requiredKeys: ['capacity'] },
  ),
  fc.record(
    {
      capacity: fc.constant('on-demand'),
      allocationStrategy: fc.constantFrom('lowest-price', 'prioritized'),
    },
    { requiredKeys: [] },
  ),
);
/** CreateFleet (or RunInstances for one type and subnet) from a launch template. */
const templateLaunch = fc
  .tuple(
    fc.record(
      {
        region,
        ssm,
        launchTemplate: fc.oneof(
          fc.record({ id: fc.constant('lt-0123456789abcdef0') }),
          fc.record({ name: fc.constant('runners'), version: fc.constantFrom('$Latest', '$Default', 3) }),
        ),
        instanceTypes: types,
        subnetIds: subnets,
      },
      { requiredKeys: ['region', 'launchTemplate', 'instanceTypes', 'subnetIds'] },
    ),
    capacity,
  )
  .map(([launch, market]) => {
    const several = launch.instanceTypes.length > 1 || launch.subnetIds.length > 1;
    // An allocation strategy chooses among several types or subnets only.
    const { allocationStrategy: _strategy, ...single } = market as { allocationStrategy?: string };
    return several ? { ...launch, ...market } : { ...launch, ...single };
  });
/** RunInstances from an AMI with the module's user data. */
const imageLaunch = fc.record(
  {
    region,
    ssm,
    capacity: fc.constantFrom('spot', 'on-demand'),
    imageId: fc.constant('ami-0123456789abcdef0'),
    instanceProfile: fc.constantFrom('runner-profile', 'arn:aws:iam::123456789012:instance-profile/runner'),
    securityGroupIds: fc.constant(['sg-0123456789abcdef0']),
    instanceTypes: fc.constant(['t3.micro']),
    subnetIds: fc.constant(['subnet-0123456789abcdef0']),
    userData: fc.record({ runAs: fc.constantFrom('runner', 'ec2-user') }, { requiredKeys: [] }),
  },
  { requiredKeys: ['region', 'imageId', 'instanceProfile', 'instanceTypes'] },
);
/** Any mix of the fields, most of which the schema refuses (both launch paths at once, missing pieces, ...). */
const anyMix = fc.record(
  {
    region,
    ssm,
    launchTemplate: fc.constant({ id: 'lt-0123456789abcdef0' }),
    imageId: fc.constant('ami-0123456789abcdef0'),
    instanceProfile: fc.constant('runner-profile'),
    securityGroupIds: fc.constant(['sg-0123456789abcdef0']),
    instanceTypes: types,
    subnetIds: subnets,
    userData: fc.constant({ runAs: 'runner' }),
    capacity: fc.constantFrom('spot', 'on-demand'),
    allocationStrategy: fc.constantFrom('price-capacity-optimized', 'prioritized'),
    onDemandFailover: fc.constant(['InsufficientInstanceCapacity']),
  },
  { requiredKeys: [] },
);
const arbEc2 = fc.oneof(templateLaunch, imageLaunch, anyMix);

const scaleSet = fc.record({
  // JIT needs an ephemeral runner; a persistent one registers with a token.
  runner: fc.constantFrom(
    { ephemeral: true, registration: 'jit' },
    { ephemeral: true, registration: 'token' },
    { ephemeral: false, registration: 'token' },
  ),
  provider: arbEc2,
});

function fleetYaml(set: { runner: { ephemeral: boolean; registration: string }; provider: object }): string {
  return stringify({
    name: 'agree',
    github: { url: 'https://github.com', auth: { token: 'ghp_0123456789abcdefghijklmnopqrstuvwxyz' } },
    webhook: { secret: 'a-webhook-secret-of-some-length' },
    scaleSets: [
      {
        name: 'linux',
        scope: { org: 'acme' },
        labels: ['linux'],
        max: 3,
        ...set.runner,
        provider: { kind: 'ec2', ...set.provider },
      },
    ],
  });
}

describe('validate and start agree on ec2 scale sets', () => {
  it('every provider block validate accepts is set up by the provider list as start sets it up', async () => {
    let accepted = 0;
    let refused = 0;
    await fc.assert(
      fc.asyncProperty(scaleSet, async (set) => {
        const text = fleetYaml(set);
        const loaded = loadConfig('/fleet.yaml', { env: {}, readFile: () => text });
        if (!loaded.ok) {
          refused++;
          // A refusal names where: every problem has a line and column in the file.
          for (const problem of loaded.problems)
            expect(formatProblem(problem)).toMatch(/^\/fleet\.yaml:\d+:\d+/);
          return;
        }
        accepted++;
        const registry = createProviderRegistry({
          setup: {
            fleet: loaded.config,
            env: { AWS_ACCESS_KEY_ID: 'AKIAEXAMPLE', AWS_SECRET_ACCESS_KEY: 'example' },
            connection: {},
            checkAccess: false,
            logger: pino({ level: 'silent' }),
            signal: AbortSignal.timeout(10_000),
          },
        });
        try {
          const provider = await registry.providerFor(loaded.config.scaleSets[0]!, {
            fleet: loaded.config.name,
            logger: pino({ level: 'silent' }),
          });
          expect(provider.kind).toBe('ec2');
          await provider.close?.();
        } finally {
          await registry.close();
        }
      }),
      { numRuns: 300, seed: 20_261_206 },
    );
    // Both sides were exercised: the generator reaches accepted and refused blocks alike.
    expect(accepted).toBeGreaterThan(30);
    expect(refused).toBeGreaterThan(30);
  });
});
