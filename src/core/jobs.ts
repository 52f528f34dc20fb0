/**
 * The job rules, as pure functions: what a `workflow_job` event or a status check does to the controller's record of a
 * job. The store applies them inside its transactions; the planner's tests and these functions' own tests drive them
 * directly. Rules:
 * - status only moves forward (queued -> in_progress -> completed), whatever order events arrive in; fields once known
 *   (conclusion, runner, start and completion times) are kept;
 * - `waiting` (an environment waiting for approval) is not yet runnable and changes nothing: its `queued` follows;
 * - GitHub's `queued` payload carries started_at = created_at: a job starts only when a runner takes it;
 * - a job GitHub no longer knows (status check 404) is completed with conclusion `not_found`.
 */
import type { JobInfo, WorkflowJobEvent } from './ports.js';
import type { JobRecord } from './records.js';
import type { JobStatus } from './types.js';

const STATUS_RANK: Record<JobStatus, number> = { queued: 0, in_progress: 1, completed: 2 };

/** What an event or a status check says about a job, to be merged into the record. */
export interface JobUpdate {
  readonly status: JobStatus;
  readonly conclusion: string | null;
  readonly runnerName: string | null;
  readonly startedAt: number | null;
  readonly completedAt: number | null;
}

/** Which scale set serves a job (null: none, the job is unroutable). */
export type JobRoute = (job: {
  readonly labels: readonly string[];
  readonly owner: string;
  readonly repo: string;
}) => string | null;

/** Merges an update into the job, never moving its status backwards nor forgetting a known field. */
export function mergeJob(existing: JobRecord, update: JobUpdate): JobRecord {
  const forward = STATUS_RANK[update.status] > STATUS_RANK[existing.status];
  return {
    ...existing,
    status: forward ? update.status : existing.status,
    conclusion: existing.conclusion ?? update.conclusion,
    runnerName: existing.runnerName ?? update.runnerName,
    startedAt: existing.startedAt ?? update.startedAt,
    completedAt: existing.completedAt ?? update.completedAt,
  };
}

/** True when nothing the controller acts on differs. */
export function sameJob(a: JobRecord, b: JobRecord): boolean {
  return (
    a.status === b.status &&
    a.conclusion === b.conclusion &&
    a.runnerName === b.runnerName &&
    a.startedAt === b.startedAt &&
    a.completedAt === b.completedAt &&
    a.scaleSet === b.scaleSet
  );
}

/** The update an event carries; null for `waiting`, which changes nothing. */
export function jobUpdateOf(event: WorkflowJobEvent, now: number): JobUpdate | null {
  if (event.action === 'waiting') return null;
  const { job } = event;
  const status: JobStatus = event.action;
  return {
    status,
    conclusion: job.conclusion,
    runnerName: job.runnerName,
    startedAt: status === 'queued' ? null : (job.startedAt ?? (status === 'in_progress' ? now : null)),
    completedAt: status === 'completed' ? (job.completedAt ?? now) : null,
  };
}

/**
 * The job after an event: a new record (routed once, when first seen) or the existing one merged. null when the
 * event changes nothing (`waiting`, or a repeat of what is known).
 */
export function applyJobEvent(
  existing: JobRecord | null,
  event: WorkflowJobEvent,
  route: JobRoute,
  now: number,
): JobRecord | null {
  const update = jobUpdateOf(event, now);
  if (update === null) return null;
  if (existing === null) {
    const { job } = event;
    return {
      id: job.id,
      runId: job.runId,
      owner: job.owner,
      repo: job.repo,
      labels: [...job.labels],
      status: update.status,
      conclusion: update.conclusion,
      scaleSet: route(job),
      runnerName: update.runnerName,
      queuedAt: job.createdAt ?? now,
      startedAt: update.startedAt,
      completedAt: update.completedAt,
      checkedAt: null,
    };
  }
  const next = mergeJob(existing, update);
  return sameJob(existing, next) ? null : next;
}

/**
 * The job after a status check: GitHub's answer merged (null: GitHub does not know the job any more, so it is
 * completed as `not_found`), stamped with the check time.
 */
export function applyJobStatus(existing: JobRecord, info: JobInfo | null, now: number): JobRecord {
  const next =
    info === null
      ? {
          ...existing,
          status: 'completed' as const,
          conclusion: existing.conclusion ?? 'not_found',
          completedAt: existing.completedAt ?? now,
        }
      : mergeJob(existing, {
          status: info.status,
          conclusion: info.conclusion,
          runnerName: info.runnerName,
          startedAt: info.status === 'queued' ? null : now,
          completedAt: info.status === 'completed' ? now : null,
        });
  return { ...next, checkedAt: now };
}

/** A status check that failed still counts as a check: the job waits its turn again instead of staying first. */
export function markJobChecked(existing: JobRecord, now: number): JobRecord {
  return { ...existing, checkedAt: now };
}
