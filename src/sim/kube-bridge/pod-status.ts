/** The pod status a kubelet writes when a pod's containers have run to completion (restartPolicy Never). */
import type { V1ContainerStatus, V1Pod, V1PodStatus } from '@kubernetes/client-node';
import { runnerContainer } from './runner-container.js';

/**
 * Every container terminated: the runner container with `exitCode`, the others (sidecars a kubelet stops once the
 * runner is done) with 0; phase Succeeded when the runner exited 0, else Failed, as for a pod whose main container
 * decides. Conditions say the pod is no longer ready.
 */
export function terminatedStatus(pod: V1Pod, exitCode: number, at: Date): V1PodStatus {
  const finishedAt = at;
  const startedAt = pod.status?.startTime ? new Date(pod.status.startTime) : at;
  const runner = runnerContainer(pod)?.name;
  const containerStatuses: V1ContainerStatus[] = (pod.spec?.containers ?? []).map((c) => {
    const code = c.name === runner ? exitCode : 0;
    return {
      name: c.name,
      image: c.image ?? '',
      imageID: '',
      ready: false,
      started: false,
      restartCount: 0,
      state: {
        terminated: { exitCode: code, reason: code === 0 ? 'Completed' : 'Error', startedAt, finishedAt },
      },
    };
  });
  const condition = (type: string) => ({
    type,
    status: 'False',
    reason: 'PodCompleted',
    lastTransitionTime: at,
  });
  return {
    phase: exitCode === 0 ? 'Succeeded' : 'Failed',
    conditions: [condition('Ready'), condition('ContainersReady')],
    containerStatuses,
  };
}
