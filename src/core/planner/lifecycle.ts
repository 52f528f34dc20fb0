/**
 * The lifecycle rules of one runner record: follow its job, GitHub's runner list and its instance from `creating` to
 * `finished` or `failed`, then remove the registration and the instance, then record `deleted`.
 */
import type { RunnerState } from '../types.js';
import type { RunnerSnapshot } from '../plan-types.js';
import type { PlanContext, Transition } from './context.js';

/**
 * A busy runner whose instance the cloud took (Instance.interrupted): its job did not end on its own. The reason
 * names the job when it is known (`instance interrupted while running job 42`). With `rerunInterruptedJobs` the record
 * waits, once its registration and instance are gone, until the executor has asked GitHub to re-run that job; then
 * its reason is rerunDoneReason or rerunRefusedReason, and it goes.
 */
export function interruptedReason(jobId: number | null): string {
  return jobId === null ? `${INTERRUPTED} a job` : `${INTERRUPTED} job ${jobId}`;
}
const INTERRUPTED = 'instance interrupted while running';
const INTERRUPTED_REASON = /^instance interrupted while running (?:a job|job (\d+))$/;
export const rerunDoneReason = (jobId: number): string =>
  `job ${jobId} re-run after the instance running it was interrupted`;
export const rerunRefusedReason = (jobId: number, why: string): string =>
  `job ${jobId} not re-run after the instance running it was interrupted: ${why}`;
/** How long a re-run is tried (GitHub refuses it while the job's workflow run is still in progress). */
export const RERUN_WINDOW_MS = 24 * 60 * 60_000;

/**
 * With re-runs on, a job GitHub failed may have been cut short by the cloud taking its instance, which only an
 * instance list (or watch event) newer than the news of the failure can tell: until one comes, wait.
 */
function awaitingInstanceNews(
  ctx: PlanContext,
  r: RunnerSnapshot,
  completed: { readonly conclusion?: string | null; readonly at: number } | null,
): boolean {
  if (ctx.set.rerunInterruptedJobs !== true || completed?.conclusion !== 'failure') return false;
  // Taken in the same millisecond, an observation may predate the news: only a later one counts.
  const newest = Math.max(ctx.s.instances.at ?? -Infinity, ctx.instanceOf(r)?.observedAt ?? -Infinity);
  return newest <= completed.at;
}

/** The job a record interrupted while busy still has to get re-run: null when none is due (or none is known). */
function jobToRerun(ctx: PlanContext, r: RunnerSnapshot): number | null {
  const match = INTERRUPTED_REASON.exec(r.reason ?? '');
  if (match === null) return null;
  if (match[1] !== undefined) return Number(match[1]);
  // Not known when it was interrupted: an ephemeral runner has only ever had the one job GitHub reports on it.
  return ctx.set.ephemeral && r.job !== null ? r.job.id : null;
}
const RUNNER_EXITED = 'runner exited';
const SUCCEEDED_WHILE_BUSY = 'instance succeeded while running a job';
const REMOVED_AFTER_JOB = 'registration removed by GitHub after its job';
const REMOVED_UNSEEN_JOB = 'registration removed by GitHub after a job not yet reported';
/** Reasons an ephemeral runner ends with after running a job (see ranUnseenJob). */
const RAN_A_JOB: ReadonlySet<string> = new Set([
  RUNNER_EXITED,
  SUCCEEDED_WHILE_BUSY,
  REMOVED_AFTER_JOB,
  REMOVED_UNSEEN_JOB,
]);

const TERMINAL: ReadonlySet<RunnerState> = new Set(['finished', 'failed', 'bootstrap-timeout']);

export function isTerminal(state: RunnerState): boolean {
  return TERMINAL.has(state);
}

export function transition(ctx: PlanContext, r: RunnerSnapshot): Transition | null {
  switch (r.state) {
    case 'requested':
      return null; // resumed or cancelled by #scale, which knows whether it is still needed
    case 'creating':
      return interruptedCreate(ctx, r);
    case 'starting':
    case 'idle':
    case 'busy':
      return live(ctx, r);
    default:
      return null;
  }
}

function interruptedCreate(ctx: PlanContext, r: RunnerSnapshot): Transition | null {
  if (ctx.instanceOf(r) !== undefined) {
    return { state: 'starting', reason: 'instance found after an interrupted create' };
  }
  if (!ctx.instFresh(r) || !ctx.ghFresh(r)) return null; // wait for lists taken after the interruption
  const listed = ctx.s.github.runners.get(r.name);
  if (listed !== undefined) {
    return {
      state: 'finished',
      reason: 'create interrupted; removing its registration',
      instanceGone: true,
      githubId: listed.id,
    };
  }
  return {
    state: 'deleted',
    reason: 'create interrupted before registration',
    instanceGone: true,
    registrationGone: true,
  };
}

function live(ctx: PlanContext, r: RunnerSnapshot): Transition | null {
  const ephemeral = ctx.set.ephemeral;
  const jit = ctx.set.registration === 'jit';
  const instFresh = ctx.instFresh(r);
  const instance = ctx.instanceOf(r);
  const ghFresh = ctx.ghFresh(r);
  const gh = ctx.s.github.runners.get(r.name);
  // A persistent runner runs many jobs: only news recorded after its last state change counts. An ephemeral
  // runner (or one still starting) has only ever had this one job.
  const job =
    r.job !== null && (ephemeral || r.state === 'starting' || r.job.at >= r.stateChangedAt) ? r.job : null;
  const instanceSeen =
    instance !== undefined && instance.observedAt >= r.stateChangedAt ? instance : undefined;
  // A runner list begun after we recorded the job's completion that still shows the runner busy means it runs
  // another job (persistent) or GitHub disagrees: either way, not done.
  const listedAt = ctx.s.github.at;
  const completed =
    job?.status === 'completed' && !(gh?.busy === true && listedAt !== null && listedAt >= job.at)
      ? job
      : null;
  const exited = instanceSeen?.state === 'succeeded' || instanceSeen?.state === 'failed';

  if (r.state === 'busy') {
    // The cloud took the instance from under the job. Unless the job had ended on its own first (GitHub reported it
    // completed, not failed), it did not end: GitHub fails it for the lost runner, and it may be re-run.
    const lost = completed === null || completed.conclusion === 'failure';
    if (exited && instanceSeen.interrupted === true && instanceSeen.state === 'failed' && lost) {
      // The job it ran: the latest reported on it, if still running or reported since it became busy.
      const current = r.job !== null && (r.job.status === 'in_progress' || job !== null) ? r.job : null;
      // Its registration is removed as for any failed instance (GitHub refuses while it counts the job as running).
      return { state: 'finished', reason: interruptedReason(current?.id ?? null) };
    }
    if (awaitingInstanceNews(ctx, r, completed)) return null;
    if (completed !== null) {
      return ephemeral
        ? { state: 'finished', reason: `job ${completed.id} completed`, registrationGone: true }
        : { state: 'idle', reason: `job ${completed.id} completed` };
    }
    if (exited) {
      // An ephemeral runner that ends its job normally is removed by GitHub itself.
      const gone = ephemeral && instanceSeen.state === 'succeeded';
      return {
        state: 'finished',
        reason:
          instanceSeen.state === 'succeeded' ? SUCCEEDED_WHILE_BUSY : 'instance failed while running a job',
        ...(gone ? { registrationGone: true } : {}),
      };
    }
    if (instFresh && instance === undefined) {
      return { state: 'finished', reason: 'instance disappeared while running a job', instanceGone: true };
    }
    if (ghFresh && ephemeral && gh === undefined) {
      return {
        state: 'finished',
        reason: REMOVED_AFTER_JOB,
        registrationGone: true,
      };
    }
    if (ghFresh && !ephemeral && gh !== undefined && gh.status === 'online' && !gh.busy) {
      return { state: 'idle', reason: 'GitHub reports the runner idle' };
    }
    return null;
  }

  // starting or idle
  if (
    exited &&
    instanceSeen.interrupted === true &&
    instanceSeen.state === 'failed' &&
    job !== null &&
    (job.status === 'in_progress' || (job.status === 'completed' && job.conclusion === 'failure'))
  ) {
    // Taken by the cloud while running a job this record had not seen start (webhook lag): as for a busy runner.
    return { state: 'finished', reason: interruptedReason(job.id) };
  }
  if (job?.status === 'in_progress') return { state: 'busy', reason: `running job ${job.id}` };
  if (awaitingInstanceNews(ctx, r, completed)) return null;
  if (completed !== null && ephemeral) {
    return { state: 'finished', reason: `job ${completed.id} completed`, registrationGone: true };
  }
  const tookJob = r.job !== null;
  if (exited) {
    if (instanceSeen.state === 'succeeded') {
      // An ephemeral runner exits 0 after its job, and GitHub removes its registration; a leftover one is an
      // orphan and the orphan rule removes it after the grace period.
      return {
        state: 'finished',
        reason: RUNNER_EXITED,
        ...(ephemeral ? { registrationGone: true } : {}),
      };
    }
    return {
      state: 'failed',
      reason: `instance failed${instanceSeen.message ? `: ${instanceSeen.message}` : ''}`,
      // The cloud taking an instance says nothing about the scale set: no backoff for it.
      failure: !tookJob && instanceSeen.interrupted !== true,
    };
  }
  if (instFresh && instance === undefined) {
    return { state: 'failed', reason: 'instance disappeared', failure: !tookJob, instanceGone: true };
  }
  if (ghFresh && gh !== undefined && gh.busy) {
    return { state: 'busy', reason: 'GitHub reports the runner busy', githubId: gh.id };
  }
  if (r.state === 'starting' && ghFresh && gh !== undefined && gh.status === 'online') {
    return { state: 'idle', reason: 'runner online', githubId: gh.id };
  }
  // A JIT registration exists before the instance does, so its absence from a later list means it was removed
  // (expired unused, or deleted by hand). A token-mode runner registers itself later, so only idle ones count.
  if (ghFresh && gh === undefined && (jit || r.state === 'idle')) {
    if (tookJob)
      return { state: 'finished', reason: 'registration removed after a job', registrationGone: true };
    // GitHub removes an ephemeral runner's registration when its job ends; under webhook lag (a burst) that is
    // seen before the job's webhooks, while the runner still looks starting. Reading it as a failure would buy the
    // job a second runner; it is counted as having run a job not yet reported (ranUnseenJob). A runner whose
    // instance failed is a failure above; one whose registration expired unused times its job out the same way.
    if (ephemeral) return { state: 'finished', reason: REMOVED_UNSEEN_JOB, registrationGone: true };
    return {
      state: 'failed',
      reason: 'registration removed before the runner took a job',
      failure: true,
      registrationGone: true,
    };
  }
  if (r.state === 'starting') {
    const deadline = r.stateChangedAt + ctx.set.bootstrapTimeout;
    const gh = ctx.s.github;
    if (ctx.now >= deadline && gh.at !== null && gh.at >= deadline) {
      return { state: 'bootstrap-timeout', reason: 'runner did not come online in time', failure: true };
    }
    // The timeout fires on the first runner list taken after the deadline.
    ctx.wakeAt(deadline);
  }
  return null;
}

export function cleanup(ctx: PlanContext, r: RunnerSnapshot): RunnerState {
  const ghFresh = ctx.ghFresh(r);
  const gh = ctx.s.github.runners.get(r.name);
  const instFresh = ctx.instFresh(r);
  const instance = ctx.instanceOf(r);
  const exited = instance?.state === 'succeeded' || instance?.state === 'failed';
  // The newest evidence wins: our own removal, unless a list taken after it still shows the registration.
  const listedAt = ctx.s.github.at;
  let registration: boolean | null;
  if (r.registrationDeletedAt !== null) {
    registration = listedAt !== null && listedAt > r.registrationDeletedAt && gh !== undefined;
  } else if (ghFresh) registration = gh !== undefined;
  else if (r.githubId !== null) registration = true;
  else registration = null; // unknown until a runner list taken after this state
  // `instance` is already blind to observations older than our own delete.
  const instancePresent = instance !== undefined || (r.instanceDeletedAt === null && !instFresh);

  if (registration === true) {
    const id = gh?.id ?? r.githubId;
    const busyNow = ghFresh && gh !== undefined && gh.busy;
    if (busyNow && !exited) return r.state; // our record is behind GitHub: wait until the job ends
    if (id !== null) {
      ctx.actions.push({
        type: 'deregister-runner',
        scaleSet: ctx.set.name,
        name: r.name,
        runnerId: id,
        reason: r.reason ?? r.state,
        checkBusy: !exited && (!ghFresh || gh?.status === 'online'),
        retire: false,
      });
    }
    // A stopped instance runs nothing: its removal need not wait for the registration's.
    if (instancePresent && exited) ctx.deleteInstance(r.name, r.reason ?? r.state);
    return r.state;
  }
  if (registration === null) {
    if (instancePresent && exited) ctx.deleteInstance(r.name, r.reason ?? r.state);
    return r.state;
  }
  if (instancePresent) {
    ctx.deleteInstance(r.name, r.reason ?? r.state);
    return r.state;
  }
  const rerun = ctx.set.rerunInterruptedJobs === true ? jobToRerun(ctx, r) : null;
  if (rerun !== null) {
    const giveUpAt = r.stateChangedAt + RERUN_WINDOW_MS;
    if (ctx.now < giveUpAt) {
      // GitHub re-runs a job only once its run has ended; the job ends when GitHub notices its runner is gone.
      if (r.job?.id === rerun && r.job.status === 'completed') {
        ctx.actions.push({ type: 'rerun-job', scaleSet: ctx.set.name, name: r.name, jobId: rerun });
      }
      ctx.wakeAt(giveUpAt);
      return r.state;
    }
    ctx.actions.push({
      type: 'mark-runner',
      scaleSet: ctx.set.name,
      name: r.name,
      state: 'deleted',
      reason: rerunRefusedReason(rerun, 'the job did not end within 24 h'),
      failure: false,
    });
    return 'deleted';
  }
  ctx.actions.push({
    type: 'mark-runner',
    scaleSet: ctx.set.name,
    name: r.name,
    state: 'deleted',
    reason: r.reason ?? r.state,
    failure: false,
  });
  return 'deleted';
}

export function ranUnseenJob(ctx: PlanContext, r: RunnerSnapshot): boolean {
  return (
    ctx.set.ephemeral &&
    r.job === null &&
    r.reason !== null &&
    RAN_A_JOB.has(r.reason) &&
    (r.state === 'finished' || r.state === 'deleted') &&
    ctx.now - r.stateChangedAt < 2 * ctx.timings.resyncInterval
  );
}
