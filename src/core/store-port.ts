/**
 * The store port: what core needs from persistence, and nothing of how it is done. src/store implements it with SQLite
 * (every write a committed transaction before the method returns; indexes updated after the commit). Core types
 * against this interface only, so a reader of the reconciler never needs the adapter.
 */
import type { BackoffState } from './backoff.js';
import type { JobInfo, WebhookSink } from './ports.js';
import type {
  EventQuery,
  EventRow,
  JobChange,
  JobRecord,
  NewEvent,
  RunnerChange,
  RunnerJob,
  RunnerRecord,
  RunnerUpdate,
} from './records.js';

/** A scale set's failure backoff, with the last failure for display. */
export interface ScaleSetBackoff extends BackoffState {
  readonly lastFailure: string | null;
  readonly lastFailureAt: number | null;
}

/** Job records: written by webhooks (WebhookSink) and status checks, read by planning and the read models. */
export interface JobStore extends WebhookSink {
  /** Listen to job changes (webhooks, status checks, reroutes). Returns the unsubscribe function. */
  subscribe(listener: (change: JobChange) => void): () => void;
  /** What a status check learned (null: GitHub does not know the job any more). */
  applyJobStatus(jobId: number, info: JobInfo | null): JobRecord | null;
  /** A status check that failed: stamps the check time, so the job waits its turn for the next check. */
  markJobChecked(jobId: number): void;
  /** Routes open jobs again (after a configuration change). Returns how many changed scale set. */
  rerouteOpenJobs(): number;
  job(id: number): JobRecord | null;
  /** An open job recorded before this controller started and not heard of since: it needs a check before it counts. */
  isUnverified(id: number): boolean;
  /** Queued and in-progress jobs; with a scale set (or null: unroutable), only those routed there. */
  openJobs(scaleSet?: string | null): JobRecord[];
  /** Iterates open jobs of one scale set without copying (hot path). */
  forEachOpenJob(scaleSet: string | null, fn: (job: JobRecord) => void): void;
  /** Completed jobs, most recent first; with `recordedSince` (ms epoch), only those recorded after it. */
  recentCompletedJobs(limit?: number, recordedSince?: number): JobRecord[];
}

/** Runner records: intent recorded before any call out, every transition written with its reason. */
export interface RunnerStore {
  /** Records intent: one `requested` record per runner, in one transaction, before anything is called. */
  insertRunners(runners: readonly { name: string; scaleSet: string }[], reason?: string): RunnerRecord[];
  runner(name: string): RunnerRecord | null;
  /** Runners in memory: the live ones and deleted ones not yet released, of one scale set or all. */
  runners(scaleSet?: string): RunnerRecord[];
  forEachRunner(scaleSet: string, fn: (runner: RunnerRecord) => void): void;
  /** The latest job GitHub reported on this runner (a released one's read from the file), or null. */
  runnerJob(name: string): RunnerJob | null;
  /** Runners deleted within the retention's deletedRunnersMs (an hour), read from the file: for display. */
  deletedRunners(scaleSet?: string): RunnerRecord[];
  /**
   * Drops from memory the deleted runners of a scale set deleted before `deletedBefore` (ms epoch), except those
   * `keep` names: planning no longer needs them. They stay in the file. Returns how many were dropped.
   */
  releaseDeletedRunners(scaleSet: string, deletedBefore: number, keep?: (name: string) => boolean): number;
  /** Applies a change; a new state writes an event. Throws for an unknown name. */
  updateRunner(name: string, change: RunnerChange): RunnerUpdate;
  /**
   * Applies several changes in one transaction, in order (a pass's marks). A change that changes nothing writes
   * nothing (its update's `after` is its `before`). Throws for an unknown name, before anything is written.
   */
  updateRunners(changes: readonly { name: string; change: RunnerChange }[]): RunnerUpdate[];
  backoff(scaleSet: string): ScaleSetBackoff;
  setBackoff(
    scaleSet: string,
    state: BackoffState,
    failure?: { reason: string; at: number },
  ): ScaleSetBackoff;
}

/** The event log shown by the API and dashboard. */
export interface EventStore {
  recordEvent(event: NewEvent): void;
  /** Most recent first. */
  recentEvents(query?: EventQuery): EventRow[];
}

/**
 * Why the store cannot be used any more: its file is damaged or the disk fails. Sticky until the process restarts;
 * meanwhile nothing is written, the controller is not ready, and the core plans nothing.
 */
export interface StoreFailure {
  /** `store-corrupt` (the file is damaged or not a database) or `store-io` (the disk failed or is full). */
  readonly code: 'store-corrupt' | 'store-io';
  /** SQLite's own error code, e.g. SQLITE_CORRUPT, SQLITE_NOTADB, SQLITE_IOERR_SHORT_READ. */
  readonly sqliteCode: string;
  /** SQLite's own message, e.g. "database disk image is malformed". */
  readonly message: string;
  /** When it was detected (ms epoch). */
  readonly at: number;
}

export interface FleetStore extends JobStore, RunnerStore, EventStore {
  /** Drops what is past its retention. */
  prune(): unknown;
  /** Null while the store works; once its file or disk failed, why (see StoreFailure). */
  failure(): StoreFailure | null;
}
