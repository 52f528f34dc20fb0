/**
 * What the dashboard page shows, built from the server's ReadModel. Every field is copied by name: a record that
 * grows a secret by mistake cannot leak it through the page. Free text (failure reasons, instance messages) is
 * scrubbed as a last resort, the same way log lines are.
 */
import type { RunnerState } from '../core/types.js';
import { RUNNER_STATES } from '../core/types.js';
import type { EventView, JobView, ReadModel, RunnerView, ScaleSetView } from '../server/read-model.js';
import type { Scrubber } from '../telemetry/redact.js';

/** GitHub API budget as the controller's client sees it. */
export interface ApiBudget {
  /** HTTP attempts so far (retries and token requests included). */
  readonly calls: number;
  /** Last `x-ratelimit-remaining` GitHub sent; null before the first response carrying it. */
  readonly rateLimitRemaining: number | null;
}

export interface ScaleSetPanel {
  readonly name: string;
  readonly scope: string;
  readonly labels: readonly string[];
  readonly provider: string;
  readonly ephemeral: boolean;
  readonly registration: string;
  readonly minIdle: number;
  readonly max: number;
  readonly runners: Readonly<Record<RunnerState, number>>;
  readonly activeRunners: number;
  readonly queuedJobs: number;
  readonly inProgressJobs: number;
  readonly oldestQueuedMs: number | null;
  readonly failures: number;
  readonly lastFailure: string | null;
  readonly backoffUntil: number | null;
  /** Creates waiting for GitHub's rate budget, how long the oldest has waited, and a refusal's pause. */
  readonly pacing: {
    readonly waiting: number;
    readonly oldestWaitMs: number | null;
    readonly pausedUntil: number | null;
    readonly perMinute: number;
  };
}

export interface JobPanel {
  readonly id: number;
  readonly repository: string;
  readonly labels: readonly string[];
  readonly status: string;
  readonly scaleSet: string | null;
  readonly runnerName: string | null;
  readonly queuedAt: number;
  readonly waitMs: number;
}

export interface RunnerPanel {
  readonly name: string;
  readonly scaleSet: string;
  readonly state: RunnerState;
  readonly reason: string | null;
  readonly ageMs: number;
  readonly stateAgeMs: number;
  readonly instance: { readonly state: string; readonly providerId: string | null } | null;
  readonly github: { readonly status: string; readonly busy: boolean } | null;
  readonly jobId: number | null;
}

export interface EventPanel {
  readonly id: number;
  readonly at: number;
  readonly kind: string;
  readonly event: string;
  readonly scaleSet: string | null;
  readonly runner: string | null;
  readonly jobId: number | null;
  readonly reason: string | null;
}

export interface Totals {
  readonly queued: number;
  readonly running: number;
  readonly unroutable: number;
  readonly activeRunners: number;
  readonly busyRunners: number;
  readonly idleRunners: number;
}

export interface DashboardSnapshot {
  /** ms epoch */
  readonly at: number;
  readonly title: string;
  readonly totals: Totals;
  readonly scaleSets: readonly ScaleSetPanel[];
  /** Routable queued jobs, longest wait first (at most `limits.jobs`). */
  readonly queued: readonly JobPanel[];
  readonly queuedTotal: number;
  readonly unroutable: readonly JobPanel[];
  /** Runners not yet deleted, oldest first (at most `limits.runners`). */
  readonly runners: readonly RunnerPanel[];
  readonly runnersTotal: number;
  /** Most recent first. Empty when the read model keeps no events. */
  readonly events: readonly EventPanel[];
  readonly budget: ApiBudget | null;
}

export interface SnapshotLimits {
  readonly jobs: number;
  readonly runners: number;
  readonly events: number;
}

export const DEFAULT_LIMITS: SnapshotLimits = { jobs: 200, runners: 300, events: 60 };

function scopeText(scope: ScaleSetView['scope']): string {
  if ('org' in scope) return `org ${scope.org}`;
  if ('repo' in scope) return `repo ${scope.repo}`;
  return `enterprise ${scope.enterprise}`;
}

function counts(runners: ScaleSetView['runners']): Record<RunnerState, number> {
  const out = {} as Record<RunnerState, number>;
  for (const state of RUNNER_STATES) out[state] = Number(runners[state] ?? 0);
  return out;
}

const text = (scrub: Scrubber, value: string | null | undefined): string | null =>
  value === null || value === undefined ? null : scrub(value);

function scaleSetPanel(s: ScaleSetView, scrub: Scrubber): ScaleSetPanel {
  return {
    name: s.name,
    scope: scopeText(s.scope),
    labels: [...s.labels],
    provider: s.provider,
    ephemeral: s.ephemeral,
    registration: s.registration,
    minIdle: s.minIdle,
    max: s.max,
    runners: counts(s.runners),
    activeRunners: s.activeRunners,
    queuedJobs: s.queuedJobs,
    inProgressJobs: s.inProgressJobs,
    oldestQueuedMs: s.oldestQueuedMs,
    failures: s.backoff.failures,
    lastFailure: text(scrub, s.backoff.lastFailure),
    backoffUntil: s.backoff.until,
    pacing: { ...s.pacing },
  };
}

/**
 * How long a job has waited. For a queued job it is measured here from queuedAt: a `queued` webhook carries
 * started_at (GitHub sets it to the creation time), so a startedAt on a queued job says nothing about a start.
 */
export function waitOf(j: JobView, now: number): number {
  return j.status === 'queued' ? Math.max(0, now - j.queuedAt) : j.waitMs;
}

export function jobPanel(j: JobView, now: number): JobPanel {
  return {
    id: j.id,
    repository: `${j.owner}/${j.repo}`,
    labels: [...j.labels],
    status: j.status,
    scaleSet: j.scaleSet,
    runnerName: j.runnerName,
    queuedAt: j.queuedAt,
    waitMs: waitOf(j, now),
  };
}

function runnerPanel(r: RunnerView, scrub: Scrubber): RunnerPanel {
  return {
    name: r.name,
    scaleSet: r.scaleSet,
    state: r.state,
    reason: text(scrub, r.reason),
    ageMs: r.ageMs,
    stateAgeMs: r.stateAgeMs,
    instance: r.instance ? { state: r.instance.state, providerId: r.instance.providerId ?? null } : null,
    github: r.github ? { status: r.github.status, busy: r.github.busy } : null,
    jobId: r.job?.id ?? null,
  };
}

function eventPanel(e: EventView, scrub: Scrubber): EventPanel {
  return {
    id: e.id,
    at: e.at,
    kind: e.kind,
    event: e.event,
    scaleSet: e.scaleSet,
    runner: e.runner,
    jobId: e.jobId,
    reason: text(scrub, e.reason),
  };
}

export interface SnapshotSources {
  readonly readModel: ReadModel;
  readonly title: string;
  readonly now: () => number;
  readonly scrub: Scrubber;
  readonly budget?: () => ApiBudget | null;
  readonly limits?: SnapshotLimits;
}

export async function buildSnapshot(src: SnapshotSources): Promise<DashboardSnapshot> {
  const limits = src.limits ?? DEFAULT_LIMITS;
  const [sets, jobs, runners, events] = await Promise.all([
    src.readModel.scaleSets(),
    src.readModel.jobs({}),
    src.readModel.runners({}),
    src.readModel.events ? src.readModel.events({ limit: limits.events }) : [],
  ]);
  const at = src.now();
  const queued = jobs
    .filter((j) => j.status === 'queued' && !j.unroutable)
    .sort((a, b) => a.queuedAt - b.queuedAt || a.id - b.id);
  const unroutable = jobs.filter((j) => j.unroutable && j.status !== 'completed');
  const panels = sets.map((s) => scaleSetPanel(s, src.scrub));
  let budget: ApiBudget | null = null;
  try {
    const b = src.budget?.();
    if (b) budget = { calls: b.calls, rateLimitRemaining: b.rateLimitRemaining };
  } catch {
    // The budget is informative; a failing source must not take the page down.
  }
  return {
    at,
    title: src.title,
    totals: {
      queued: queued.length,
      running: jobs.filter((j) => j.status === 'in_progress').length,
      unroutable: unroutable.length,
      activeRunners: panels.reduce((n, s) => n + s.activeRunners, 0),
      busyRunners: panels.reduce((n, s) => n + s.runners.busy, 0),
      idleRunners: panels.reduce((n, s) => n + s.runners.idle, 0),
    },
    scaleSets: panels,
    queued: queued.slice(0, limits.jobs).map((j) => jobPanel(j, at)),
    queuedTotal: queued.length,
    unroutable: unroutable.slice(0, limits.jobs).map((j) => jobPanel(j, at)),
    runners: runners.slice(0, limits.runners).map((r) => runnerPanel(r, src.scrub)),
    runnersTotal: runners.length,
    events: events.slice(0, limits.events).map((e) => eventPanel(e, src.scrub)),
    budget,
  };
}
