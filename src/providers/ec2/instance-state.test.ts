import type { Instance as Ec2Instance } from '@aws-sdk/client-ec2';
import { describe, expect, it } from 'vitest';
import { TAG_FLEET, TAG_RUNNER, TAG_SCALE_SET } from '../../aws/tags.js';
import { instanceFromRecord, recordFromEc2, TAG_EXIT_CODE, transitionTime } from './instance-state.js';

const LAUNCHED = new Date('2024-05-01T10:00:00Z');

function ec2(
  state: string,
  extra: Partial<Ec2Instance> = {},
  tags: Record<string, string> = {},
): Ec2Instance {
  return {
    InstanceId: 'i-0123456789abcdef0',
    LaunchTime: LAUNCHED,
    State: { Name: state as never },
    Tags: Object.entries({
      [TAG_FLEET]: 'f',
      [TAG_SCALE_SET]: 'linux',
      [TAG_RUNNER]: 'linux-1',
      ...tags,
    }).map(([Key, Value]) => ({ Key, Value })),
    ...extra,
  };
}

const map = (instance: Ec2Instance) => instanceFromRecord(recordFromEc2(instance, 0)!);

describe('EC2 instance -> runner-fleet instance', () => {
  it('carries ownership, creation time and the instance id', () => {
    expect(map(ec2('pending'))).toEqual({
      name: 'linux-1',
      fleet: 'f',
      scaleSet: 'linux',
      state: 'pending',
      createdAt: LAUNCHED.getTime(),
      providerId: 'i-0123456789abcdef0',
    });
    expect(map(ec2('running')).state).toBe('running');
    expect(recordFromEc2({ InstanceId: 'i-1', Tags: [{ Key: TAG_FLEET, Value: 'f' }] }, 0)).toBeUndefined();
  });

  it('an instance that shut itself down succeeded; AWS or the API ending it is a failure with a message', () => {
    const reason = (Code: string) => ({ StateReason: { Code, Message: `${Code}: text` } });
    expect(map(ec2('terminated', reason('Client.InstanceInitiatedShutdown')))).toMatchObject({
      state: 'succeeded',
    });
    expect(map(ec2('shutting-down', reason('Server.SpotInstanceTermination')))).toMatchObject({
      state: 'failed',
      message: 'spot instance interrupted by AWS (Server.SpotInstanceTermination)',
    });
    expect(map(ec2('terminated', reason('Server.InternalError')))).toMatchObject({
      state: 'failed',
      message: 'instance ended by AWS (Server.InternalError)',
    });
    expect(map(ec2('stopped', reason('Client.UserInitiatedShutdown'))).message).toContain(
      'stopped through the EC2 API',
    );
    expect(map(ec2('terminated', reason('Client.VolumeLimitExceeded'))).message).toBe(
      'instance failed (Client.VolumeLimitExceeded)',
    );
    expect(map(ec2('terminated'))).toMatchObject({ state: 'failed', message: 'instance terminated' });
  });

  it('the exit code tag, when the instance set one, decides', () => {
    const api = { StateReason: { Code: 'Client.UserInitiatedShutdown' } };
    expect(map(ec2('terminated', api, { [TAG_EXIT_CODE]: '0' })).state).toBe('succeeded');
    expect(map(ec2('terminated', api, { [TAG_EXIT_CODE]: '2' }))).toMatchObject({
      state: 'failed',
      message: 'runner exited with code 2',
    });
    expect(map(ec2('running', {}, { [TAG_EXIT_CODE]: '2' })).state).toBe('running');
  });

  it('reads the time of a stop or termination from StateTransitionReason', () => {
    expect(transitionTime('User initiated (2024-05-01 10:20:30 GMT)')).toBe(
      Date.parse('2024-05-01T10:20:30Z'),
    );
    expect(transitionTime('User initiated (2024-05-01 10:20:30 UTC)')).toBe(
      Date.parse('2024-05-01T10:20:30Z'),
    );
    expect(transitionTime('Service initiated')).toBeUndefined();
    const record = recordFromEc2(
      ec2('terminated', { StateTransitionReason: 'User initiated (2024-05-01 10:20:30 GMT)' }),
      0,
    );
    expect(record?.endedAt).toBe(Date.parse('2024-05-01T10:20:30Z'));
  });
});
