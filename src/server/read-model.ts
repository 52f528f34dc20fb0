/**
 * What the HTTP API (and the dashboard) shows. The views are the core's own (core/read-models.ts); the server only
 * serializes them, through response schemas that list every field, so a secret added to a record by mistake is
 * dropped rather than served.
 */
import type { JobStatus, RunnerState } from '../core/types.js';
import type { JobView, RunnerView, ScaleSetView } from '../core/read-models.js';

export type { JobView, RunnerView, ScaleSetView };

type MaybePromise<T> = T | Promise<T>;

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
  /** Only completed jobs recorded after this time (ms epoch). */
  readonly completedSince?: number;
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
