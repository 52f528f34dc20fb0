/**
 * The SQLite store (better-sqlite3, WAL). It is the controller's memory across restarts: webhook deliveries, jobs,
 * runner records with their history, and the backoff of each scale set. Every write is a synchronous transaction,
 * committed before the method returns; the in-memory indexes are updated only after the commit, so they never run
 * ahead of the file. It also implements WebhookSink: a workflow_job event is durable before the HTTP reply.
 *
 * Durability: WAL with synchronous=NORMAL (default) survives a killed process (kill -9) at any point, because a
 * committed transaction is in the WAL in the operating system's cache. synchronous=FULL also survives power loss, at
 * the price of an fsync per write (measured at about 2.6 ms here, against 50 us). With `backgroundCheckpoints` the
 * WAL is copied back into the file by a worker thread (checkpointer.ts), not by whichever commit fills it.
 *
 * Failure: every error carries SQLite's own message and code (in its message and as its `cause`). An error that
 * means the file is damaged or the disk fails (sqlite-errors.ts `failureKind`) makes the store failed for good
 * (`failure()`, `onFailure`): it writes nothing more, and the controller reports itself unhealthy and not ready.
 * A file damaged before the open is found by the integrity check (integrity.ts) that the controller runs first.
 */
import { closeSync, existsSync, openSync } from 'node:fs';
import Database from 'better-sqlite3';
import type { Database as Db, Statement, Transaction } from 'better-sqlite3';
import type { JobInfo, WorkflowJobEvent } from '../core/ports.js';
import { applyJobEvent, applyJobStatus, markJobChecked, sameJob } from '../core/jobs.js';
import type { JobRoute } from '../core/jobs.js';
import type { JobStatus, RunnerState } from '../core/types.js';
import type { BackoffState } from '../core/backoff.js';
import type { FleetStore, ScaleSetBackoff, StoreFailure } from '../core/store-port.js';
import { Checkpointer } from './checkpointer.js';
import { migrate } from './migrations.js';
import { StoreError, describeCause, failureKind, sqliteCause } from './sqlite-errors.js';
import {
  DEFAULT_RETENTION,
  type EventKind,
  type EventQuery,
  type EventRow,
  type JobChange,
  type JobChangeSource,
  type JobRecord,
  type NewEvent,
  type Retention,
  type RunnerChange,
  type RunnerJob,
  type RunnerRecord,
  type RunnerUpdate,
} from '../core/records.js';

export interface StoreOptions {
  /** File path, or ':memory:' (tests only: nothing survives). */
  readonly path: string;
  /** Routing, applied when a job is first seen (core/labels.ts LabelRouter.route). */
  readonly route: JobRoute;
  readonly now?: () => number;
  readonly synchronous?: 'normal' | 'full';
  readonly retention?: Partial<Retention>;
  /**
   * WAL checkpoints in a worker thread instead of on commits (src/store/checkpointer.ts); for a file store only.
   * The controller turns this on; `onFailure` hears why if the worker gives up (checkpoints then run on commits).
   */
  readonly backgroundCheckpoints?: {
    readonly intervalMs?: number;
    readonly onFailure?: (reason: string) => void;
  };
}

export interface AcceptResult {
  readonly duplicate: boolean;
  /** The job's scale set after this event (null: unroutable or unknown), so the caller can wake just that one. */
  readonly scaleSet: string | null;
}

/** One event's outcome inside the accept transaction. */
interface Accepted {
  readonly duplicate: boolean;
  readonly change: JobChange | null;
}

export { StoreError } from './sqlite-errors.js';

interface JobSqlRow {
  id: number;
  run_id: number;
  owner: string;
  repo: string;
  labels: string;
  status: JobStatus;
  conclusion: string | null;
  scale_set: string | null;
  runner_name: string | null;
  queued_at: number;
  started_at: number | null;
  completed_at: number | null;
  checked_at: number | null;
}

interface RunnerSqlRow {
  name: string;
  scale_set: string;
  state: RunnerState;
  reason: string | null;
  github_id: number | null;
  created_at: number;
  state_changed_at: number;
  instance_deleted_at: number | null;
  registration_deleted_at: number | null;
}

interface EventSqlRow {
  id: number;
  at: number;
  kind: EventKind;
  scale_set: string | null;
  runner: string | null;
  job_id: number | null;
  event: string;
  reason: string | null;
}

function jobFromRow(r: JobSqlRow): JobRecord {
  return {
    id: r.id,
    runId: r.run_id,
    owner: r.owner,
    repo: r.repo,
    labels: JSON.parse(r.labels) as string[],
    status: r.status,
    conclusion: r.conclusion,
    scaleSet: r.scale_set,
    runnerName: r.runner_name,
    queuedAt: r.queued_at,
    startedAt: r.started_at,
    completedAt: r.completed_at,
    checkedAt: r.checked_at,
  };
}

function runnerFromRow(r: RunnerSqlRow): RunnerRecord {
  return {
    name: r.name,
    scaleSet: r.scale_set,
    state: r.state,
    reason: r.reason,
    githubId: r.github_id,
    createdAt: r.created_at,
    stateChangedAt: r.state_changed_at,
    instanceDeletedAt: r.instance_deleted_at,
    registrationDeletedAt: r.registration_deleted_at,
  };
}

/** SQLite's default: a checkpoint on the commit that takes the WAL past this many pages. */
const DEFAULT_WAL_AUTOCHECKPOINT = 1000;

/**
 * The connection's page cache, in KiB. better-sqlite3 builds SQLite with 16 MB, and the cache keeps every page it
 * has read or written up to that size: as the file grows with each job's rows (until the retention prunes them) it
 * filled for hours, about 0.25 MB a minute at 2 jobs a second. The store keeps its open records in memory anyway, so
 * the cache only needs the B-tree pages the writes descend through and the pages they fill: 1 MB (256 pages) holds
 * them, and is full within the first minutes of steady work instead of growing through the first quarter of an hour
 * as SQLite's own 2 MB did. A page it no longer holds is read back from the kernel's file cache.
 */
const PAGE_CACHE_KIB = 1024;

export class Store implements FleetStore {
  readonly path: string;
  readonly #db: Db;
  readonly #checkpointer: Checkpointer | null = null;
  #closed: Promise<void> | null = null;
  readonly #now: () => number;
  readonly #route: JobRoute;
  readonly #retention: Retention;
  readonly #listeners = new Set<(change: JobChange) => void>();
  #failure: StoreFailure | null = null;
  #writes = 0;
  readonly #failureListeners = new Set<(failure: StoreFailure) => void>();

  // In-memory indexes, rebuilt from the file at open.
  readonly #runners = new Map<string, RunnerRecord>();
  readonly #runnersBySet = new Map<string, Map<string, RunnerRecord>>();
  readonly #openJobs = new Map<number, JobRecord>();
  readonly #openJobsBySet = new Map<string | null, Map<number, JobRecord>>();
  readonly #runnerJobs = new Map<string, RunnerJob & { order: number }>();
  readonly #backoff = new Map<string, ScaleSetBackoff>();
  /** Open jobs loaded from the file at open and not heard of since (no webhook, no status check). */
  readonly #unverified = new Set<number>();
  /** During a webhook batch's transaction: jobs written by earlier events of the batch, not yet in the indexes. */
  #pendingJobs: Map<number, JobRecord> | null = null;
  readonly #acceptTx: Transaction<(events: readonly WorkflowJobEvent[], now: number) => Accepted[]>;
  readonly #updateRunnersTx: Transaction<(updates: readonly RunnerUpdate[], now: number) => void>;

  readonly #stmt: {
    insertDelivery: Statement<[string, number, string, number]>;
    jobById: Statement<[number], JobSqlRow>;
    insertJob: Statement<
      [
        number,
        number,
        string,
        string,
        string,
        string,
        string | null,
        string | null,
        string | null,
        number,
        number | null,
        number | null,
        number,
      ]
    >;
    updateJob: Statement<
      [
        string,
        string | null,
        string | null,
        string | null,
        number | null,
        number | null,
        number | null,
        number,
        number,
      ]
    >;
    insertRunner: Statement<[string, string, string, string | null, number, number]>;
    updateRunner: Statement<
      [string, string | null, number | null, number, number | null, number | null, string]
    >;
    insertEvent: Statement<
      [number, string, string | null, string | null, number | null, string, string | null]
    >;
    upsertBackoff: Statement<[string, number, number, string | null, number | null]>;
    recentCompleted: Statement<[number], JobSqlRow>;
    recentCompletedSince: Statement<[number, number], JobSqlRow>;
    latestJobOfRunner: Statement<
      [string],
      { id: number; status: JobStatus; conclusion: string | null; ord: number; at: number }
    >;
    runnerByName: Statement<[string], RunnerSqlRow>;
    deletedSince: Statement<[number], RunnerSqlRow>;
    deletedOfSetSince: Statement<[number, string], RunnerSqlRow>;
  };

  private constructor(db: Db, options: StoreOptions) {
    this.path = options.path;
    this.#db = db;
    this.#now = options.now ?? Date.now;
    this.#route = options.route;
    this.#retention = { ...DEFAULT_RETENTION, ...options.retention };
    this.#stmt = {
      // A delivery id or a (job id, action) already on record is a duplicate (changes = 0). DO NOTHING covers
      // only the UNIQUE constraints: any other failure (NOT NULL...) still throws, where OR IGNORE would hide it.
      insertDelivery: db.prepare(
        `INSERT INTO deliveries (delivery_id, job_id, action, received_at) VALUES (?, ?, ?, ?)
           ON CONFLICT DO NOTHING`,
      ),
      jobById: db.prepare('SELECT * FROM jobs WHERE id = ?'),
      insertJob: db.prepare(
        `INSERT INTO jobs (id, run_id, owner, repo, labels, status, conclusion, scale_set, runner_name, queued_at,
           started_at, completed_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      updateJob: db.prepare(
        `UPDATE jobs SET status = ?, conclusion = ?, scale_set = ?, runner_name = ?, started_at = ?, completed_at = ?,
           checked_at = ?, updated_at = ? WHERE id = ?`,
      ),
      insertRunner: db.prepare(
        `INSERT INTO runners (name, scale_set, state, reason, created_at, state_changed_at)
           VALUES (?, ?, ?, ?, ?, ?)`,
      ),
      updateRunner: db.prepare(
        `UPDATE runners SET state = ?, reason = ?, github_id = ?, state_changed_at = ?, instance_deleted_at = ?,
           registration_deleted_at = ? WHERE name = ?`,
      ),
      insertEvent: db.prepare(
        'INSERT INTO events (at, kind, scale_set, runner, job_id, event, reason) VALUES (?, ?, ?, ?, ?, ?, ?)',
      ),
      upsertBackoff: db.prepare(
        `INSERT INTO scale_sets (name, failures, backoff_until, last_failure, last_failure_at) VALUES (?, ?, ?, ?, ?)
           ON CONFLICT (name) DO UPDATE SET failures = excluded.failures, backoff_until = excluded.backoff_until,
           last_failure = excluded.last_failure, last_failure_at = excluded.last_failure_at`,
      ),
      recentCompleted: db.prepare(
        "SELECT * FROM jobs WHERE status = 'completed' ORDER BY completed_at DESC, id DESC LIMIT ?",
      ),
      recentCompletedSince: db.prepare(
        `SELECT * FROM jobs WHERE updated_at > ? AND status = 'completed'
           ORDER BY completed_at DESC, id DESC LIMIT ?`,
      ),
      latestJobOfRunner: db.prepare(
        `SELECT id, status, conclusion, COALESCE(started_at, queued_at) AS ord, updated_at AS at FROM jobs
           WHERE runner_name = ?
           ORDER BY ord DESC, id DESC LIMIT 1`,
      ),
      // Prepared once: the planner's new-name check asks for every new runner's name.
      runnerByName: db.prepare('SELECT * FROM runners WHERE name = ?'),
      deletedSince: db.prepare(
        `SELECT * FROM runners WHERE state = 'deleted' AND state_changed_at >= ?
           ORDER BY state_changed_at DESC, name`,
      ),
      deletedOfSetSince: db.prepare(
        `SELECT * FROM runners WHERE state = 'deleted' AND state_changed_at >= ? AND scale_set = ?
           ORDER BY state_changed_at DESC, name`,
      ),
    };
    // Built once: a transaction function per call would be rebuilt for every webhook.
    this.#acceptTx = db.transaction((events: readonly WorkflowJobEvent[], now: number): Accepted[] => {
      this.#pendingJobs = new Map();
      try {
        return events.map((event) => this.#acceptOne(event, now));
      } finally {
        this.#pendingJobs = null;
      }
    });
    this.#updateRunnersTx = db.transaction((updates: readonly RunnerUpdate[], now: number): void => {
      for (const u of updates) this.#writeRunnerUpdate(u, now);
    });
    this.#load();
    const background = options.backgroundCheckpoints;
    if (background !== undefined && options.path !== ':memory:') {
      db.pragma('wal_autocheckpoint = 0');
      this.#checkpointer = new Checkpointer({
        path: options.path,
        ...(background.intervalMs !== undefined ? { intervalMs: background.intervalMs } : {}),
        onFailure: (reason, code) => {
          // A damaged file or failing disk fails the store; anything else only moves checkpoints to the commits.
          if (code !== undefined && failureKind(code) !== null) {
            this.#fail(Object.assign(new Error(reason), { code, name: 'SqliteError' }));
          } else if (db.open) {
            db.pragma(`wal_autocheckpoint = ${DEFAULT_WAL_AUTOCHECKPOINT}`);
          }
          background.onFailure?.(code === undefined ? reason : `${reason} (${code})`);
        },
      });
    }
  }

  /**
   * Opens (creating if needed) and migrates the database, then loads the live state into memory. Throws StoreError
   * (`store-corrupt`, `store-io` or `store-open`) naming the file and SQLite's cause.
   */
  static open(options: StoreOptions): Store {
    let db: Db;
    const fail = (what: string, cause: unknown): StoreError => {
      const kind = failureKind(sqliteCause(cause)?.code ?? '');
      const state =
        kind === 'store-corrupt' ? 'is damaged' : kind === 'store-io' ? 'cannot be read or written' : what;
      return new StoreError(`the store ${options.path} ${state}: ${describeCause(cause)}`, {
        code: kind ?? 'store-open',
        cause,
      });
    };
    try {
      // Created 0600 before SQLite opens it: SQLite would make it 0644, and gives its -wal and -shm files the
      // database file's mode.
      if (options.path !== ':memory:' && !existsSync(options.path))
        closeSync(openSync(options.path, 'a', 0o600));
      db = new Database(options.path);
    } catch (cause) {
      throw fail('cannot be opened', cause);
    }
    try {
      db.pragma('journal_mode = WAL');
      db.pragma(`synchronous = ${options.synchronous === 'full' ? 'FULL' : 'NORMAL'}`);
      db.pragma('busy_timeout = 5000');
      db.pragma(`cache_size = -${PAGE_CACHE_KIB}`);
      migrate(db);
      return new Store(db, options);
    } catch (cause) {
      db.close();
      if (cause instanceof Error && 'code' in cause && cause.code === 'store-migration') throw cause;
      throw fail('cannot be initialised', cause);
    }
  }

  /** Null while the store works; once its file or disk failed, why. Sticky. */
  failure(): StoreFailure | null {
    return this.#failure;
  }

  /** Called once, when the store fails (a damaged file, a failing disk). Returns the unsubscribe function. */
  onFailure(listener: (failure: StoreFailure) => void): () => void {
    this.#failureListeners.add(listener);
    return () => this.#failureListeners.delete(listener);
  }

  /** Records the first failure and tells the listeners; later ones change nothing. */
  #fail(error: unknown): void {
    const sqlite = sqliteCause(error);
    const code = failureKind(sqlite?.code ?? '');
    if (this.#failure !== null || sqlite === null || code === null) return;
    this.#failure = { code, sqliteCode: sqlite.code, message: sqlite.message, at: this.#now() };
    for (const listener of this.#failureListeners) {
      try {
        listener(this.#failure);
      } catch {
        // A listener's failure must not hide the store's.
      }
    }
  }

  /**
   * Runs one operation on the file. SQLite's errors come out as StoreError with SQLite's message and code (and as
   * the cause); one that means a damaged file or failing disk fails the store. Other errors pass unchanged, unless
   * `code` asks for them to be wrapped too.
   */
  #sql<T>(what: string, fn: () => T, code?: string): T {
    try {
      return fn();
    } catch (error) {
      const sqlite = sqliteCause(error);
      if (sqlite === null && code === undefined) throw error;
      this.#fail(error);
      throw new StoreError(`store ${this.path}: ${what}: ${describeCause(error)}`, {
        code: (sqlite !== null ? failureKind(sqlite.code) : null) ?? code ?? 'store-sqlite',
        cause: error,
      });
    }
  }

  /** Writes (transactions) since the store opened: each is a commit to the WAL, the store's cost per change. */
  get writes(): number {
    return this.#writes;
  }

  /** A write: refused at once once the store has failed (nothing more goes into a damaged file). */
  #write<T>(what: string, fn: () => T, code?: string): T {
    this.#writes++;
    const failure = this.#failure;
    if (failure !== null) {
      throw new StoreError(
        `store ${this.path}: ${what}: refused, the store failed: ${failure.message} (${failure.sqliteCode})`,
        { code: failure.code },
      );
    }
    return this.#sql(what, fn, code);
  }

  get isOpen(): boolean {
    return this.#db.open;
  }

  /** Closes the connection; with background checkpoints, also stops their worker (`closed()` waits for it). */
  close(): void {
    this.#closed ??= this.#checkpointer?.stop() ?? Promise.resolve();
    if (this.#db.open) this.#db.close();
  }

  /** Resolves once close() has finished everything, the checkpoint worker included. */
  closed(): Promise<void> {
    return this.#closed ?? Promise.resolve();
  }

  /** True while checkpoints run in their worker (false without one, or after it failed). */
  get checkpointsInBackground(): boolean {
    return this.#checkpointer !== null && !this.#checkpointer.failed;
  }

  #load(): void {
    const now = this.#now();
    const runnerRows = this.#db
      .prepare<[number], RunnerSqlRow>(
        "SELECT * FROM runners WHERE state <> 'deleted' OR state_changed_at >= ?",
      )
      .all(now - this.#retention.deletedRunnersMs);
    for (const row of runnerRows) this.#cacheRunner(runnerFromRow(row));
    for (const name of this.#runners.keys()) {
      const j = this.#stmt.latestJobOfRunner.get(name);
      if (j !== undefined) {
        this.#runnerJobs.set(name, {
          id: j.id,
          status: j.status,
          conclusion: j.conclusion,
          order: j.ord,
          at: j.at,
        });
      }
    }
    const jobRows = this.#db.prepare<[], JobSqlRow>("SELECT * FROM jobs WHERE status <> 'completed'").all();
    for (const row of jobRows) {
      this.#cacheJob(jobFromRow(row));
      this.#unverified.add(row.id);
    }
    const backoffRows = this.#db
      .prepare<
        [],
        {
          name: string;
          failures: number;
          backoff_until: number;
          last_failure: string | null;
          last_failure_at: number | null;
        }
      >('SELECT * FROM scale_sets')
      .all();
    for (const b of backoffRows) {
      this.#backoff.set(b.name, {
        failures: b.failures,
        until: b.backoff_until,
        lastFailure: b.last_failure,
        lastFailureAt: b.last_failure_at,
      });
    }
  }

  // ---- webhook sink and jobs -------------------------------------------------------------------------------------

  /** Listen to job changes (webhooks, status checks): the reconciler wakes the job's scale set. */
  subscribe(listener: (change: JobChange) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  acceptWorkflowJob(event: WorkflowJobEvent): AcceptResult {
    return this.#accept([event], `cannot record delivery ${event.deliveryId}`)[0]!;
  }

  /**
   * Group commit: the events in ONE transaction (a commit costs about as much as all the rest of an event's
   * writes), in order, each deduplicated against the file and against the events before it in the same batch.
   * Results are in the order of `events`. All or nothing: when it throws, none of the events was recorded.
   */
  acceptWorkflowJobs(events: readonly WorkflowJobEvent[]): AcceptResult[] {
    if (events.length === 0) return [];
    return this.#accept(events, `cannot record ${events.length} deliveries`);
  }

  #accept(events: readonly WorkflowJobEvent[], failure: string): AcceptResult[] {
    const now = this.#now();
    const outcomes = this.#write(failure, () => this.#acceptTx.immediate(events, now), 'store-write');
    // Committed: only now do the indexes and listeners learn of it, in the order of the events.
    for (let i = 0; i < outcomes.length; i++) {
      const outcome = outcomes[i]!;
      if (!outcome.duplicate) this.#unverified.delete(events[i]!.job.id);
      if (outcome.change !== null) this.#applyJobChange(outcome.change, now);
    }
    return outcomes.map((outcome, i) => ({
      duplicate: outcome.duplicate,
      scaleSet: outcome.change?.job.scaleSet ?? this.job(events[i]!.job.id)?.scaleSet ?? null,
    }));
  }

  /** Inside the transaction. */
  #acceptOne(event: WorkflowJobEvent, now: number): Accepted {
    const { job } = event;
    // The UNIQUE constraints (delivery id; job id + action) are the dedupe: one statement, no lookup first.
    if (this.#stmt.insertDelivery.run(event.deliveryId, job.id, event.action, now).changes === 0) {
      return { duplicate: true, change: null };
    }
    const existing = this.#readJob(job.id);
    const next = applyJobEvent(existing, event, this.#route, now);
    const change = next === null ? null : this.#writeJobChange(existing, next, 'webhook', null, now);
    // A later event of the same batch about this job must merge into this state, not into the cached one.
    if (change !== null) this.#pendingJobs?.set(job.id, change.job);
    return { duplicate: false, change };
  }

  /** What a status check learned (null: GitHub does not know the job any more). */
  applyJobStatus(jobId: number, info: JobInfo | null): JobRecord | null {
    const now = this.#now();
    const change = this.#write(
      `cannot record the status of job ${jobId}`,
      this.#db.transaction((): JobChange | null => {
        const existing = this.#readJob(jobId);
        if (existing === null) return null;
        const next = applyJobStatus(existing, info, now);
        this.#writeJob(next, now);
        if (!sameJob(existing, next)) {
          this.#event(
            { kind: 'job', scaleSet: next.scaleSet, jobId, event: next.status, reason: 'status check' },
            now,
          );
        }
        return { job: next, previous: existing, source: 'check' };
      }),
    );
    if (change === null) return null;
    this.#unverified.delete(jobId);
    this.#applyJobChange(change, now);
    return change.job;
  }

  /** A status check that failed: stamps the check time, so the job waits its turn for the next check. */
  markJobChecked(jobId: number): void {
    const existing = this.#openJobs.get(jobId);
    if (existing === undefined) return;
    const next = markJobChecked(existing, this.#now());
    this.#write(`cannot record the check of job ${jobId}`, () => this.#writeJob(next, this.#now()));
    this.#uncacheJob(existing);
    this.#cacheJob(next);
  }

  /** Routes open jobs again (after a configuration change). Returns how many changed scale set. */
  rerouteOpenJobs(): number {
    const now = this.#now();
    const changes: JobChange[] = [];
    this.#write(
      'cannot route open jobs again',
      this.#db.transaction(() => {
        for (const job of this.#openJobs.values()) {
          const scaleSet = this.#route(job);
          if (scaleSet === job.scaleSet) continue;
          const next = { ...job, scaleSet };
          this.#writeJob(next, now);
          changes.push({ job: next, previous: job, source: 'reroute' });
        }
      }),
    );
    for (const c of changes) this.#applyJobChange(c, now);
    return changes.length;
  }

  job(id: number): JobRecord | null {
    return this.#openJobs.get(id) ?? this.#sql(`cannot read job ${id}`, () => this.#readJob(id));
  }

  /**
   * True for an open job loaded from the file when the store opened and not heard of since: events may have been
   * lost while no controller was running, so its status needs a check before it counts.
   */
  isUnverified(id: number): boolean {
    return this.#unverified.has(id);
  }

  /** Queued and in-progress jobs; with a scale set (or null: unroutable), only those routed there. */
  openJobs(scaleSet?: string | null): JobRecord[] {
    if (scaleSet === undefined) return [...this.#openJobs.values()];
    return [...(this.#openJobsBySet.get(scaleSet)?.values() ?? [])];
  }

  /** Iterate open jobs of one scale set without copying (hot path of the reconciler). */
  forEachOpenJob(scaleSet: string | null, fn: (job: JobRecord) => void): void {
    const m = this.#openJobsBySet.get(scaleSet);
    if (m !== undefined) for (const j of m.values()) fn(j);
  }

  /**
   * Completed jobs, most recent first (dashboard); with `recordedSince`, only those recorded (written) after that
   * time (ms epoch), found by the updated_at index instead of reading every completed job.
   */
  recentCompletedJobs(limit = 100, recordedSince?: number): JobRecord[] {
    return this.#sql('cannot read completed jobs', () =>
      (recordedSince === undefined
        ? this.#stmt.recentCompleted.all(limit)
        : this.#stmt.recentCompletedSince.all(recordedSince, limit)
      ).map(jobFromRow),
    );
  }

  #readJob(id: number): JobRecord | null {
    const pending = this.#pendingJobs?.get(id);
    if (pending !== undefined) return pending;
    const cached = this.#openJobs.get(id);
    if (cached !== undefined) return cached;
    const row = this.#stmt.jobById.get(id);
    return row === undefined ? null : jobFromRow(row);
  }

  /** Inside a transaction: writes a new or changed job and its event. */
  #writeJobChange(
    existing: JobRecord | null,
    job: JobRecord,
    source: JobChangeSource,
    reason: string | null,
    now: number,
  ): JobChange {
    if (existing === null) {
      this.#stmt.insertJob.run(
        job.id,
        job.runId,
        job.owner,
        job.repo,
        JSON.stringify(job.labels),
        job.status,
        job.conclusion ?? null,
        job.scaleSet,
        job.runnerName ?? null,
        job.queuedAt,
        job.startedAt ?? null,
        job.completedAt ?? null,
        now,
      );
    } else this.#writeJob(job, now);
    const unroutable = existing === null && job.scaleSet === null ? 'unroutable' : null;
    this.#event(
      { kind: 'job', scaleSet: job.scaleSet, jobId: job.id, event: job.status, reason: reason ?? unroutable },
      now,
    );
    return { job, previous: existing, source };
  }

  #writeJob(job: JobRecord, now: number): void {
    this.#stmt.updateJob.run(
      job.status,
      job.conclusion ?? null,
      job.scaleSet,
      job.runnerName ?? null,
      job.startedAt ?? null,
      job.completedAt ?? null,
      job.checkedAt ?? null,
      now,
      job.id,
    );
  }

  /** After commit: indexes, then listeners. */
  #applyJobChange(change: JobChange, at: number): void {
    const { job, previous } = change;
    if (previous !== null) this.#uncacheJob(previous);
    if (job.status !== 'completed') this.#cacheJob(job);
    const runner = job.runnerName;
    if (runner && this.#runners.has(runner)) {
      // Latest by GitHub's start time: a late event about an earlier job must not hide the current one.
      const order = job.startedAt ?? job.queuedAt;
      const current = this.#runnerJobs.get(runner);
      if (current === undefined || current.id === job.id || order >= current.order) {
        this.#runnerJobs.set(runner, {
          id: job.id,
          status: job.status,
          conclusion: job.conclusion ?? null,
          order,
          at,
        });
      }
    }
    for (const l of this.#listeners) l(change);
  }

  #cacheJob(job: JobRecord): void {
    this.#openJobs.set(job.id, job);
    let m = this.#openJobsBySet.get(job.scaleSet);
    if (m === undefined) this.#openJobsBySet.set(job.scaleSet, (m = new Map()));
    m.set(job.id, job);
  }

  #uncacheJob(job: JobRecord): void {
    this.#openJobs.delete(job.id);
    this.#openJobsBySet.get(job.scaleSet)?.delete(job.id);
  }

  // ---- runners -----------------------------------------------------------------------------------------------------

  /** Records intent: one `requested` row per runner, all in one transaction, before anything is called. */
  insertRunners(runners: readonly { name: string; scaleSet: string }[], reason = 'planned'): RunnerRecord[] {
    const now = this.#now();
    const rows = runners.map((r): RunnerRecord => ({
      name: r.name,
      scaleSet: r.scaleSet,
      state: 'requested',
      reason,
      githubId: null,
      createdAt: now,
      stateChangedAt: now,
      instanceDeletedAt: null,
      registrationDeletedAt: null,
    }));
    this.#write(
      `cannot record ${rows.length} new runners`,
      this.#db.transaction(() => {
        for (const r of rows) {
          this.#stmt.insertRunner.run(r.name, r.scaleSet, r.state, r.reason, now, now);
          this.#event(
            { kind: 'runner', scaleSet: r.scaleSet, runner: r.name, event: 'requested', reason },
            now,
          );
        }
      }),
    );
    for (const r of rows) this.#cacheRunner(r);
    return rows;
  }

  runner(name: string): RunnerRecord | null {
    const cached = this.#runners.get(name);
    if (cached !== undefined) return cached;
    const row = this.#sql(`cannot read runner ${name}`, () => this.#stmt.runnerByName.get(name));
    return row === undefined ? null : runnerFromRow(row);
  }

  /**
   * Runners in memory, of one scale set or all: the live ones, and deleted ones until the reconciler releases them
   * (releaseDeletedRunners) or, at the latest, for the retention's deletedRunnersMs.
   */
  runners(scaleSet?: string): RunnerRecord[] {
    if (scaleSet === undefined) return [...this.#runners.values()];
    return [...(this.#runnersBySet.get(scaleSet)?.values() ?? [])];
  }

  forEachRunner(scaleSet: string, fn: (runner: RunnerRecord) => void): void {
    const m = this.#runnersBySet.get(scaleSet);
    if (m !== undefined) for (const r of m.values()) fn(r);
  }

  /**
   * The latest job GitHub reported on this runner, or null. For a runner no longer in memory (deleted and released)
   * it is read from the file, where a late webhook naming it is recorded too.
   */
  runnerJob(name: string): RunnerJob | null {
    const j = this.#runnerJobs.get(name);
    if (j !== undefined) return { id: j.id, status: j.status, conclusion: j.conclusion ?? null, at: j.at };
    if (this.#runners.has(name)) return null;
    const row = this.#sql(`cannot read the latest job of runner ${name}`, () =>
      this.#stmt.latestJobOfRunner.get(name),
    );
    return row === undefined
      ? null
      : { id: row.id, status: row.status, conclusion: row.conclusion, at: row.at };
  }

  /**
   * Runners deleted within the retention's deletedRunnersMs, of one scale set or all, most recently deleted first,
   * read from the file (deleted runners leave memory once nothing in planning needs them).
   */
  deletedRunners(scaleSet?: string): RunnerRecord[] {
    const since = this.#now() - this.#retention.deletedRunnersMs;
    const rows = this.#sql('cannot read deleted runners', () =>
      scaleSet === undefined
        ? this.#stmt.deletedSince.all(since)
        : this.#stmt.deletedOfSetSince.all(since, scaleSet),
    );
    return rows.map(runnerFromRow);
  }

  /**
   * Drops from memory the deleted runners of a scale set whose deletion (state change) is older than
   * `deletedBefore`, except those `keep` names. The file keeps them: runner(), runnerJob() and deletedRunners()
   * still find them there. Returns how many left memory.
   */
  releaseDeletedRunners(
    scaleSet: string,
    deletedBefore: number,
    keep: (name: string) => boolean = () => false,
  ): number {
    const m = this.#runnersBySet.get(scaleSet);
    if (m === undefined) return 0;
    const gone: RunnerRecord[] = [];
    for (const r of m.values()) {
      if (r.state === 'deleted' && r.stateChangedAt < deletedBefore && !keep(r.name)) gone.push(r);
    }
    for (const r of gone) this.#uncacheRunner(r);
    return gone.length;
  }

  /** Applies a change to a runner row; a new state writes an event. Throws store-no-runner for an unknown name. */
  updateRunner(name: string, change: RunnerChange): RunnerUpdate {
    return this.updateRunners([{ name, change }])[0]!;
  }

  /**
   * Applies changes to several runner rows in ONE transaction (a pass's marks: a commit costs more than the rest of a
   * change). A change that changes nothing writes nothing. Throws store-no-runner for an unknown name, before
   * anything is written.
   */
  updateRunners(changes: readonly { name: string; change: RunnerChange }[]): RunnerUpdate[] {
    const now = this.#now();
    const updates: RunnerUpdate[] = [];
    // Applied in order, so two changes of one runner see each other.
    const pending = new Map<string, RunnerRecord>();
    for (const { name, change } of changes) {
      const before = pending.get(name) ?? this.runner(name);
      if (before === null) throw new StoreError(`unknown runner ${name}`, { code: 'store-no-runner' });
      const after = applyRunnerChange(before, change, now);
      pending.set(name, after);
      updates.push({ before, after });
    }
    const writes = updates.filter((u) => u.before !== u.after);
    if (writes.length === 0) return updates;
    this.#write(
      writes.length === 1
        ? `cannot record a change of runner ${writes[0]!.after.name}`
        : `cannot record changes of ${writes.length} runners`,
      () => this.#updateRunnersTx.immediate(writes, now),
    );
    for (const u of writes) this.#cacheRunner(u.after);
    return updates;
  }

  /** Inside the transaction. */
  #writeRunnerUpdate({ before, after }: RunnerUpdate, now: number): void {
    const name = after.name;
    this.#stmt.updateRunner.run(
      after.state,
      after.reason,
      after.githubId,
      after.stateChangedAt,
      after.instanceDeletedAt,
      after.registrationDeletedAt,
      name,
    );
    if (before.state !== after.state) {
      this.#event(
        {
          kind: 'runner',
          scaleSet: after.scaleSet,
          runner: name,
          event: after.state,
          reason: after.reason,
        },
        now,
      );
    }
    if (before.instanceDeletedAt === null && after.instanceDeletedAt !== null) {
      this.#event(
        { kind: 'instance', scaleSet: after.scaleSet, runner: name, event: 'deleted', reason: null },
        now,
      );
    }
    if (before.registrationDeletedAt === null && after.registrationDeletedAt !== null) {
      this.#event(
        { kind: 'registration', scaleSet: after.scaleSet, runner: name, event: 'deleted', reason: null },
        now,
      );
    }
  }

  #cacheRunner(r: RunnerRecord): void {
    this.#runners.set(r.name, r);
    let m = this.#runnersBySet.get(r.scaleSet);
    if (m === undefined) this.#runnersBySet.set(r.scaleSet, (m = new Map()));
    m.set(r.name, r);
  }

  #uncacheRunner(r: RunnerRecord): void {
    this.#runners.delete(r.name);
    this.#runnersBySet.get(r.scaleSet)?.delete(r.name);
    this.#runnerJobs.delete(r.name);
  }

  // ---- backoff -----------------------------------------------------------------------------------------------------

  backoff(scaleSet: string): ScaleSetBackoff {
    return this.#backoff.get(scaleSet) ?? { failures: 0, until: 0, lastFailure: null, lastFailureAt: null };
  }

  setBackoff(
    scaleSet: string,
    state: BackoffState,
    failure?: { reason: string; at: number },
  ): ScaleSetBackoff {
    const prev = this.backoff(scaleSet);
    const next: ScaleSetBackoff = {
      failures: state.failures,
      until: state.until,
      lastFailure: failure?.reason ?? prev.lastFailure,
      lastFailureAt: failure?.at ?? prev.lastFailureAt,
    };
    this.#write(`cannot record the backoff of scale set ${scaleSet}`, () =>
      this.#stmt.upsertBackoff.run(scaleSet, next.failures, next.until, next.lastFailure, next.lastFailureAt),
    );
    this.#backoff.set(scaleSet, next);
    return next;
  }

  // ---- events ------------------------------------------------------------------------------------------------------

  /** Records an event that is not a runner state change (an orphan registration removed, a stray instance...). */
  recordEvent(event: NewEvent): void {
    this.#write(`cannot record a ${event.kind} event`, () => this.#event(event, this.#now()));
  }

  #event(e: NewEvent, at: number): void {
    this.#stmt.insertEvent.run(
      at,
      e.kind,
      e.scaleSet ?? null,
      e.runner ?? null,
      e.jobId ?? null,
      e.event,
      e.reason ?? null,
    );
  }

  /** Most recent first. */
  recentEvents(query: EventQuery = {}): EventRow[] {
    const where: string[] = [];
    const params: (string | number)[] = [];
    if (query.scaleSet !== undefined) {
      where.push('scale_set = ?');
      params.push(query.scaleSet);
    }
    if (query.runner !== undefined) {
      where.push('runner = ?');
      params.push(query.runner);
    }
    if (query.jobId !== undefined) {
      where.push('job_id = ?');
      params.push(query.jobId);
    }
    if (query.kind !== undefined) {
      where.push('kind = ?');
      params.push(query.kind);
    }
    if (query.afterId !== undefined) {
      where.push('id > ?');
      params.push(query.afterId);
    }
    const limit = Math.max(1, Math.min(query.limit ?? 100, 10_000));
    const sql = `SELECT * FROM events ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT ?`;
    const rows = this.#sql('cannot read events', () =>
      this.#db.prepare<(string | number)[], EventSqlRow>(sql).all(...params, limit),
    );
    return rows.map((e) => ({
      id: e.id,
      at: e.at,
      kind: e.kind,
      scaleSet: e.scale_set,
      runner: e.runner,
      jobId: e.job_id,
      event: e.event,
      reason: e.reason,
    }));
  }

  // ---- maintenance -------------------------------------------------------------------------------------------------

  /** Drops what is past its retention, in the file and in memory. Returns rows removed per table. */
  prune(): { deliveries: number; jobs: number; runners: number; events: number } {
    const now = this.#now();
    const ret = this.#retention;
    const jobCutoff = now - ret.completedJobsMs;
    const unroutableCutoff = now - ret.unroutableJobsMs;
    const counts = this.#write(
      'cannot prune',
      this.#db.transaction(() => ({
        deliveries: this.#db.prepare('DELETE FROM deliveries WHERE received_at < ?').run(jobCutoff).changes,
        jobs:
          this.#db.prepare("DELETE FROM jobs WHERE status = 'completed' AND updated_at < ?").run(jobCutoff)
            .changes +
          this.#db
            .prepare("DELETE FROM jobs WHERE status <> 'completed' AND scale_set IS NULL AND queued_at < ?")
            .run(unroutableCutoff).changes,
        runners: this.#db
          .prepare("DELETE FROM runners WHERE state = 'deleted' AND state_changed_at < ?")
          .run(jobCutoff).changes,
        events: this.#db.prepare('DELETE FROM events WHERE at < ?').run(now - ret.eventsMs).changes,
      })),
    );
    for (const job of [...(this.#openJobsBySet.get(null)?.values() ?? [])]) {
      if (job.queuedAt < unroutableCutoff) this.#uncacheJob(job);
    }
    for (const r of [...this.#runners.values()]) {
      if (r.state === 'deleted' && r.stateChangedAt < now - ret.deletedRunnersMs) this.#uncacheRunner(r);
    }
    return counts;
  }

  /**
   * When the newest webhook delivery still on record was received (ms epoch), or null. A restarted controller looks
   * for deliveries it missed from about then on (src/github/redelivery.ts).
   */
  lastDeliveryAt(): number | null {
    return this.#sql(
      'cannot read the last delivery',
      () =>
        this.#db.prepare<[], { at: number | null }>('SELECT MAX(received_at) AS at FROM deliveries').get()
          ?.at ?? null,
    );
  }

  /** Row counts, for health and tests. */
  stats(): { runners: number; liveRunners: number; openJobs: number; deliveries: number; events: number } {
    const count = (sql: string): number =>
      this.#sql('cannot count rows', () => this.#db.prepare<[], { n: number }>(sql).get()?.n ?? 0);
    return {
      runners: count('SELECT COUNT(*) AS n FROM runners'),
      liveRunners: count("SELECT COUNT(*) AS n FROM runners WHERE state <> 'deleted'"),
      openJobs: this.#openJobs.size,
      deliveries: count('SELECT COUNT(*) AS n FROM deliveries'),
      events: count('SELECT COUNT(*) AS n FROM events'),
    };
  }
}

export function openStore(options: StoreOptions): Store {
  return Store.open(options);
}

/** A runner record after a change (the same object when the change changes nothing). */
function applyRunnerChange(before: RunnerRecord, change: RunnerChange, now: number): RunnerRecord {
  const state = change.state ?? before.state;
  const reason = change.reason !== undefined ? change.reason : before.reason;
  const githubId = change.githubId !== undefined ? change.githubId : before.githubId;
  const instanceDeletedAt =
    change.instanceDeletedAt !== undefined ? change.instanceDeletedAt : before.instanceDeletedAt;
  const registrationDeletedAt =
    change.registrationDeletedAt !== undefined ? change.registrationDeletedAt : before.registrationDeletedAt;
  if (
    state === before.state &&
    reason === before.reason &&
    githubId === before.githubId &&
    instanceDeletedAt === before.instanceDeletedAt &&
    registrationDeletedAt === before.registrationDeletedAt
  ) {
    return before;
  }
  return {
    ...before,
    state,
    reason,
    githubId,
    stateChangedAt: state !== before.state ? now : before.stateChangedAt,
    instanceDeletedAt,
    registrationDeletedAt,
  };
}
