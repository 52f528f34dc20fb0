/**
 * Input and output of the pure planner. The reconciler assembles a Snapshot from the store (runners, jobs, backoff)
 * and from its last observations of GitHub and the providers; the executor carries out the Actions.
 */
import type { GitHubRunner, JobStatus, RunnerState } from './types.js';
import type { Instance } from './provider-port.js';
import type { BackoffState } from './backoff.js';
import type { RunnerRecord } from './records.js';

/** One runner record of this fleet, as the store keeps it, plus what the executor is doing with it. */
export interface RunnerSnapshot extends RunnerRecord {
  /**
   * The latest job GitHub reported on this runner (webhook or status check), if any; `at` is when this fleet
   * recorded that status (its own clock), so a persistent runner's old job is not mistaken for news.
   */
  readonly job: {
    readonly id: number;
    readonly status: JobStatus;
    /** GitHub's conclusion once completed, when known. */
    readonly conclusion?: string | null;
    readonly at: number;
  } | null;
  /** An executor operation on this runner is queued or running (or cooling down after an error): hands off. */
  readonly inFlight: boolean;
}

/** A job routed to the scale set that has not completed. */
export interface JobSnapshot {
  readonly id: number;
  readonly owner: string;
  readonly repo: string;
  readonly status: 'queued' | 'in_progress';
  /** ms epoch */
  readonly queuedAt: number;
  readonly startedAt: number | null;
  /** ms epoch of the last status check against GitHub, or null. */
  readonly checkedAt: number | null;
  /** A status check for it is running. */
  readonly inFlight: boolean;
  /**
   * Recorded before this controller started and not confirmed since (webhooks may have been lost while it was
   * down): not counted toward capacity until a status check confirms it is still queued.
   */
  readonly unverified?: boolean;
}

export interface ObservedGitHubRunner extends GitHubRunner {
  /** ms epoch at which this fleet first saw the registration in a list (measures the orphan grace period). */
  readonly firstSeenAt: number;
}

export interface ObservedInstance extends Instance {
  /** ms epoch of the observation (list start time, watch event time, or the create answer). */
  readonly observedAt: number;
}

/** What GitHub listed for the scale set (runners named `<scaleSet>-...`); `at` null until the first list. */
export interface GitHubObservation {
  /** ms epoch at which the list call started; a list reflects the world at least as of then. */
  readonly at: number | null;
  readonly runners: ReadonlyMap<string, ObservedGitHubRunner>;
}

/** What the provider listed for the scale set, updated by watch events; `at` is the last full list's start time. */
export interface InstanceObservation {
  readonly at: number | null;
  readonly items: ReadonlyMap<string, ObservedInstance>;
}

export interface ScaleSetSnapshot {
  readonly name: string;
  /** Non-deleted records, plus recently deleted ones (so stale observations of them are recognised as stale). */
  readonly runners: readonly RunnerSnapshot[];
  /** Jobs routed here that are queued or in progress. */
  readonly jobs: readonly JobSnapshot[];
  readonly github: GitHubObservation;
  readonly instances: InstanceObservation;
  readonly backoff: BackoffState;
  /**
   * `discovery: scale-set`: the jobs GitHub's statistics say are assigned to the runner scale set (running ones
   * included), when a message session is live. The planner counts unverified queued jobs as far as it vouches for them.
   */
  readonly assignedJobs?: number;
  /**
   * `discovery: scale-set`: the jobs GitHub's statistics say are assigned to the runner scale set and not started
   * (assigned minus running), when a message session is live: a floor for the queued jobs, known or not.
   */
  readonly waitingJobs?: number;
}

export interface Snapshot {
  readonly scaleSets: ReadonlyMap<string, ScaleSetSnapshot>;
}

/** Create a runner: record intent (requested), then registration, then instance. `resume`: the record exists. */
export interface CreateRunnerAction {
  readonly type: 'create-runner';
  readonly scaleSet: string;
  readonly name: string;
  readonly resume: boolean;
  /** ms epoch: when the job this runner serves was queued (or the runner requested), for pacing order. */
  readonly order?: number;
}

export interface DeleteInstanceAction {
  readonly type: 'delete-instance';
  readonly scaleSet: string;
  readonly name: string;
  readonly reason: string;
}

/**
 * Remove a GitHub registration. checkBusy: ask GitHub right before (GET runner) and leave a busy runner alone.
 * retire: the runner is idle and being scaled down; on success it moves to `finished` (then its instance goes).
 */
export interface DeregisterRunnerAction {
  readonly type: 'deregister-runner';
  readonly scaleSet: string;
  readonly name: string;
  readonly runnerId: number;
  readonly reason: string;
  readonly checkBusy: boolean;
  readonly retire: boolean;
}

/**
 * Record a state change. failure: counts toward the scale set's backoff (a runner failed before taking a job).
 * instanceGone / registrationGone: the planner knows that part no longer exists.
 */
export interface MarkRunnerAction {
  readonly type: 'mark-runner';
  readonly scaleSet: string;
  readonly name: string;
  readonly state: RunnerState;
  readonly reason: string;
  readonly failure: boolean;
  readonly instanceGone?: boolean;
  readonly registrationGone?: boolean;
  /** The GitHub runner id, when the planner learned it from a runner list. */
  readonly githubId?: number;
}

/** Ask GitHub for a job's status (repairs a missed in_progress or completed webhook). */
export interface CheckJobAction {
  readonly type: 'check-job';
  readonly scaleSet: string;
  readonly jobId: number;
  readonly owner: string;
  readonly repo: string;
}

/**
 * Ask GitHub to re-run the job a runner was running when the cloud took its instance (the scale set opted in with
 * `rerunInterruptedJobs`). On success the executor records it on the runner (its reason becomes `rerunDoneReason`),
 * so the next pass lets the record go; GitHub's 403 while the job's run is in progress is retried after a cool-down.
 */
export interface RerunJobAction {
  readonly type: 'rerun-job';
  readonly scaleSet: string;
  /** The runner whose instance was interrupted. */
  readonly name: string;
  readonly jobId: number;
}

/** Nothing to do now, but plan again at `at` (a timeout, grace period or backoff ends then). */
export interface WakeAtAction {
  readonly type: 'wake-at';
  readonly scaleSet: string;
  readonly at: number;
}

export type Action =
  | CreateRunnerAction
  | DeleteInstanceAction
  | DeregisterRunnerAction
  | MarkRunnerAction
  | CheckJobAction
  | RerunJobAction
  | WakeAtAction;

export type ActionType = Action['type'];
