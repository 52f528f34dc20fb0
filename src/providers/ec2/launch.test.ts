import { describe, expect, it } from 'vitest';
import { ec2ProviderSchema } from './schema.js';
import {
  allocationStrategyOf,
  clientToken,
  createFleetInput,
  failoverCodesOf,
  fleetOverrides,
  launchPathOf,
  runInstancesInput,
} from './launch.js';

const runner = { name: 'linux-abc', fleet: 'fleet', scaleSet: 'linux' };
const parse = (block: Record<string, unknown>) =>
  ec2ProviderSchema.parse({ kind: 'ec2', region: 'eu-west-1', ...block });
const image = parse({ imageId: 'ami-0a', instanceProfile: 'runner', instanceTypes: ['m7g.large'] });
const template = parse({
  launchTemplate: { name: 'ci-runners' },
  instanceTypes: ['m7g.large', 'm6g.large'],
  subnetIds: ['subnet-0a', 'subnet-0b'],
  capacity: 'spot',
});

describe('launch requests', () => {
  it('chooses the path from the block', () => {
    expect(launchPathOf(image)).toBe('RunInstances');
    expect(launchPathOf(template)).toBe('CreateFleet');
    expect(launchPathOf(parse({ launchTemplate: { id: 'lt-0a' } }))).toBe('RunInstances');
  });

  it('derives a stable client token per runner, generation and market, within 64 characters', () => {
    const token = clientToken(runner, 0, 'spot');
    expect(token).toBe(clientToken(runner, 0, 'spot'));
    expect(token.length).toBeLessThanOrEqual(64);
    expect(new Set([token, clientToken(runner, 1, 'spot'), clientToken(runner, 0, 'on-demand')]).size).toBe(
      3,
    );
    expect(clientToken({ ...runner, fleet: 'other' }, 0, 'spot')).not.toBe(token);
  });

  it('RunInstances from an image: IMDSv2, terminate on shutdown, tags on instance and volumes, user data', () => {
    const input = runInstancesInput(image, {
      runner,
      market: 'on-demand',
      clientToken: 't',
      userData: '#!/bin/sh\n',
    });
    expect(input).toMatchObject({
      MinCount: 1,
      MaxCount: 1,
      ImageId: 'ami-0a',
      InstanceType: 'm7g.large',
      IamInstanceProfile: { Name: 'runner' },
      MetadataOptions: { HttpTokens: 'required', HttpEndpoint: 'enabled' },
      InstanceInitiatedShutdownBehavior: 'terminate',
      UserData: Buffer.from('#!/bin/sh\n').toString('base64'),
    });
    expect(input.InstanceMarketOptions).toBeUndefined();
    expect(input.TagSpecifications?.map((t) => t.ResourceType)).toEqual(['instance', 'volume']);
    expect(input.TagSpecifications?.[0]?.Tags).toEqual([
      { Key: 'runner-fleet:fleet', Value: 'fleet' },
      { Key: 'runner-fleet:scale-set', Value: 'linux' },
      { Key: 'runner-fleet:runner', Value: 'linux-abc' },
      { Key: 'Name', Value: 'linux-abc' },
    ]);
    const spot = runInstancesInput(
      parse({ ...image, instanceProfile: 'arn:aws:iam::123456789012:instance-profile/r' }),
      {
        runner,
        market: 'spot',
        clientToken: 't',
      },
    );
    expect(spot.IamInstanceProfile).toEqual({ Arn: 'arn:aws:iam::123456789012:instance-profile/r' });
    expect(spot.InstanceMarketOptions?.MarketType).toBe('spot');
  });

  it('RunInstances from a template keeps the template’s metadata options', () => {
    const input = runInstancesInput(parse({ launchTemplate: { name: 'ci-runners', version: 3 } }), {
      runner,
      market: 'on-demand',
      clientToken: 't',
    });
    expect(input.LaunchTemplate).toEqual({ LaunchTemplateName: 'ci-runners', Version: '3' });
    expect(input.MetadataOptions).toBeUndefined();
    expect(input.UserData).toBeUndefined();
  });

  it('CreateFleet instant: one instance over types x subnets, strategy by market, priorities when prioritized', () => {
    const input = createFleetInput(template, { runner, market: 'spot', clientToken: 't' });
    expect(input).toMatchObject({
      Type: 'instant',
      TargetCapacitySpecification: { TotalTargetCapacity: 1, DefaultTargetCapacityType: 'spot' },
      SpotOptions: {
        AllocationStrategy: 'price-capacity-optimized',
        InstanceInterruptionBehavior: 'terminate',
      },
    });
    expect(input.LaunchTemplateConfigs?.[0]?.LaunchTemplateSpecification).toEqual({
      LaunchTemplateName: 'ci-runners',
      Version: '$Default',
    });
    expect(input.LaunchTemplateConfigs?.[0]?.Overrides).toHaveLength(4);
    expect(input.TagSpecifications?.map((t) => t.ResourceType)).toEqual(['instance']);
    const fallback = createFleetInput(template, { runner, market: 'on-demand', clientToken: 't' });
    expect(fallback.OnDemandOptions).toEqual({ AllocationStrategy: 'lowest-price' });
    const prioritized = parse({
      ...template,
      capacity: 'on-demand',
      allocationStrategy: 'prioritized',
      imageId: 'ami-0b',
    });
    expect(
      fleetOverrides(prioritized, allocationStrategyOf(prioritized, 'on-demand') === 'prioritized'),
    ).toEqual([
      { InstanceType: 'm7g.large', SubnetId: 'subnet-0a', ImageId: 'ami-0b', Priority: 0 },
      { InstanceType: 'm7g.large', SubnetId: 'subnet-0b', ImageId: 'ami-0b', Priority: 1 },
      { InstanceType: 'm6g.large', SubnetId: 'subnet-0a', ImageId: 'ami-0b', Priority: 2 },
      { InstanceType: 'm6g.large', SubnetId: 'subnet-0b', ImageId: 'ami-0b', Priority: 3 },
    ]);
  });

  it('fails over on the default spot codes unless told otherwise', () => {
    expect([...failoverCodesOf(template)]).toEqual([
      'InsufficientInstanceCapacity',
      'MaxSpotInstanceCountExceeded',
      'UnfulfillableCapacity',
      'SpotMaxPriceTooLow',
    ]);
    expect(failoverCodesOf(parse({ ...template, onDemandFailover: false })).size).toBe(0);
    expect([...failoverCodesOf(parse({ ...template, onDemandFailover: ['SpotMaxPriceTooLow'] }))]).toEqual([
      'SpotMaxPriceTooLow',
    ]);
    expect(failoverCodesOf(image).size).toBe(0);
  });
});
