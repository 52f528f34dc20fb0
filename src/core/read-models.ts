/**
 * Read models for the API and the dashboard. Plain JSON-ready objects; nothing secret is ever in them (the store
 * holds no secret, and observations carry only names, states and ids).
 */
import type { FleetConfig, RegistrationMode, Scope } from './fleet-config.js';
import type { JobStatus, RunnerState } from './types.js';
import { RUNNER_STATES } from './types.js';
import type { InstanceState } from './provider-port.js';
import type { FleetStore } from './store-port.js';
import type { EventQuery, EventRow, JobRecord, RunnerRecord } from './records.js';
import type { Observations } from './observations.js';

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
  /** ms epoch of the last runner list / instance list, null before the first. */
  readonly githubListedAt: number | null;
  readonly instancesListedAt: number | null;
  readonly lastReconcileAt: number | null;
  /** Runner creates waiting for GitHub's rate budget (the installation's JIT config pacing, pacing.ts). */
  readonly pacing: PacingView;
}

export interface PacingView {
  /** Creates waiting for the budget now. */
  readonly waiting: number;
  /** How long the longest-waiting of them has waited, ms; null when none waits. */
  readonly oldestWaitMs: number | null;
  /** ms epoch until which GitHub asked the installation to wait after a refusal, or null. */
  readonly pausedUntil: number | null;
  /** The budget: runner-creating calls a minute (github.createsPerMinute). */
  readonly perMinute: number;
}

/** What the read model asks of the pacer. */
export interface PacingSource {
  scaleSet(name: string): { waiting: number; oldestSince: number | null; pausedUntil: number | null };
}

/** A runner record as the API shows it: the record's own fields, its ages, and what GitHub and its provider say. */
export interface RunnerView extends Pick<
  RunnerRecord,
  'name' | 'scaleSet' | 'state' | 'reason' | 'githubId' | 'createdAt' | 'stateChangedAt'
> {
  readonly ageMs: number;
  readonly stateAgeMs: number;
  readonly instance: {
    readonly state: InstanceState;
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

export interface ReadModelSource {
  readonly config: FleetConfig;
  readonly store: FleetStore;
  readonly observations: Observations;
  readonly now: number;
  readonly lastReconcileAt: ReadonlyMap<string, number>;
  readonly pacing?: PacingSource;
}

export function emptyCounts(): Record<RunnerState, number> {
  const counts = {} as Record<RunnerState, number>;
  for (const s of RUNNER_STATES) counts[s] = 0;
  return counts;
}

export function scaleSetViews(src: ReadModelSource): ScaleSetView[] {
  return src.config.scaleSets.map((set) => {
    const counts = emptyCounts();
    src.store.forEachRunner(set.name, (r) => {
      if (r.state !== 'deleted') counts[r.state]++;
    });
    counts.deleted = 0;
    let queued = 0;
    let inProgress = 0;
    let oldest: number | null = null;
    src.store.forEachOpenJob(set.name, (j) => {
      if (j.status === 'queued') {
        queued++;
        if (oldest === null || j.queuedAt < oldest) oldest = j.queuedAt;
      } else inProgress++;
    });
    const b = src.store.backoff(set.name);
    const p = src.pacing?.scaleSet(set.name);
    return {
      name: set.name,
      scope: set.scope,
      runnerGroup: set.runnerGroup,
      labels: set.labels,
      minIdle: set.minIdle,
      max: set.max,
      ephemeral: set.ephemeral,
      registration: set.registration,
      priority: set.priority,
      provider: set.provider.kind,
      runners: counts,
      activeRunners: counts.requested + counts.creating + counts.starting + counts.idle + counts.busy,
      queuedJobs: queued,
      inProgressJobs: inProgress,
      oldestQueuedMs: oldest === null ? null : Math.max(0, src.now - oldest),
      backoff: {
        failures: b.failures,
        until: b.until > src.now ? b.until : null,
        lastFailure: b.lastFailure,
        lastFailureAt: b.lastFailureAt,
      },
      githubListedAt: src.observations.github(set.name).at,
      instancesListedAt: src.observations.instances(set.name).at,
      lastReconcileAt: src.lastReconcileAt.get(set.name) ?? null,
      pacing: {
        waiting: p?.waiting ?? 0,
        oldestWaitMs: p?.oldestSince == null ? null : Math.max(0, src.now - p.oldestSince),
        pausedUntil: p?.pausedUntil != null && p.pausedUntil > src.now ? p.pausedUntil : null,
        perMinute: src.config.github.createsPerMinute ?? 180,
      },
    };
  });
}

export interface RunnerQuery {
  readonly scaleSet?: string;
  readonly state?: RunnerState;
  /** Include runners deleted in the last hour (read from the store's file). Default false. */
  readonly includeDeleted?: boolean;
}

export function runnerView(src: ReadModelSource, r: RunnerRecord): RunnerView {
  const inst = src.observations.instances(r.scaleSet).items.get(r.name);
  const gh = src.observations.github(r.scaleSet).runners.get(r.name);
  const job = src.store.runnerJob(r.name);
  return {
    name: r.name,
    scaleSet: r.scaleSet,
    state: r.state,
    reason: r.reason,
    githubId: r.githubId ?? gh?.id ?? null,
    createdAt: r.createdAt,
    ageMs: Math.max(0, src.now - r.createdAt),
    stateChangedAt: r.stateChangedAt,
    stateAgeMs: Math.max(0, src.now - r.stateChangedAt),
    instance:
      inst === undefined || r.instanceDeletedAt !== null
        ? null
        : {
            state: inst.state,
            ...(inst.providerId !== undefined ? { providerId: inst.providerId } : {}),
            ...(inst.message !== undefined ? { message: inst.message } : {}),
          },
    github: gh === undefined ? null : { status: gh.status, busy: gh.busy },
    job: job === null ? null : { id: job.id, status: job.status },
  };
}

export function runnerViews(src: ReadModelSource, q: RunnerQuery = {}): RunnerView[] {
  // Deleted runners leave memory soon after their deletion; the file lists those of the last hour.
  const rows =
    q.includeDeleted === true
      ? [
          ...src.store.runners(q.scaleSet).filter((r) => r.state !== 'deleted'),
          ...src.store.deletedRunners(q.scaleSet),
        ]
      : src.store.runners(q.scaleSet);
  return rows
    .filter(
      (r) => (q.includeDeleted || r.state !== 'deleted') && (q.state === undefined || r.state === q.state),
    )
    .sort((a, b) => a.createdAt - b.createdAt || (a.name < b.name ? -1 : 1))
    .map((r) => runnerView(src, r));
}

export function jobView(now: number, j: JobRecord): JobView {
  const started = j.startedAt ?? null;
  return {
    id: j.id,
    runId: j.runId,
    owner: j.owner,
    repo: j.repo,
    labels: j.labels,
    status: j.status,
    conclusion: j.conclusion ?? null,
    scaleSet: j.scaleSet,
    unroutable: j.scaleSet === null,
    runnerName: j.runnerName ?? null,
    queuedAt: j.queuedAt,
    startedAt: started,
    completedAt: j.completedAt ?? null,
    waitMs: Math.max(0, (started ?? (j.status === 'queued' ? now : (j.completedAt ?? now))) - j.queuedAt),
  };
}

export interface JobQuery {
  readonly status?: JobStatus;
  readonly scaleSet?: string | null;
  /** Completed jobs to include (most recent first). Default 0 unless status is 'completed' (then 100). */
  readonly completedLimit?: number;
  /** Only completed jobs recorded after this time (ms epoch): what changed since a previous look. */
  readonly completedSince?: number;
}

/** Open jobs (queued first, longest wait first), plus recent completed ones when asked. */
export function jobViews(src: ReadModelSource, q: JobQuery = {}): JobView[] {
  const open = q.status === 'completed' ? [] : src.store.openJobs(q.scaleSet);
  const views = open
    .filter((j) => q.status === undefined || j.status === q.status)
    .map((j) => jobView(src.now, j))
    .sort((a, b) => (a.status === b.status ? a.queuedAt - b.queuedAt : a.status === 'queued' ? -1 : 1));
  const completedLimit = q.completedLimit ?? (q.status === 'completed' ? 100 : 0);
  if (completedLimit > 0) {
    for (const j of src.store.recentCompletedJobs(completedLimit, q.completedSince)) {
      if (q.scaleSet === undefined || j.scaleSet === q.scaleSet) views.push(jobView(src.now, j));
    }
  }
  return views;
}

export function eventViews(src: ReadModelSource, q: EventQuery = {}): EventRow[] {
  return src.store.recentEvents(q);
}

/** What the read models need of the reconciler: its last observations and planning times. */
export interface ReconcilerView {
  readonly observations: Observations;
  readonly lastReconcileAt: ReadonlyMap<string, number>;
}

export interface FleetReadModelOptions {
  readonly config: FleetConfig;
  readonly store: FleetStore;
  readonly reconciler: ReconcilerView;
  readonly now?: () => number;
  /** The pacer of runner creation, when there is one. */
  readonly pacing?: PacingSource;
}

/** The API's and dashboard's view of the fleet: scale sets, runners, jobs and events, computed on each call. */
export class FleetReadModel {
  readonly #o: FleetReadModelOptions;
  readonly #now: () => number;

  constructor(options: FleetReadModelOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
  }

  scaleSets(): ScaleSetView[] {
    return scaleSetViews(this.#source());
  }

  runners(query?: RunnerQuery): RunnerView[] {
    return runnerViews(this.#source(), query);
  }

  /** Open jobs (queued first, longest wait first); completed ones with `completedLimit`. */
  jobs(query?: JobQuery): JobView[] {
    return jobViews(this.#source(), query);
  }

  /** Open jobs no scale set serves. */
  unroutableJobs(): JobView[] {
    return jobViews(this.#source(), { scaleSet: null });
  }

  events(query?: EventQuery): EventRow[] {
    return eventViews(this.#source(), query);
  }

  #source(): ReadModelSource {
    return {
      config: this.#o.config,
      store: this.#o.store,
      observations: this.#o.reconciler.observations,
      now: this.#now(),
      lastReconcileAt: this.#o.reconciler.lastReconcileAt,
      ...(this.#o.pacing !== undefined ? { pacing: this.#o.pacing } : {}),
    };
  }
}
