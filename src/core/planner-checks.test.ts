/**
 * Job status checks under a backlog: re-checks of known jobs share a budget of `maxJobChecks` per scale set per
 * resync interval, so thousands of queued jobs waiting for capacity cost a bounded number of GitHub API calls; jobs
 * known only from before a restart are not held back by it.
 */
import { describe, expect, it } from 'vitest';
import { seededRandom } from './names.js';
import type { JobSnapshot } from './plan-types.js';
import { planScaleSet } from './planner.js';
import {
  SECOND,
  byType,
  runner,
  scaleSetConfig,
  snapshot,
  timings,
} from '../../test/support/core/planner.js';

const T = 10_000_000;
const INTERVAL = timings.resyncInterval;

function queued(id: number, over: Partial<JobSnapshot> = {}): JobSnapshot {
  return {
    id,
    owner: 'o',
    repo: 'r',
    status: 'queued',
    queuedAt: T - 10 * INTERVAL,
    startedAt: null,
    checkedAt: null,
    inFlight: false,
    ...over,
  };
}

function plan(jobs: JobSnapshot[], now = T) {
  // a scale set at its max: the queued jobs are a backlog
  return planScaleSet(snapshot({ jobs }), scaleSetConfig({ max: 1 }), timings, now, {
    random: seededRandom(1),
    maxJobChecks: 5,
  });
}

describe('job status checks under a backlog', () => {
  it('checks at most maxJobChecks jobs per resync interval, however many passes run', () => {
    const backlog = Array.from({ length: 100 }, (_, i) => queued(i + 1));
    const first = byType(plan(backlog), 'check-job');
    expect(first.map((c) => c.jobId)).toEqual([1, 2, 3, 4, 5]);
    // those five were checked 10 s ago: the budget is spent until they leave the interval
    const checked = backlog.map((j) => (j.id <= 5 ? { ...j, checkedAt: T - 10 * SECOND } : j));
    const again = plan(checked);
    expect(byType(again, 'check-job')).toEqual([]);
    expect(byType(again, 'wake-at').map((w) => w.at)).toEqual([T - 10 * SECOND + INTERVAL]);
    // checks under way count too
    const inFlight = backlog.map((j) => (j.id <= 3 ? { ...j, inFlight: true } : j));
    expect(byType(plan(inFlight), 'check-job').map((c) => c.jobId)).toEqual([4, 5]);
    // once the interval has passed, the next five (the least recently checked first)
    const later = byType(plan(checked, T - 10 * SECOND + INTERVAL), 'check-job');
    expect(later.map((c) => c.jobId)).toEqual([6, 7, 8, 9, 10]);
  });

  it('checks jobs known only from before a restart at once, outside the budget', () => {
    const recent = Array.from({ length: 5 }, (_, i) => queued(i + 1, { checkedAt: T - SECOND }));
    const unverified = Array.from({ length: 3 }, (_, i) => queued(100 + i, { unverified: true }));
    const checks = byType(plan([...recent, ...unverified, queued(50)]), 'check-job');
    expect(checks.map((c) => c.jobId)).toEqual([100, 101, 102]);
  });

  it('does not check queued jobs whose runner is still on the way (waiting for GitHub rate budget)', () => {
    // 10 queued jobs, 6 runners requested (waiting for the paced JIT budget), max 6: the 6 newest jobs wait for
    // those runners and need no check; the 4 oldest are over capacity and are checked.
    const jobs = Array.from({ length: 10 }, (_, i) => queued(i + 1, { queuedAt: T - 10 * INTERVAL + i }));
    const runners = Array.from({ length: 6 }, (_, i) =>
      runner({ name: `linux-waiting${i}`, state: 'requested', stateChangedAt: T - SECOND }),
    );
    const actions = planScaleSet(snapshot({ jobs, runners }), scaleSetConfig({ max: 6 }), timings, T, {
      random: seededRandom(1),
      maxJobChecks: 20,
    });
    expect(byType(actions, 'check-job').map((c) => c.jobId)).toEqual([1, 2, 3, 4]);
    // new runners planned in the same pass count too: max 10, nothing requested yet
    const fresh = planScaleSet(snapshot({ jobs }), scaleSetConfig({ max: 10 }), timings, T, {
      random: seededRandom(1),
      maxJobChecks: 20,
    });
    expect(byType(fresh, 'create-runner')).toHaveLength(10);
    expect(byType(fresh, 'check-job')).toEqual([]);
  });
});
