/** Job status checks: repair missed webhooks within a bounded API budget. */
import type { JobSnapshot } from '../plan-types.js';
import type { PlanContext } from './context.js';

/** In-progress jobs are checked this many resync intervals apart (a missed `completed` only affects display). */
export const IN_PROGRESS_CHECK_FACTOR = 10;
const DEFAULT_MAX_JOB_CHECKS = 20;

/**
 * The queued jobs that wait for capacity still on its way (runners `requested`: planned, or waiting for GitHub's
 * rate budget; `creating`; `starting`: not online yet): the newest queued jobs, one per such runner. A status check
 * of them changes no decision (their runner comes either way, and a job that ended meanwhile is noticed once its
 * runner is online and idle), so they get none. A queued job beside an idle runner is still checked.
 */
function waitingForCapacity(ctx: PlanContext): ReadonlySet<number> {
  let pending = 0;
  for (const r of ctx.s.runners) {
    if (r.state === 'requested' || r.state === 'creating' || r.state === 'starting') pending++;
  }
  for (const a of ctx.actions) if (a.type === 'create-runner' && !a.resume) pending++;
  if (pending === 0) return EMPTY;
  const queued: JobSnapshot[] = [];
  for (const j of ctx.s.jobs) if (j.status === 'queued' && j.unverified !== true) queued.push(j);
  if (pending >= queued.length) return new Set(queued.map((j) => j.id));
  queued.sort((a, b) => b.queuedAt - a.queuedAt || b.id - a.id);
  const out = new Set<number>();
  for (let i = 0; i < pending; i++) out.add(queued[i]!.id);
  return out;
}

const EMPTY: ReadonlySet<number> = new Set();

export function checkJobs(ctx: PlanContext): void {
  // Scale-set discovery: jobs are known by runner request id, which the REST job endpoint does not know; the message
  // queue (redelivered until acknowledged) and its statistics stand in for the checks.
  if (ctx.set.discovery === 'scale-set') return;
  const interval = ctx.timings.resyncInterval;
  const waiting = waitingForCapacity(ctx);
  const max = ctx.options.maxJobChecks ?? DEFAULT_MAX_JOB_CHECKS;
  let spent = 0;
  let budgetBackAt = Infinity;
  for (const j of ctx.s.jobs) {
    if (j.unverified === true && j.status === 'queued') continue;
    if (j.inFlight) spent++;
    else if (j.checkedAt !== null && ctx.now - j.checkedAt < interval) {
      spent++;
      budgetBackAt = Math.min(budgetBackAt, j.checkedAt + interval);
    }
  }
  // The most overdue jobs, kept sorted in small arrays: after an outage thousands may be due at once.
  const unverified = new TopJobs(max);
  const recheck = new TopJobs(Math.max(0, max - spent));
  for (const j of ctx.s.jobs) {
    if (j.inFlight) continue;
    if (j.unverified === true && j.status === 'queued') {
      unverified.offer(j, -Infinity);
      continue;
    }
    if (waiting.has(j.id)) continue; // its runner is on the way: see waitingForCapacity
    const since = j.checkedAt ?? (j.status === 'queued' ? j.queuedAt : (j.startedAt ?? j.queuedAt));
    const every = j.status === 'queued' ? interval : interval * IN_PROGRESS_CHECK_FACTOR;
    if (ctx.now - since < every) ctx.wakeAt(since + every);
    else recheck.offer(j, since);
  }
  for (const { job } of [...unverified.top, ...recheck.top]) {
    ctx.actions.push({
      type: 'check-job',
      scaleSet: ctx.set.name,
      jobId: job.id,
      owner: job.owner,
      repo: job.repo,
    });
  }
  if (unverified.due > unverified.top.length) ctx.wakeAt(ctx.now + 1);
  // Out of budget: the next pass that may check is when the oldest recent check leaves the interval (a check
  // under way wakes the scale set when it ends).
  if (recheck.due > recheck.top.length) ctx.wakeAt(recheck.limit > 0 ? ctx.now + 1 : budgetBackAt);
}
/** The `limit` most overdue of the jobs offered (oldest `since` first, then lowest id), and how many were offered. */
class TopJobs {
  readonly top: { job: JobSnapshot; since: number }[] = [];
  due = 0;
  readonly limit: number;

  constructor(limit: number) {
    this.limit = limit;
  }

  offer(job: JobSnapshot, since: number): void {
    this.due++;
    if (this.limit <= 0) return;
    const top = this.top;
    const last = top[top.length - 1];
    if (top.length >= this.limit && last !== undefined && !before(since, job.id, last.since, last.job.id))
      return;
    let i = top.length;
    while (i > 0 && before(since, job.id, top[i - 1]!.since, top[i - 1]!.job.id)) i--;
    top.splice(i, 0, { job, since });
    if (top.length > this.limit) top.pop();
  }
}

function before(since: number, id: number, otherSince: number, otherId: number): boolean {
  return since < otherSince || (since === otherSince && id < otherId);
}
