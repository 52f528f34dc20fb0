/**
 * Garbage in both directions: a registration with this fleet's name and no instance, and an instance with no live
 * runner record, are removed (never from under a busy runner, never a registration this fleet did not name).
 */
import { isRunnerOf } from '../names.js';
import type { PlanContext } from './context.js';

export function orphanRegistrations(ctx: PlanContext): void {
  const gh = ctx.s.github;
  const inst = ctx.s.instances;
  for (const g of gh.runners.values()) {
    if (!isRunnerOf(ctx.set.name, g.name)) continue; // never touch a runner this fleet did not name
    const r = ctx.records.get(g.name);
    if (r !== undefined && (r.state !== 'deleted' || r.inFlight)) continue; // the record's rules own it
    if (ctx.staleAgainst(g.name, gh.at)) continue;
    const hosted = inst.items.get(g.name);
    if (hosted !== undefined && !ctx.staleAgainst(g.name, hosted.observedAt)) {
      continue; // an instance hosts it: the stray-instance rule handles the pair
    }
    if (inst.at === null || inst.at <= g.firstSeenAt) continue; // an instance list after we saw it is needed
    if (g.busy) continue;
    // Grace runs from first sight, or from our record's deletion: GitHub removes a finished ephemeral runner on
    // its own, a little later; deregistering it at once would spend an API call per job.
    const due = Math.max(g.firstSeenAt, r?.stateChangedAt ?? 0) + ctx.timings.orphanGracePeriod;
    if (ctx.now < due) {
      ctx.wakeAt(due);
      continue;
    }
    ctx.actions.push({
      type: 'deregister-runner',
      scaleSet: ctx.set.name,
      name: g.name,
      runnerId: g.id,
      reason: 'orphan registration (no instance)',
      checkBusy: false,
      retire: false,
    });
  }
}

export function strayInstances(ctx: PlanContext): void {
  const gh = ctx.s.github;
  for (const i of ctx.s.instances.items.values()) {
    const r = ctx.records.get(i.name);
    if (r !== undefined && (r.state !== 'deleted' || r.inFlight)) continue;
    if (ctx.staleAgainst(i.name, i.observedAt)) continue;
    const exited = i.state === 'succeeded' || i.state === 'failed';
    // Busy in a list not strictly older than our deletion of the record: it may be current; leave it alone.
    const listed = gh.runners.get(i.name);
    const busyMaybeNow =
      listed?.busy === true && !(r !== undefined && gh.at !== null && gh.at < r.stateChangedAt);
    if (busyMaybeNow && !exited) continue;
    const g = ctx.staleAgainst(i.name, gh.at) ? undefined : listed;
    if (g !== undefined) {
      if (g.busy && !exited) continue; // never take an instance from under a job
      if (!isRunnerOf(ctx.set.name, i.name)) {
        // Never touch a registration this fleet did not name, even if an instance of ours carries its name.
        if (exited) ctx.deleteInstance(i.name, 'stopped instance without a runner record');
        continue;
      }
      ctx.actions.push({
        type: 'deregister-runner',
        scaleSet: ctx.set.name,
        name: i.name,
        runnerId: g.id,
        reason: 'instance without a runner record',
        checkBusy: !exited,
        retire: false,
      });
      if (exited) ctx.deleteInstance(i.name, 'stopped instance without a runner record');
      continue;
    }
    if (gh.at === null || gh.at <= i.createdAt) continue; // a runner list after its creation is needed
    if (exited || r !== undefined) {
      ctx.deleteInstance(i.name, 'instance without a runner');
      continue;
    }
    const due = i.createdAt + ctx.set.bootstrapTimeout;
    if (ctx.now < due) {
      ctx.wakeAt(due);
      continue;
    }
    ctx.deleteInstance(i.name, 'instance without a runner after the bootstrap timeout');
  }
}
