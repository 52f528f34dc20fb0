/**
 * What the HTTP API (and the dashboard) shows. The core implements ReadModel over its store and observations (its
 * views in core/read-models.ts have exactly these shapes); the server only serializes them, through response
 * schemas that list every field, so a secret added to a record by mistake is dropped rather than served.
 */
import type { RegistrationMode } from '../config/types.js';
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
  readonly registration: RegistrationMode;
  readonly priority: number;
  /** Provider kind (`process`, `kubernetes`, `ec2`, `sim`). */
  readonly provider: string;
  /** Runner records by state (deleted ones not counted). */
  readonly runners: Readonly<Record<RunnerState, number>>;
  /** Runners in requested/creating/starting/idle/busy: what counts toward capacity. */
  readonly activeRunners: number;
  readonly queuedJobs: number;
  readonly inProgressJobs: number;
  /** Wait of the longest-queued job, ms; null when none is queued. */
  readonly oldestQueuedMs: number | null;
  readonly backoff: {
    readonly failures: number;
    readonly until: number | null;
    readonly lastFailure: string | null;
    readonly lastFailureAt: number | null;
  };
  /** ms epoch of the last runner list / instance list / reconcile pass; null before the first. */
  readonly githubListedAt: number | null;
  readonly instancesListedAt: number | null;
  readonly lastReconcileAt: number | null;
}

export interface RunnerView {
  readonly name: string;
  readonly scaleSet: string;
  readonly state: RunnerState;
  readonly reason: string | null;
  readonly githubId: number | null;
  /** ms epoch */
  readonly createdAt: number;
  readonly ageMs: number;
  readonly stateChangedAt: number;
  readonly stateAgeMs: number;
  readonly instance: {
    readonly state: string;
    readonly providerId?: string;
    readonly message?: string;
  } | null;
  readonly github: { readonly status: 'online' | 'offline'; readonly busy: boolean } | null;
  readonly job: { readonly id: number; readonly status: JobStatus } | null;
}

export interface JobView {
  readonly id: number;
  readonly runId: number;
  readonly owner: string;
  readonly repo: string;
  readonly labels: readonly string[];
  readonly status: JobStatus;
  readonly conclusion: string | null;
  /** null: no scale set serves these labels. */
  readonly scaleSet: string | null;
  readonly unroutable: boolean;
  readonly runnerName: string | null;
  readonly queuedAt: number;
  readonly startedAt: number | null;
  readonly completedAt: number | null;
  /** queued to started (or to now while queued), ms */
  readonly waitMs: number;
}

export interface EventView {
  readonly id: number;
  /** ms epoch */
  readonly at: number;
  readonly kind: string;
  readonly scaleSet: string | null;
  readonly runner: string | null;
  readonly jobId: number | null;
  readonly event: string;
  readonly reason: string | null;
}

export interface RunnerQuery {
  readonly scaleSet?: string;
  readonly state?: RunnerState;
}

export interface JobQuery {
  readonly status?: JobStatus;
  /** A scale set, or null for the jobs no scale set serves (unroutable). */
  readonly scaleSet?: string | null;
  /** Recent completed jobs to include besides the open ones (the server caps it at 5000). */
  readonly completedLimit?: number;
}

export interface EventQuery {
  readonly scaleSet?: string;
  readonly runner?: string;
  readonly jobId?: number;
  /** Only events with a larger id (polling). */
  readonly afterId?: number;
  /** At most this many, most recent first (the server caps it at 5000; default 200). */
  readonly limit: number;
}

export interface ReadModel {
  scaleSets(): MaybePromise<readonly ScaleSetView[]>;
  runners(query: RunnerQuery): MaybePromise<readonly RunnerView[]>;
  jobs(query: JobQuery): MaybePromise<readonly JobView[]>;
  /** Recent runner and job events (state changes); `GET /api/v1/events` answers 404 without it. */
  events?(query: EventQuery): MaybePromise<readonly EventView[]>;
}
