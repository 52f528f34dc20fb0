/** Builds the planner's input for one scale set from the store, the observations and the executor's state. */
import type { ScaleSetConfig } from './fleet-config.js';
import type { FleetStore } from './store-port.js';
import type { JobSnapshot, RunnerSnapshot, ScaleSetSnapshot } from './plan-types.js';
import type { Observations } from './observations.js';

export interface InFlight {
  runnerInFlight(name: string): boolean;
  jobInFlight(id: number): boolean;
}

export function buildSnapshot(
  set: ScaleSetConfig,
  store: FleetStore,
  observations: Observations,
  inFlight: InFlight,
  assignedJobs?: number,
  waitingJobs?: number,
): ScaleSetSnapshot {
  const runners: RunnerSnapshot[] = [];
  // Fields copied one by one: an object spread here costs some 70 times more (measured, 10,000 runners).
  store.forEachRunner(set.name, (r) => {
    runners.push({
      name: r.name,
      scaleSet: r.scaleSet,
      state: r.state,
      reason: r.reason,
      githubId: r.githubId,
      createdAt: r.createdAt,
      stateChangedAt: r.stateChangedAt,
      instanceDeletedAt: r.instanceDeletedAt,
      registrationDeletedAt: r.registrationDeletedAt,
      job: store.runnerJob(r.name),
      inFlight: inFlight.runnerInFlight(r.name),
    });
  });
  const jobs: JobSnapshot[] = [];
  store.forEachOpenJob(set.name, (j) => {
    if (j.status === 'completed') return;
    jobs.push({
      id: j.id,
      owner: j.owner,
      repo: j.repo,
      status: j.status,
      queuedAt: j.queuedAt,
      startedAt: j.startedAt ?? null,
      checkedAt: j.checkedAt ?? null,
      inFlight: inFlight.jobInFlight(j.id),
      unverified: store.isUnverified(j.id),
    });
  });
  return {
    name: set.name,
    runners,
    jobs,
    github: observations.github(set.name),
    instances: observations.instances(set.name),
    backoff: store.backoff(set.name),
    ...(assignedJobs !== undefined ? { assignedJobs } : {}),
    ...(waitingJobs !== undefined ? { waitingJobs } : {}),
  };
}
