/**
 * The pure planner: `plan(snapshot, config, now, options) -> Action[]`. No I/O, no clock, no randomness of its own
 * (names come from `options.random`), so the same inputs always give the same actions. docs/core.md states each rule
 * and the invariant it serves. One pass over one scale set runs its rules in this order, each in its own file under
 * planner/: the lifecycle of every record (lifecycle.ts), scaling (scaling.ts), garbage in both directions
 * (garbage.ts) and job status checks (job-checks.ts), all sharing one PlanContext (context.ts).
 */
import type { FleetConfig, ScaleSetConfig } from './fleet-config.js';
import type { RunnerState } from './types.js';
import type { Action, RunnerSnapshot, ScaleSetSnapshot, Snapshot } from './plan-types.js';
import type { ControllerTimings, PlanOptions } from './planner/context.js';
import { PlanContext } from './planner/context.js';
import { orphanRegistrations, strayInstances } from './planner/garbage.js';
import { checkJobs } from './planner/job-checks.js';
import { cleanup, isTerminal, ranUnseenJob, transition } from './planner/lifecycle.js';
import { scale } from './planner/scaling.js';

export type { PlanOptions } from './planner/context.js';
export { IN_PROGRESS_CHECK_FACTOR } from './planner/job-checks.js';
export { isTerminal } from './planner/lifecycle.js';

export function plan(snapshot: Snapshot, config: FleetConfig, now: number, options: PlanOptions): Action[] {
  const actions: Action[] = [];
  for (const set of config.scaleSets) {
    const s = snapshot.scaleSets.get(set.name);
    if (s !== undefined) actions.push(...planScaleSet(s, set, config.controller, now, options));
  }
  return actions;
}

/** Plans one scale set. `plan` calls it for each configured scale set. */
export function planScaleSet(
  s: ScaleSetSnapshot,
  set: ScaleSetConfig,
  timings: ControllerTimings,
  now: number,
  options: PlanOptions,
): Action[] {
  const ctx = new PlanContext(s, set, timings, now, options);
  // Parallel arrays rather than one small object per record: this runs over every record on every pass.
  const records: RunnerSnapshot[] = [];
  const states: RunnerState[] = [];
  let ranUnseen = 0;
  for (const r of s.runners) {
    if (r.state === 'deleted') {
      if (ranUnseenJob(ctx, r)) ranUnseen++;
      continue;
    }
    if (r.inFlight) {
      // Still counts as having run a job not yet reported while the executor removes it (its instance or
      // registration): otherwise the pass that runs meanwhile buys that job a second runner.
      if (ranUnseenJob(ctx, r)) ranUnseen++;
      records.push(r);
      states.push(r.state);
      continue;
    }
    const t = transition(ctx, r);
    let current = r;
    if (t !== null) {
      ctx.mark(r, t);
      current = {
        ...r,
        state: t.state,
        reason: t.reason,
        stateChangedAt: now,
        instanceDeletedAt: t.instanceGone ? now : r.instanceDeletedAt,
        registrationDeletedAt: t.registrationGone ? now : r.registrationDeletedAt,
        githubId: t.githubId ?? r.githubId,
      };
    }
    if (ranUnseenJob(ctx, current)) ranUnseen++;
    const state = isTerminal(current.state) ? cleanup(ctx, current) : current.state;
    if (state !== 'deleted') {
      records.push(current);
      states.push(state);
    }
  }
  scale(ctx, records, states, ranUnseen);
  orphanRegistrations(ctx);
  strayInstances(ctx);
  checkJobs(ctx);
  if (ctx.wake !== Infinity) ctx.actions.push({ type: 'wake-at', scaleSet: set.name, at: ctx.wake });
  return ctx.actions;
}
