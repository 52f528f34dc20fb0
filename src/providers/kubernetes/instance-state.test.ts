import { describe, expect, it } from 'vitest';
import type { V1Pod } from '@kubernetes/client-node';
import { instanceFromRecord, projectRunnerPod } from './instance-state.js';

function pod(status: V1Pod['status'], meta: Partial<NonNullable<V1Pod['metadata']>> = {}): V1Pod {
  return {
    metadata: {
      name: 'set-abc',
      uid: 'uid-1',
      creationTimestamp: '2025-01-02T03:04:05Z' as unknown as Date,
      labels: { 'runner-fleet.dev/fleet': 'f', 'runner-fleet.dev/scale-set': 'set' },
      ...meta,
    },
    status,
  };
}

const runner = (state: object) => ({
  name: 'runner',
  image: 'i',
  imageID: '',
  ready: false,
  restartCount: 0,
  state,
});

describe('pod -> instance', () => {
  it.each([
    [{ phase: 'Pending' }, 'pending'],
    [{ phase: 'Running', containerStatuses: [runner({ running: {} })] }, 'running'],
    [{ phase: 'Succeeded' }, 'succeeded'],
    [{ phase: 'Failed', reason: 'Evicted', message: 'The node was low on resource: memory.' }, 'failed'],
  ] as const)('phase %j maps to %s', (status, state) => {
    const instance = instanceFromRecord(projectRunnerPod(pod(status as V1Pod['status'])));
    expect(instance).toMatchObject({
      name: 'set-abc',
      fleet: 'f',
      scaleSet: 'set',
      state,
      providerId: 'uid-1',
    });
    expect(instance.createdAt).toBe(Date.parse('2025-01-02T03:04:05Z'));
  });

  it('explains an evicted pod', () => {
    const i = instanceFromRecord(
      projectRunnerPod(pod({ phase: 'Failed', reason: 'Evicted', message: 'low memory' })),
    );
    expect(i.message).toBe('Evicted: low memory');
  });

  it('the runner container decides when a sidecar keeps the pod Running', () => {
    const ok = pod({ phase: 'Running', containerStatuses: [runner({ terminated: { exitCode: 0 } })] });
    expect(instanceFromRecord(projectRunnerPod(ok)).state).toBe('succeeded');
    const bad = pod({
      phase: 'Running',
      containerStatuses: [runner({ terminated: { exitCode: 2, reason: 'Error' } })],
    });
    expect(instanceFromRecord(projectRunnerPod(bad))).toMatchObject({
      state: 'failed',
      message: 'runner exited with code 2 (Error)',
    });
  });

  it('a pod waiting for its Secret or image stays pending and says why', () => {
    const waiting = pod({
      phase: 'Pending',
      containerStatuses: [runner({ waiting: { reason: 'CreateContainerConfigError' } })],
    });
    expect(instanceFromRecord(projectRunnerPod(waiting))).toMatchObject({
      state: 'pending',
      message: 'CreateContainerConfigError',
    });
  });

  it('a pod deleted by someone else is reported failed', () => {
    const record = projectRunnerPod(
      pod({ phase: 'Running' }, { deletionTimestamp: '2025-01-02T03:05:00Z' as unknown as Date }),
    );
    expect(record.deleting).toBe(true);
    expect(instanceFromRecord(record, true)).toMatchObject({
      state: 'failed',
      message: 'pod was deleted outside runner-fleet',
    });
  });

  it('keeps a small projection: no spec, no env, no secret references', () => {
    const record = projectRunnerPod({
      ...pod({ phase: 'Running' }),
      spec: { containers: [{ name: 'runner', env: [{ name: 'X', value: 'secret-ish' }] }] },
    });
    expect(JSON.stringify(record)).not.toContain('secret-ish');
    expect(JSON.stringify(record).length).toBeLessThan(300);
  });
});
