/**
 * What the HTTP API (and the dashboard) shows. The core implements ReadModel over its store; the server only
 * serializes it, through response schemas that list every field, so a secret added to a record by mistake is
 * dropped rather than served.
 */
import type { JobStatus, RunnerState, Scope } from '../core/types.js';

type MaybePromise<T> = T | Promise<T>;

export interface ScaleSetView {
  readonly name: string;
  readonly scope: Scope;
  readonly runnerGroup: string;
  readonly labels: readonly string[];
  readonly minIdle: number;
  readonly max: number;
  readonly ephemeral: boolean;
  readonly registration: 'jit' | 'token';
  readonly priority: number;
  /** Provider kind (`process`, `kubernetes`, `ec2`, `sim`). */
  readonly provider: string;
  /** Runner counts by state; states with no runner may be omitted. */
  readonly runners: Readonly<Partial<Record<RunnerState, number>>>;
  /** Queued jobs routed to this scale set. */
  readonly pendingJobs: number;
  /** ms epoch of the last finished reconcile pass, null before the first. */
  readonly lastReconcileAt?: number | null;
  /** Last reconcile or provider error, scrubbed of secrets by the core. */
  readonly lastError?: string | null;
}

export interface RunnerView {
  readonly name: string;
  readonly scaleSet: string;
  readonly state: RunnerState;
  /** GitHub runner id once registered. */
  readonly githubId: number | null;
  /** Provider instance id (pod name, EC2 instance id, process id...). */
  readonly instance: string | null;
  readonly provider: string;
  /** Job running on it, when GitHub reported one. */
  readonly jobId?: number | null;
  /** ms epoch */
  readonly createdAt: number;
  /** ms epoch of the last state change. */
  readonly updatedAt: number;
  readonly failureReason?: string | null;
}

export interface JobView {
  readonly id: number;
  readonly runId: number;
  readonly owner: string;
  readonly repo: string;
  readonly labels: readonly string[];
  readonly status: JobStatus;
  readonly conclusion?: string | null;
  /** null: no scale set serves the job's labels (unroutable). */
  readonly scaleSet: string | null;
  readonly runnerName?: string | null;
  readonly queuedAt: number;
  readonly startedAt?: number | null;
  readonly completedAt?: number | null;
}

export interface RunnerQuery {
  readonly scaleSet?: string;
  readonly state?: RunnerState;
}

export interface JobQuery {
  readonly status?: JobStatus;
  readonly scaleSet?: string;
  /** Only jobs no scale set serves. */
  readonly unroutable?: boolean;
  /** Most recent first; the server caps it (default 500, at most 5000). */
  readonly limit: number;
}

export interface ReadModel {
  scaleSets(): MaybePromise<readonly ScaleSetView[]>;
  runners(query: RunnerQuery): MaybePromise<readonly RunnerView[]>;
  jobs(query: JobQuery): MaybePromise<readonly JobView[]>;
}
