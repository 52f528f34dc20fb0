/**
 * Scaling one scale set: desired = min(max, busy + queued + minIdle) (with scale-set discovery, queued jobs from
 * before a restart count as far as the statistics' assigned jobs vouch for them, and the statistics' waiting jobs are a
 * floor for the queued ones), never more than `max` records that are not
 * deleted; parked intents are resumed or cancelled, idle runners retired after their idle timeout.
 */
import type { RunnerState } from '../types.js';
import type { RunnerSnapshot } from '../plan-types.js';
import { runnerName } from '../names.js';
import { NameIndex } from '../name-index.js';
import type { PlanContext } from './context.js';

const DEFAULT_MAX_CREATES_PER_PASS = 1000;

export function scale(
  ctx: PlanContext,
  records: readonly RunnerSnapshot[],
  states: readonly RunnerState[],
  ranUnseen: number,
): void {
  const set = ctx.set;
  let nonDeleted = 0;
  let active = 0;
  let busy = 0;
  let busyUnknown = 0; // busy, but no in-progress job known for it (GitHub said so before the webhook came)
  const parked: RunnerSnapshot[] = []; // requested, not in flight: resumable or cancellable
  const idle: RunnerSnapshot[] = [];
  for (let i = 0; i < records.length; i++) {
    const record = records[i]!;
    const state = states[i]!;
    nonDeleted++;
    // An idle runner in flight is being retired (nothing else works on idle runners): it is leaving.
    if (state === 'idle' && record.inFlight) continue;
    if (
      state === 'requested' ||
      state === 'creating' ||
      state === 'starting' ||
      state === 'idle' ||
      state === 'busy'
    ) {
      active++;
    }
    if (state === 'busy') {
      busy++;
      if (record.job?.status !== 'in_progress') busyUnknown++;
    }
    if (state === 'requested' && !record.inFlight) parked.push(record);
    if (state === 'idle' && !record.inFlight) idle.push(record);
  }
  let queued = 0;
  let unverifiedQueued = 0;
  for (const j of ctx.s.jobs) {
    if (j.status !== 'queued') continue;
    if (j.unverified !== true) queued++;
    else unverifiedQueued++;
  }
  // A busy runner whose job we have not heard of is running one of the jobs we still think are queued (or a job
  // of another scale set, briefly): counting both would create a runner for a job that already has one. The same
  // holds for an ephemeral runner that already ended after such a job (ranUnseenJob, lifecycle.ts).
  // Scale-set discovery: GitHub's count of assigned jobs vouches for queued jobs recorded before this controller
  // started (no status check can), up to what the records do not already count. Not a plain floor: statistics are
  // taken when a message is sent and lag the runners seen ending since, which would buy runners for finished jobs.
  // Vouched jobs are queued jobs like the others: a busy runner not yet known to run one may be running it.
  const vouched =
    ctx.s.assignedJobs !== undefined && unverifiedQueued > 0
      ? Math.min(unverifiedQueued, Math.max(0, ctx.s.assignedJobs - busy - queued))
      : 0;
  // Scale-set discovery: the jobs GitHub says are assigned to the runner scale set and not yet started are a floor
  // for the waiting ones. They count jobs this store never recorded: those a previous leader (with a store of its
  // own) or a lost store had acknowledged and not yet served, which no message will name again. Unlike assigned
  // jobs, waiting ones do not lag the runners seen ending (a job that ended had started), and the statistics come in
  // the message whose items the store holds, so a job they count as waiting is at most one that started since.
  const known = queued + vouched;
  const waiting = ctx.s.waitingJobs !== undefined ? Math.max(known, ctx.s.waitingJobs) : known;
  const demand = busy + Math.max(0, waiting - busyUnknown - ranUnseen);
  const desired = Math.min(set.max, demand + set.minIdle);
  const backingOff = ctx.now < ctx.s.backoff.until;

  if (active <= desired) {
    for (const r of parked) {
      if (backingOff) break;
      ctx.actions.push({
        type: 'create-runner',
        scaleSet: set.name,
        name: r.name,
        resume: true,
        order: r.stateChangedAt,
      });
    }
    const missing = desired - active;
    const room = set.max - nonDeleted;
    const count = Math.min(missing, room);
    if (count > 0) {
      if (backingOff) ctx.wakeAt(ctx.s.backoff.until);
      else {
        const cap = Math.max(1, ctx.options.maxCreatesPerPass ?? DEFAULT_MAX_CREATES_PER_PASS);
        create(ctx, Math.min(count, cap));
        if (count > cap) ctx.wakeAt(ctx.now + 1);
      }
    } else if (parked.length > 0 && backingOff) {
      ctx.wakeAt(ctx.s.backoff.until);
    }
    return;
  }

  let excess = active - desired;
  // Cancel intents first: nothing exists for them yet.
  for (const r of parked) {
    if (excess > 0) {
      ctx.actions.push({
        type: 'mark-runner',
        scaleSet: set.name,
        name: r.name,
        state: 'deleted',
        reason: 'no longer needed',
        failure: false,
        instanceGone: true,
        registrationGone: true,
      });
      excess--;
    } else if (!backingOff) {
      ctx.actions.push({
        type: 'create-runner',
        scaleSet: set.name,
        name: r.name,
        resume: true,
        order: r.stateChangedAt,
      });
    } else {
      ctx.wakeAt(ctx.s.backoff.until);
    }
  }
  if (excess <= 0) return;
  // Then retire the runners idle the longest, once their idle timeout has passed.
  idle.sort((a, b) => a.stateChangedAt - b.stateChangedAt || (a.name < b.name ? -1 : 1));
  for (const r of idle.slice(0, excess)) {
    const expires = r.stateChangedAt + set.idleTimeout;
    if (ctx.now < expires) {
      ctx.wakeAt(expires);
      continue;
    }
    const id = ctx.s.github.runners.get(r.name)?.id ?? r.githubId;
    if (id === null) continue; // not registered as far as we know: a list will tell
    ctx.actions.push({
      type: 'deregister-runner',
      scaleSet: set.name,
      name: r.name,
      runnerId: id,
      reason: 'idle timeout',
      checkBusy: true,
      retire: true,
    });
  }
}

function create(ctx: PlanContext, count: number): void {
  // New runners serve the newest queued jobs (the older ones have capacity already): their queue times order the
  // creates when they wait for GitHub's budget (pacing.ts), oldest job first.
  const queuedAt: number[] = [];
  for (const j of ctx.s.jobs) if (j.status === 'queued' && j.unverified !== true) queuedAt.push(j.queuedAt);
  queuedAt.sort((a, b) => a - b);
  const first = queuedAt.length - count;
  const onRecord = ctx.options.nameTaken;
  const taken = (name: string): boolean =>
    ctx.records.has(name) ||
    ctx.s.github.runners.has(name) ||
    ctx.s.instances.items.has(name) ||
    (onRecord !== undefined && onRecord(name));
  const fresh = new NameIndex<true>();
  for (let i = 0; i < count; i++) {
    let name = runnerName(ctx.set.name, ctx.options.random);
    while (taken(name) || fresh.has(name)) name = runnerName(ctx.set.name, ctx.options.random);
    fresh.set(name, true);
    const order = queuedAt[Math.max(0, Math.min(queuedAt.length - 1, first + i))] ?? ctx.now;
    ctx.actions.push({ type: 'create-runner', scaleSet: ctx.set.name, name, resume: false, order });
  }
}
