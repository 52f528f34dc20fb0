/** The records core keeps through its store port: runners, job changes, events, retention. No secret is ever stored: not a JIT config, not a token. */
import type { JobStatus, RunnerState } from './types.js';

/** What the controller knows of a workflow job. */
export interface JobRecord {
  readonly id: number;
  readonly runId: number;
  readonly owner: string;
  readonly repo: string;
  readonly labels: readonly string[];
  readonly status: JobStatus;
  readonly conclusion?: string | null;
  /** Scale set the job routes to, or null when no scale set serves its labels (unroutable). */
  readonly scaleSet: string | null;
  readonly runnerName?: string | null;
  /** ms epoch */
  readonly queuedAt: number;
  readonly startedAt?: number | null;
  readonly completedAt?: number | null;
  /** ms epoch of the last status check against GitHub (repairs missed webhooks). */
  readonly checkedAt?: number | null;
}

/** One runner of this fleet as the store keeps it: the single declaration the snapshot and the views build on. */
export interface RunnerRecord {
  readonly name: string;
  readonly scaleSet: string;
  readonly state: RunnerState;
  /** Why it is in this state (a planner or executor reason), or null. */
  readonly reason: string | null;
  /** GitHub runner id, once known (from the JIT answer or a runner list). */
  readonly githubId: number | null;
  /** ms epoch */
  readonly createdAt: number;
  /** ms epoch of the last state change. Observations older than this say nothing about the current state. */
  readonly stateChangedAt: number;
  /** ms epoch at which this fleet deleted the instance (provider delete succeeded), or null. */
  readonly instanceDeletedAt: number | null;
  /** ms epoch at which this fleet removed the GitHub registration (or learned it was gone), or null. */
  readonly registrationDeletedAt: number | null;
}

/** A change to one runner row. A new `state` stamps stateChangedAt and writes an event. */
export interface RunnerChange {
  readonly state?: RunnerState;
  readonly reason?: string | null;
  readonly githubId?: number | null;
  readonly instanceDeletedAt?: number | null;
  readonly registrationDeletedAt?: number | null;
}

export interface RunnerUpdate {
  readonly before: RunnerRecord;
  readonly after: RunnerRecord;
}

/** The latest job GitHub reported on a runner. */
export interface RunnerJob {
  readonly id: number;
  readonly status: JobStatus;
  /** GitHub's conclusion once completed (`success`, `failure`, `cancelled`...), else null or absent. */
  readonly conclusion?: string | null;
  /** ms epoch at which the store recorded this status (its own clock). */
  readonly at: number;
}

export type JobChangeSource = 'webhook' | 'check' | 'reroute';

export interface JobChange {
  readonly job: JobRecord;
  readonly previous: JobRecord | null;
  readonly source: JobChangeSource;
}

export type EventKind = 'runner' | 'job' | 'registration' | 'instance';

export interface EventRow {
  readonly id: number;
  /** ms epoch */
  readonly at: number;
  readonly kind: EventKind;
  readonly scaleSet: string | null;
  readonly runner: string | null;
  readonly jobId: number | null;
  /** A runner state, a job action, or what happened (`deregistered`, `deleted`). */
  readonly event: string;
  readonly reason: string | null;
}

export interface NewEvent {
  readonly kind: EventKind;
  readonly scaleSet?: string | null;
  readonly runner?: string | null;
  readonly jobId?: number | null;
  readonly event: string;
  readonly reason?: string | null;
}

export interface EventQuery {
  readonly limit?: number;
  readonly scaleSet?: string;
  readonly runner?: string;
  readonly jobId?: number;
  readonly kind?: EventKind;
  /** Only events with a larger id (for polling). */
  readonly afterId?: number;
}

export interface Retention {
  /**
   * How long deleted runners are listed (runners deleted within it, read from the file: deletedRunners) and, at the
   * latest, how long one stays in memory. The reconciler releases one from memory much sooner, once planning no
   * longer needs it (Reconciler, releaseDeletedRunners). The file keeps deleted runners as long as completed jobs.
   * Default 1 h.
   */
  readonly deletedRunnersMs: number;
  /** Completed jobs and their deliveries. Default 3 days. */
  readonly completedJobsMs: number;
  /** Open jobs no scale set serves (GitHub-hosted jobs of the same org). Default 1 day. */
  readonly unroutableJobsMs: number;
  /** Events. Default 7 days. */
  readonly eventsMs: number;
}

export const DEFAULT_RETENTION: Retention = {
  deletedRunnersMs: 60 * 60_000,
  completedJobsMs: 3 * 24 * 60 * 60_000,
  unroutableJobsMs: 24 * 60 * 60_000,
  eventsMs: 7 * 24 * 60 * 60_000,
};
