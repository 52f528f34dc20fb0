/**
 * From runner pods to instances: the projection the informer keeps per pod (small, so thousands of pods cost
 * little memory) and the mapping of pod phase and runner container state to InstanceState.
 */
import type { V1ContainerStatus, V1Pod } from '@kubernetes/client-node';
import { LABEL_FLEET, LABEL_SCALE_SET } from '../../kubernetes/labels.js';
import type { Instance, InstanceState } from '../provider.js';
import { RUNNER_CONTAINER } from './manifests.js';

export interface RunnerPodRecord {
  readonly name: string;
  readonly fleet: string;
  readonly scaleSet: string;
  readonly uid: string;
  /** ms epoch */
  readonly createdAt: number;
  readonly phase: string;
  /** Set once someone asked the API server to delete the pod. */
  readonly deleting: boolean;
  readonly reason?: string;
  readonly message?: string;
  readonly runner?: {
    readonly state: 'waiting' | 'running' | 'terminated';
    readonly reason?: string;
    readonly exitCode?: number;
  };
}

function runnerStatus(statuses: readonly V1ContainerStatus[] | undefined): RunnerPodRecord['runner'] {
  const status = statuses?.find((s) => s.name === RUNNER_CONTAINER);
  if (!status?.state) return undefined;
  const { terminated, running, waiting } = status.state;
  if (terminated) {
    return {
      state: 'terminated',
      exitCode: terminated.exitCode,
      ...(terminated.reason ? { reason: terminated.reason } : {}),
    };
  }
  if (running) return { state: 'running' };
  return { state: 'waiting', ...(waiting?.reason ? { reason: waiting.reason } : {}) };
}

/** Works on both client objects (Dates) and raw watch JSON (strings). */
export function projectRunnerPod(pod: V1Pod): RunnerPodRecord {
  const meta = pod.metadata ?? {};
  const created = meta.creationTimestamp ? new Date(meta.creationTimestamp).getTime() : 0;
  const runner = runnerStatus(pod.status?.containerStatuses);
  return {
    name: meta.name ?? '',
    fleet: meta.labels?.[LABEL_FLEET] ?? '',
    scaleSet: meta.labels?.[LABEL_SCALE_SET] ?? '',
    uid: meta.uid ?? '',
    createdAt: created,
    phase: pod.status?.phase ?? 'Pending',
    deleting: meta.deletionTimestamp !== undefined && meta.deletionTimestamp !== null,
    ...(pod.status?.reason ? { reason: pod.status.reason } : {}),
    ...(pod.status?.message ? { message: pod.status.message.slice(0, 300) } : {}),
    ...(runner ? { runner } : {}),
  };
}

function exitMessage(runner: NonNullable<RunnerPodRecord['runner']>): string {
  return `runner exited with code ${runner.exitCode}${runner.reason ? ` (${runner.reason})` : ''}`;
}

function stateOf(record: RunnerPodRecord): { state: InstanceState; message?: string } {
  const why = [record.reason, record.message].filter(Boolean).join(': ');
  const exited = record.runner?.state === 'terminated' ? record.runner : undefined;
  if (record.phase === 'Succeeded') return { state: 'succeeded' };
  if (record.phase === 'Failed') {
    return { state: 'failed', message: why || (exited ? exitMessage(exited) : 'pod failed') };
  }
  // Without native sidecars a dind pod stays Running after the runner exits: the runner container decides.
  if (exited) {
    return exited.exitCode === 0 ? { state: 'succeeded' } : { state: 'failed', message: exitMessage(exited) };
  }
  if (record.phase === 'Running' && record.runner?.state !== 'waiting') return { state: 'running' };
  const waiting = record.runner?.state === 'waiting' ? record.runner.reason : undefined;
  const message = waiting ?? why;
  return { state: 'pending', ...(message ? { message } : {}) };
}

/**
 * The instance a runner pod stands for. `deletedByOthers` marks a pod that is going away although runner-fleet did
 * not delete it (evicted, deleted by hand, node drained): it is reported failed so the controller replaces it.
 */
export function instanceFromRecord(record: RunnerPodRecord, deletedByOthers = false): Instance {
  const { state, message } = deletedByOthers
    ? { state: 'failed' as const, message: 'pod was deleted outside runner-fleet' }
    : stateOf(record);
  return {
    name: record.name,
    fleet: record.fleet,
    scaleSet: record.scaleSet,
    state,
    createdAt: record.createdAt,
    providerId: record.uid,
    ...(message ? { message } : {}),
  };
}
