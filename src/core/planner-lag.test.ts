/**
 * Webhook lag in a burst: an ephemeral runner's instance can be seen exiting after its job before the job's
 * `in_progress` and `completed` webhooks arrive. Until they do (or for two resync intervals), that job must not be
 * counted as still queued, or it gets a second runner that then idles (invariant 3).
 */
import { describe, expect, it } from 'vitest';
import { seededRandom } from './names.js';
import type { JobSnapshot, RunnerSnapshot } from './plan-types.js';
import { planScaleSet } from './planner.js';
import {
  SECOND,
  byType,
  instance,
  runner,
  scaleSetConfig,
  snapshot,
  timings,
} from '../../test/support/core/planner.js';

const T = 10_000_000;

function queued(id: number): JobSnapshot {
  return {
    id,
    owner: 'o',
    repo: 'r',
    status: 'queued',
    queuedAt: T - SECOND,
    startedAt: null,
    checkedAt: null,
    inFlight: false,
  };
}

const jobs = [queued(1), queued(2), queued(3)];
const starting = (name: string) => runner({ name, state: 'starting', stateChangedAt: T - 5 * SECOND });
const exited = (over: Partial<RunnerSnapshot> = {}) =>
  runner({
    name: 'linux-aaaaaaa1',
    state: 'deleted',
    reason: 'runner exited',
    stateChangedAt: T - SECOND,
    ...over,
  });

function creates(runners: RunnerSnapshot[], over: Parameters<typeof scaleSetConfig>[0] = {}, extra = {}) {
  const s = snapshot({ jobs, runners, ...extra });
  return byType(
    planScaleSet(s, scaleSetConfig(over), timings, T, { random: seededRandom(1) }),
    'create-runner',
  );
}

describe('planner: a runner that ended after a job we have not heard of', () => {
  it('does not count that job as queued', () => {
    const two = [starting('linux-aaaaaaa2'), starting('linux-aaaaaaa3')];
    // without the exited runner, three queued jobs and two runners: one more is needed
    expect(creates(two)).toHaveLength(1);
    expect(creates([exited(), ...two])).toHaveLength(0);
    // also when it ended busy, and when its record is not yet deleted
    expect(creates([exited({ reason: 'instance succeeded while running a job' }), ...two])).toHaveLength(0);
    expect(creates([exited({ state: 'finished', instanceDeletedAt: T - SECOND }), ...two])).toHaveLength(0);
  });

  it('counts an exit seen in this very pass', () => {
    const a = runner({ name: 'linux-aaaaaaa1', state: 'starting', stateChangedAt: T - 5 * SECOND });
    const instances = {
      at: T - SECOND,
      items: new Map([
        ['linux-aaaaaaa1', instance('linux-aaaaaaa1', 'succeeded', T - SECOND)],
        ['linux-aaaaaaa2', instance('linux-aaaaaaa2', 'pending', T - SECOND)],
        ['linux-aaaaaaa3', instance('linux-aaaaaaa3', 'pending', T - SECOND)],
      ]),
    };
    expect(
      creates([a, starting('linux-aaaaaaa2'), starting('linux-aaaaaaa3')], {}, { instances }),
    ).toHaveLength(0);
  });

  it('reads a starting runner whose registration GitHub removed as one that ran such a job, not as a failure', () => {
    // Its instance was not seen exiting; the runner list (taken after it started) no longer has it.
    const gone = runner({
      name: 'linux-aaaaaaa1',
      state: 'starting',
      stateChangedAt: T - 5 * SECOND,
      githubId: 7,
    });
    const github = {
      at: T - SECOND,
      runners: new Map(
        ['linux-aaaaaaa2', 'linux-aaaaaaa3'].map((name, i) => [
          name,
          {
            id: i + 1,
            name,
            status: 'offline' as const,
            busy: false,
            labels: [],
            firstSeenAt: T - 4 * SECOND,
          },
        ]),
      ),
    };
    const runners = [gone, starting('linux-aaaaaaa2'), starting('linux-aaaaaaa3')];
    const s = snapshot({ jobs, runners, github });
    const actions = planScaleSet(s, scaleSetConfig(), timings, T, { random: seededRandom(1) });
    expect(byType(actions, 'create-runner')).toHaveLength(0);
    const mark = byType(actions, 'mark-runner').find((a) => a.name === 'linux-aaaaaaa1');
    expect(mark).toMatchObject({ state: 'finished', registrationGone: true });
    expect(mark).not.toMatchObject({ failure: true });
  });

  it('counts the job again once known, after two resync intervals, and for persistent runners', () => {
    const two = [starting('linux-aaaaaaa2'), starting('linux-aaaaaaa3')];
    // its webhook named the runner: the job's own status now says whether it is queued
    expect(creates([exited({ job: { id: 9, status: 'completed', at: T } }), ...two])).toHaveLength(1);
    expect(creates([exited({ stateChangedAt: T - 2 * timings.resyncInterval }), ...two])).toHaveLength(1);
    expect(creates([exited(), ...two], { ephemeral: false, registration: 'token' })).toHaveLength(1);
  });
});
