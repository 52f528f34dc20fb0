/** Builders shared by store and reconciler tests. */
import type { WorkflowJobEvent } from '../core/ports.js';

export function jobEvent(
  deliveryId: string,
  action: WorkflowJobEvent['action'],
  jobId: number,
  over: Partial<WorkflowJobEvent['job']> = {},
): WorkflowJobEvent {
  return {
    deliveryId,
    action,
    installationId: 1,
    job: {
      id: jobId,
      runId: 100 + jobId,
      owner: 'octo-org',
      repo: 'app',
      labels: ['self-hosted', 'linux'],
      status: action,
      conclusion: action === 'completed' ? 'success' : null,
      runnerId: null,
      runnerName: null,
      createdAt: 1_000,
      startedAt: null,
      completedAt: null,
      ...over,
    },
  };
}
