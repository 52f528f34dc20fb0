import type { Instance as Ec2Instance } from '@aws-sdk/client-ec2';
import { describe, expect, it } from 'vitest';
import { EXIT_CODE_VALUES, TAG_EXIT_CODE, TAG_FLEET, TAG_RUNNER, TAG_SCALE_SET } from '../../aws/tags.js';
import { instanceFromRecord, isInterrupted, recordFromEc2, transitionTime } from './instance-state.js';

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
    expect(map(ec2('shutting-down', reason('Server.SpotInstanceTermination')))).toEqual({
      name: 'linux-1',
      fleet: 'f',
      scaleSet: 'linux',
      createdAt: LAUNCHED.getTime(),
      providerId: 'i-0123456789abcdef0',
      state: 'failed',
      message: 'spot instance interrupted by AWS (Server.SpotInstanceTermination)',
      interrupted: true,
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
    const own = { StateReason: { Code: 'Client.InstanceInitiatedShutdown' } };
    expect(map(ec2('terminated', api, { [TAG_EXIT_CODE]: '0' })).state).toBe('succeeded');
    expect(map(ec2('terminated', api, { [TAG_EXIT_CODE]: '2' }))).toMatchObject({
      state: 'failed',
      message: 'runner exited with code 2',
    });
    expect(map(ec2('terminated', own, { [TAG_EXIT_CODE]: EXIT_CODE_VALUES.noParameter }))).toMatchObject({
      state: 'failed',
      message: expect.stringContaining('gave up waiting for its runner parameter'),
    });
    expect(map(ec2('terminated', own, { [TAG_EXIT_CODE]: EXIT_CODE_VALUES.startFailed }))).toMatchObject({
      state: 'failed',
      message: expect.stringContaining('gave up before the runner ran'),
    });
    // A value no start script writes says nothing: the state reason decides.
    expect(map(ec2('terminated', own, { [TAG_EXIT_CODE]: 'whatever' })).state).toBe('succeeded');
    expect(map(ec2('terminated', own, { [TAG_EXIT_CODE]: '-1' })).state).toBe('succeeded');
  });

  it('ignores the tag while the instance is pending or running: another instance may have set it', () => {
    for (const value of ['0', '2', ...Object.values(EXIT_CODE_VALUES)]) {
      for (const state of ['pending', 'running']) {
        const instance = ec2(state, {}, { [TAG_EXIT_CODE]: value });
        expect(map(instance)).toEqual({
          name: 'linux-1',
          fleet: 'f',
          scaleSet: 'linux',
          state,
          createdAt: LAUNCHED.getTime(),
          providerId: 'i-0123456789abcdef0',
        });
        expect(isInterrupted(recordFromEc2(instance, 0)!)).toBe(false);
      }
    }
  });

  it("an interruption: AWS's spot reason, or the notice the instance saw, unless the runner ended on its own", () => {
    const api = { StateReason: { Code: 'Client.UserInitiatedShutdown' } };
    const spot = { StateReason: { Code: 'Server.SpotInstanceTermination' } };
    const noticed = map(ec2('terminated', api, { [TAG_EXIT_CODE]: EXIT_CODE_VALUES.interrupted }));
    expect(noticed).toMatchObject({ state: 'failed', interrupted: true });
    expect(noticed.message).toContain('spot instance interrupted by AWS');
    expect(isInterrupted(recordFromEc2(ec2('terminated', spot), 0)!)).toBe(true);
    // The runner finished (and tagged its exit code) before AWS took the instance: its job ended on its own.
    const finished = map(ec2('terminated', spot, { [TAG_EXIT_CODE]: '0' }));
    expect(finished).toMatchObject({ state: 'succeeded' });
    expect(finished.interrupted).toBeUndefined();
    expect(map(ec2('terminated', api)).interrupted).toBeUndefined();
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
