import { describe, expect, it } from 'vitest';
import { plan, planScaleSet } from './planner.js';
import { isRunnerOf, seededRandom } from './names.js';
import type { JobSnapshot, ScaleSetSnapshot } from './plan-types.js';
import {
  MINUTE,
  SECOND,
  byType,
  fleetConfig,
  ghRunner,
  instance,
  runner,
  scaleSetConfig,
  snapshot,
  timings,
} from '../../test/support/core/planner.js';

const T = 1_000_000;
const opts = () => ({ random: seededRandom(42) });

function queued(id: number, queuedAt = T): JobSnapshot {
  return {
    id,
    owner: 'o',
    repo: 'r',
    status: 'queued',
    queuedAt,
    startedAt: null,
    checkedAt: null,
    inFlight: false,
  };
}

function run(s: ScaleSetSnapshot, over: Parameters<typeof scaleSetConfig>[0] = {}, now = T) {
  return planScaleSet(s, scaleSetConfig(over), timings, now, opts());
}

describe('planner: scaling', () => {
  it('creates queued + minIdle runners with deterministic names', () => {
    const s = snapshot({ jobs: [queued(1), queued(2), queued(3)] });
    const a = run(s, { minIdle: 1 });
    const creates = byType(a, 'create-runner');
    expect(creates).toHaveLength(4);
    expect(new Set(creates.map((c) => c.name)).size).toBe(4);
    for (const c of creates) expect(isRunnerOf('linux', c.name)).toBe(true);
    expect(run(s, { minIdle: 1 })).toEqual(a); // same inputs, same plan
  });

  it('never gives a new runner the name of one on record but not in the snapshot (deleted, left memory)', () => {
    const s = snapshot({ jobs: [queued(1)] });
    const first = byType(run(s), 'create-runner')[0]!.name;
    const asked: string[] = [];
    const a = planScaleSet(s, scaleSetConfig(), timings, T, {
      ...opts(),
      nameTaken: (name) => {
        asked.push(name);
        return name === first;
      },
    });
    const creates = byType(a, 'create-runner');
    expect(creates).toHaveLength(1);
    expect(creates[0]!.name).not.toBe(first);
    expect(isRunnerOf('linux', creates[0]!.name)).toBe(true);
    expect(asked).toEqual([first, creates[0]!.name]);
  });

  it('counts runners, never pairs them with jobs', () => {
    const s = snapshot({
      jobs: [queued(1), queued(2), queued(3)],
      runners: [
        runner({ name: 'linux-aaaaaaa1', state: 'starting', stateChangedAt: T }),
        runner({ name: 'linux-aaaaaaa2', state: 'idle', stateChangedAt: T }),
      ],
    });
    expect(byType(run(s), 'create-runner')).toHaveLength(1);
  });

  it('busy runners carry their own jobs: queued jobs still get runners', () => {
    const s = snapshot({
      jobs: [queued(1)],
      runners: [
        runner({
          name: 'linux-aaaaaaa1',
          state: 'busy',
          stateChangedAt: T,
          job: { id: 9, status: 'in_progress', at: T },
        }),
      ],
    });
    expect(byType(run(s), 'create-runner')).toHaveLength(1);
  });

  it('scale-set discovery: assigned jobs vouch for unverified queued jobs, and are no floor beyond them', () => {
    const unverified = [1, 2, 3].map((id) => ({ ...queued(id), unverified: true }));
    // No statistics: unverified jobs wait for confirmation, as in webhook mode.
    expect(byType(run(snapshot({ jobs: unverified })), 'create-runner')).toHaveLength(0);
    // GitHub says 2 jobs are assigned: two of the three count.
    expect(byType(run(snapshot({ jobs: unverified, assignedJobs: 2 })), 'create-runner')).toHaveLength(2);
    // Statistics that lag (jobs since seen ending) buy nothing when no unverified job is queued.
    expect(byType(run(snapshot({ jobs: [], assignedJobs: 5 })), 'create-runner')).toHaveLength(0);
    // A busy runner whose job is not yet known may run a vouched job: not counted twice.
    const busy = runner({ name: 'linux-aaaaaaa1', state: 'busy', stateChangedAt: T });
    expect(
      byType(run(snapshot({ jobs: [unverified[0]!], runners: [busy], assignedJobs: 2 })), 'create-runner'),
    ).toHaveLength(0);
  });

  it('scale-set discovery: jobs waiting per the statistics are a floor, for jobs this store never recorded too', () => {
    // A new leader (its own store) or a lost store: GitHub says 3 jobs wait, the store knows none of them.
    expect(byType(run(snapshot({ jobs: [], waitingJobs: 3 })), 'create-runner')).toHaveLength(3);
    // Known queued jobs are not counted twice: the larger of the two counts.
    expect(
      byType(run(snapshot({ jobs: [queued(1), queued(2)], waitingJobs: 3 })), 'create-runner'),
    ).toHaveLength(3);
    expect(
      byType(run(snapshot({ jobs: [queued(1), queued(2)], waitingJobs: 1 })), 'create-runner'),
    ).toHaveLength(2);
    // Runners on their way count against it, and a busy runner whose job is not yet known may run one of them.
    const starting = runner({ name: 'linux-aaaaaaa1', state: 'creating', stateChangedAt: T });
    const busy = runner({ name: 'linux-aaaaaaa2', state: 'busy', stateChangedAt: T });
    expect(
      byType(run(snapshot({ jobs: [], runners: [starting, busy], waitingJobs: 3 })), 'create-runner'),
    ).toHaveLength(1);
    // Never above max.
    expect(byType(run(snapshot({ jobs: [], waitingJobs: 50 }), { max: 5 }), 'create-runner')).toHaveLength(5);
  });

  it('never plans more than max non-deleted runners, counting ones being cleaned up', () => {
    const jobs = Array.from({ length: 20 }, (_, i) => queued(i + 1));
    expect(byType(run(snapshot({ jobs }), { max: 5 }), 'create-runner')).toHaveLength(5);
    const s = snapshot({
      jobs,
      runners: [
        runner({ name: 'linux-aaaaaaa1', state: 'failed', stateChangedAt: T, githubId: 1 }),
        runner({ name: 'linux-aaaaaaa2', state: 'finished', stateChangedAt: T, githubId: 2 }),
        runner({ name: 'linux-aaaaaaa3', state: 'deleted', stateChangedAt: T }),
      ],
    });
    expect(byType(run(s, { max: 5 }), 'create-runner')).toHaveLength(3);
  });

  it('plans at most maxCreatesPerPass new runners and asks for the next pass at once', () => {
    const jobs = Array.from({ length: 7 }, (_, i) => queued(i + 1));
    const a = planScaleSet(snapshot({ jobs }), scaleSetConfig(), timings, T, {
      random: seededRandom(1),
      maxCreatesPerPass: 3,
    });
    expect(byType(a, 'create-runner')).toHaveLength(3);
    expect(byType(a, 'wake-at')).toEqual([{ type: 'wake-at', scaleSet: 'linux', at: T + 1 }]);
  });

  it('does not create while the scale set backs off, and asks to be woken when it ends', () => {
    const s = snapshot({ jobs: [queued(1)], backoff: { failures: 2, until: T + 10 * SECOND } });
    const a = run(s);
    expect(byType(a, 'create-runner')).toHaveLength(0);
    expect(byType(a, 'wake-at')).toEqual([{ type: 'wake-at', scaleSet: 'linux', at: T + 10 * SECOND }]);
    expect(byType(run(s, {}, T + 10 * SECOND), 'create-runner')).toHaveLength(1);
  });

  it('resumes a requested record that is still needed and cancels one that is not', () => {
    const rec = runner({ name: 'linux-aaaaaaa1', state: 'requested', stateChangedAt: T });
    const needed = run(snapshot({ jobs: [queued(1)], runners: [rec] }));
    expect(byType(needed, 'create-runner')).toEqual([
      { type: 'create-runner', scaleSet: 'linux', name: rec.name, resume: true, order: T },
    ]);
    const notNeeded = run(snapshot({ runners: [rec] }));
    expect(byType(notNeeded, 'mark-runner')).toMatchObject([{ name: rec.name, state: 'deleted' }]);
    expect(byType(notNeeded, 'create-runner')).toHaveLength(0);
  });

  it('leaves in-flight records alone but counts them', () => {
    const s = snapshot({
      jobs: [queued(1)],
      runners: [runner({ name: 'linux-aaaaaaa1', state: 'requested', inFlight: true })],
    });
    expect(run(s).filter((a) => a.type !== 'wake-at')).toEqual([]);
  });

  it('an ended runner that ran a job not yet reported still counts while its instance is being deleted', () => {
    // GitHub removed the ephemeral runner's registration after its job; the job's webhooks have not come yet, so the
    // job still looks queued. Whether or not the executor is deleting its instance right now, no second runner.
    for (const inFlight of [false, true]) {
      const s = snapshot({
        jobs: [queued(1)],
        runners: [
          runner({
            name: 'linux-aaaaaaa1',
            state: 'finished',
            reason: 'registration removed by GitHub after a job not yet reported',
            stateChangedAt: T - SECOND,
            registrationDeletedAt: T - SECOND,
            inFlight,
          }),
        ],
      });
      expect(byType(run(s), 'create-runner'), `inFlight=${inFlight}`).toEqual([]);
    }
  });

  it('retires idle runners above desired once their idle timeout passed, asking GitHub first', () => {
    const idle = runner({ name: 'linux-aaaaaaa1', state: 'idle', stateChangedAt: T, githubId: 7 });
    const early = run(snapshot({ runners: [idle] }), {}, T + MINUTE);
    expect(byType(early, 'deregister-runner')).toHaveLength(0);
    expect(byType(early, 'wake-at')[0]?.at).toBe(T + 5 * MINUTE);
    const late = run(snapshot({ runners: [idle] }), {}, T + 5 * MINUTE);
    expect(byType(late, 'deregister-runner')).toEqual([
      {
        type: 'deregister-runner',
        scaleSet: 'linux',
        name: idle.name,
        runnerId: 7,
        reason: 'idle timeout',
        checkBusy: true,
        retire: true,
      },
    ]);
    // minIdle keeps it
    expect(
      byType(run(snapshot({ runners: [idle] }), { minIdle: 1 }, T + 9 * MINUTE), 'deregister-runner'),
    ).toHaveLength(0);
  });

  it('keeps persistent runners at minIdle and grows them for queued jobs', () => {
    const set = { ephemeral: false, registration: 'token' as const, minIdle: 2, max: 4 };
    expect(byType(run(snapshot(), set), 'create-runner')).toHaveLength(2);
    const jobs = Array.from({ length: 5 }, (_, i) => queued(i + 1));
    expect(byType(run(snapshot({ jobs }), set), 'create-runner')).toHaveLength(4);
  });
});

describe('planner: lifecycle', () => {
  it('marks a runner busy when a job runs on it, and never deletes its instance', () => {
    const r = runner({
      name: 'linux-aaaaaaa1',
      state: 'starting',
      stateChangedAt: T,
      job: { id: 1, status: 'in_progress', at: T + 1 },
    });
    const a = run(
      snapshot({
        runners: [r],
        instances: { at: T + 2, items: new Map([[r.name, instance(r.name, 'running', T + 2)]]) },
      }),
      {},
      T + 20 * MINUTE,
    );
    expect(byType(a, 'mark-runner')).toMatchObject([{ name: r.name, state: 'busy' }]);
    expect(byType(a, 'delete-instance')).toHaveLength(0);
  });

  it('finishes an ephemeral runner when its job completes, deletes the instance, then records deleted', () => {
    const r = runner({
      name: 'linux-aaaaaaa1',
      state: 'busy',
      stateChangedAt: T,
      githubId: 5,
      job: { id: 1, status: 'completed', at: T + 1 },
    });
    const a = run(snapshot({ runners: [r] }), {}, T + 2);
    expect(byType(a, 'mark-runner')).toMatchObject([{ state: 'finished', registrationGone: true }]);
    expect(byType(a, 'delete-instance')).toMatchObject([{ name: r.name }]);
    expect(byType(a, 'deregister-runner')).toHaveLength(0); // GitHub removes ephemeral registrations itself
    const after = runner({
      ...r,
      state: 'finished',
      stateChangedAt: T + 2,
      registrationDeletedAt: T + 2,
      instanceDeletedAt: T + 3,
    });
    expect(byType(run(snapshot({ runners: [after] }), {}, T + 4), 'mark-runner')).toMatchObject([
      { state: 'deleted' },
    ]);
  });

  it('returns a persistent runner to idle when its job completes', () => {
    const r = runner({
      name: 'linux-aaaaaaa1',
      state: 'busy',
      stateChangedAt: T,
      githubId: 5,
      job: { id: 1, status: 'completed', at: T + 1 },
    });
    const a = run(snapshot({ runners: [r] }), { ephemeral: false, registration: 'token' }, T + 2);
    expect(byType(a, 'mark-runner')).toMatchObject([{ state: 'idle' }]);
    // an old completed job does not undo a newer busy
    const stale = { ...r, job: { id: 1, status: 'completed' as const, at: T - 1 } };
    expect(
      byType(
        run(snapshot({ runners: [stale] }), { ephemeral: false, registration: 'token' }, T + 2),
        'mark-runner',
      ),
    ).toHaveLength(0);
  });

  it('moves starting to idle when a fresh list shows the runner online', () => {
    const r = runner({ name: 'linux-aaaaaaa1', state: 'starting', stateChangedAt: T });
    const gh = { at: T + 1, runners: new Map([[r.name, ghRunner(r.name, { id: 3 })]]) };
    expect(byType(run(snapshot({ runners: [r], github: gh }), {}, T + 2), 'mark-runner')).toMatchObject([
      { state: 'idle', githubId: 3 },
    ]);
    // a list older than the record's state says nothing
    const old = { at: T - 1, runners: gh.runners };
    expect(byType(run(snapshot({ runners: [r], github: old }), {}, T + 2), 'mark-runner')).toHaveLength(0);
  });

  it('times out a runner that did not come online, then deregisters before deleting the instance', () => {
    const r = runner({ name: 'linux-aaaaaaa1', state: 'starting', stateChangedAt: T, githubId: 9 });
    const deadline = T + 10 * MINUTE;
    const gh = (at: number) => ({
      at,
      runners: new Map([[r.name, ghRunner(r.name, { id: 9, status: 'offline' })]]),
    });
    const inst = { at: deadline, items: new Map([[r.name, instance(r.name, 'running', deadline)]]) };
    // the deadline passed but no list since: wait for one
    expect(
      byType(
        run(snapshot({ runners: [r], github: gh(deadline - 1), instances: inst }), {}, deadline + 1),
        'mark-runner',
      ),
    ).toHaveLength(0);
    const a = run(snapshot({ runners: [r], github: gh(deadline), instances: inst }), {}, deadline + 1);
    expect(byType(a, 'mark-runner')).toMatchObject([{ state: 'bootstrap-timeout', failure: true }]);
    expect(byType(a, 'deregister-runner')).toMatchObject([{ runnerId: 9 }]);
    expect(byType(a, 'delete-instance')).toHaveLength(0); // registration first
    const next = runner({
      ...r,
      state: 'bootstrap-timeout',
      stateChangedAt: deadline + 1,
      registrationDeletedAt: deadline + 2,
    });
    expect(
      byType(run(snapshot({ runners: [next], instances: inst }), {}, deadline + 3), 'delete-instance'),
    ).toHaveLength(1);
  });

  it('fails a runner whose instance failed before it took a job (a failure that backs off)', () => {
    const r = runner({ name: 'linux-aaaaaaa1', state: 'starting', stateChangedAt: T, githubId: 4 });
    const inst = {
      at: T,
      items: new Map([[r.name, { ...instance(r.name, 'failed', T + 1), message: 'exit 1' }]]),
    };
    const a = run(snapshot({ runners: [r], instances: inst }), {}, T + 2);
    expect(byType(a, 'mark-runner')).toMatchObject([
      { state: 'failed', failure: true, reason: 'instance failed: exit 1' },
    ]);
    // the instance stopped: registration and instance go in the same pass
    expect(byType(a, 'deregister-runner')).toMatchObject([{ runnerId: 4, checkBusy: false }]);
    expect(byType(a, 'delete-instance')).toHaveLength(1);
  });

  it('repairs an interrupted create once lists taken after it are in', () => {
    const r = runner({ name: 'linux-aaaaaaa1', state: 'creating', stateChangedAt: T });
    const none = { at: T + 1, items: new Map() };
    // no fresh lists: wait
    expect(run(snapshot({ runners: [r] }), {}, T + 2).filter((x) => x.type !== 'wake-at')).toEqual([]);
    // instance found: it was created, carry on
    const found = { at: T + 1, items: new Map([[r.name, instance(r.name, 'running', T + 1)]]) };
    expect(byType(run(snapshot({ runners: [r], instances: found }), {}, T + 2), 'mark-runner')).toMatchObject(
      [{ state: 'starting' }],
    );
    // registration but no instance: its config is lost; remove it
    const gh = { at: T + 1, runners: new Map([[r.name, ghRunner(r.name, { id: 11, status: 'offline' })]]) };
    const a = run(snapshot({ runners: [r], instances: none, github: gh }), {}, T + 2);
    expect(byType(a, 'mark-runner')).toMatchObject([{ state: 'finished', instanceGone: true, githubId: 11 }]);
    expect(byType(a, 'deregister-runner')).toMatchObject([{ runnerId: 11 }]);
    // neither: nothing to clean
    const b = run(
      snapshot({ runners: [r], instances: none, github: { at: T + 1, runners: new Map() } }),
      {},
      T + 2,
    );
    expect(byType(b, 'mark-runner')).toMatchObject([{ state: 'deleted' }]);
  });

  it('deregisters an orphan registration after the grace period, never one it did not name', () => {
    const name = 'linux-orphan01';
    const gh = {
      at: T,
      runners: new Map([
        [name, ghRunner(name, { id: 21, status: 'offline', firstSeenAt: T })],
        ['linux-someone-else', ghRunner('linux-someone-else', { id: 22, firstSeenAt: 0 })],
      ]),
    };
    const inst = { at: T + 1, items: new Map() };
    expect(
      byType(run(snapshot({ github: gh, instances: inst }), {}, T + MINUTE), 'deregister-runner'),
    ).toHaveLength(0);
    const a = run(snapshot({ github: gh, instances: inst }), {}, T + 2 * MINUTE);
    expect(byType(a, 'deregister-runner')).toMatchObject([{ name, runnerId: 21, checkBusy: false }]);
  });

  it('deletes an instance with no runner after the bootstrap timeout, and a stopped one at once', () => {
    const gh = { at: T + 1, runners: new Map() };
    const items = new Map([
      ['linux-stray0001', instance('linux-stray0001', 'running', T + 1, T)],
      ['linux-stray0002', instance('linux-stray0002', 'succeeded', T + 1, T)],
    ]);
    const a = run(snapshot({ github: gh, instances: { at: T + 1, items } }), {}, T + 2);
    expect(byType(a, 'delete-instance').map((d) => d.name)).toEqual(['linux-stray0002']);
    const b = run(snapshot({ github: gh, instances: { at: T + 1, items } }), {}, T + 10 * MINUTE);
    expect(
      byType(b, 'delete-instance')
        .map((d) => d.name)
        .sort(),
    ).toEqual(['linux-stray0001', 'linux-stray0002']);
  });

  it('does not take an instance from under a busy runner without a record', () => {
    const name = 'linux-stray0001';
    const gh = { at: T + 1, runners: new Map([[name, ghRunner(name, { busy: true })]]) };
    const items = new Map([[name, instance(name, 'running', T + 1, 0)]]);
    const a = run(snapshot({ github: gh, instances: { at: T + 1, items } }), {}, T + 60 * MINUTE);
    expect(a.filter((x) => x.type !== 'wake-at')).toEqual([]);
  });

  it('ignores observations older than its own deletion of a runner', () => {
    const name = 'linux-aaaaaaa1';
    const deleted = runner({
      name,
      state: 'deleted',
      stateChangedAt: T + 5,
      instanceDeletedAt: T + 4,
      registrationDeletedAt: T + 3,
    });
    const s = snapshot({
      runners: [deleted],
      github: { at: T, runners: new Map([[name, ghRunner(name, { firstSeenAt: 0, status: 'offline' })]]) },
      instances: { at: T, items: new Map([[name, instance(name, 'running', T, 0)]]) },
    });
    expect(run(s, {}, T + 60 * MINUTE).filter((x) => x.type !== 'wake-at')).toEqual([]);
  });

  it('does not count jobs known only from before a restart until a status check confirms them', () => {
    const jobs = [queued(1), { ...queued(2), unverified: true }, { ...queued(3), unverified: true }];
    const a = run(snapshot({ jobs }), {}, T + 1);
    expect(byType(a, 'create-runner')).toHaveLength(1);
    expect(byType(a, 'check-job').map((c) => c.jobId)).toEqual([2, 3]);
  });

  it('checks jobs queued longer than a resync, oldest first, bounded per pass', () => {
    const jobs = Array.from({ length: 30 }, (_, i) => queued(i + 1, T - i * SECOND));
    const a = planScaleSet(snapshot({ jobs }), scaleSetConfig({ max: 0 }), timings, T + 30 * SECOND, {
      random: seededRandom(1),
      maxJobChecks: 5,
    });
    expect(byType(a, 'check-job').map((c) => c.jobId)).toEqual([30, 29, 28, 27, 26]);
  });
});

describe('plan over a fleet', () => {
  it('plans every configured scale set and nothing else', () => {
    const config = fleetConfig([scaleSetConfig({ name: 'a' }), scaleSetConfig({ name: 'b' })]);
    const snap = {
      scaleSets: new Map([
        ['a', snapshot({ name: 'a', jobs: [queued(1)] })],
        ['b', snapshot({ name: 'b', jobs: [queued(2), queued(3)] })],
        ['gone', snapshot({ name: 'gone', jobs: [queued(4)] })],
      ]),
    };
    const creates = byType(plan(snap, config, T, opts()), 'create-runner');
    expect(creates.map((c) => c.scaleSet)).toEqual(['a', 'b', 'b']);
  });
});

describe('planner: interrupted instances (the cloud took a busy runner’s instance)', () => {
  const NAME = 'linux-aaaaaaa1';
  const interrupted = (observedAt: number) => ({
    ...instance(NAME, 'failed', observedAt),
    message: 'spot instance interrupted by AWS (Server.SpotInstanceTermination)',
    interrupted: true,
  });
  const lists = (
    at: number,
    instances: ReturnType<typeof instance>[],
    gh: string[] = [NAME],
    busy = true,
  ) => ({
    github: { at, runners: new Map(gh.map((n) => [n, ghRunner(n, { busy, status: 'offline' })])) },
    instances: { at, items: new Map(instances.map((i) => [i.name, i])) },
  });

  it('a busy runner is finished naming its job; its registration is removed and its instance deleted', () => {
    const s = snapshot({
      runners: [
        runner({
          name: NAME,
          state: 'busy',
          stateChangedAt: T,
          githubId: 5,
          job: { id: 7, status: 'in_progress', at: T },
        }),
      ],
      ...lists(T + SECOND, [interrupted(T + SECOND)]),
    });
    const a = run(s, { rerunInterruptedJobs: true }, T + 2 * SECOND);
    expect(byType(a, 'mark-runner')).toEqual([
      {
        type: 'mark-runner',
        scaleSet: 'linux',
        name: NAME,
        state: 'finished',
        reason: 'instance interrupted while running job 7',
        failure: false,
      },
    ]);
    // GitHub still counts the job as running: the registration is asked to go regardless (the instance is gone).
    expect(byType(a, 'deregister-runner')).toMatchObject([{ name: NAME, checkBusy: false }]);
    expect(byType(a, 'delete-instance')).toMatchObject([{ name: NAME }]);
    expect(byType(a, 'rerun-job')).toEqual([]);
  });

  it('an interruption does not count as a failure of the scale set', () => {
    const s = snapshot({
      runners: [runner({ name: NAME, state: 'starting', stateChangedAt: T })],
      ...lists(T + SECOND, [interrupted(T + SECOND)], []),
    });
    expect(byType(run(s, {}, T + 2 * SECOND), 'mark-runner')).toMatchObject([
      { state: 'failed', failure: false, reason: expect.stringContaining('interrupted') },
    ]);
  });

  const gone = (over: Partial<Parameters<typeof runner>[0]> = {}) =>
    runner({
      name: NAME,
      state: 'finished',
      reason: 'instance interrupted while running job 7',
      stateChangedAt: T,
      githubId: 5,
      instanceDeletedAt: T + SECOND,
      registrationDeletedAt: T + SECOND,
      job: { id: 7, status: 'completed', conclusion: 'failure', at: T + SECOND },
      ...over,
    });
  const after = (r: ReturnType<typeof gone>) => snapshot({ runners: [r], ...lists(T + 2 * SECOND, [], []) });

  it('opted in: once registration and instance are gone and GitHub ended the job, the job is re-run', () => {
    const a = run(after(gone()), { rerunInterruptedJobs: true }, T + 3 * SECOND);
    expect(byType(a, 'rerun-job')).toEqual([{ type: 'rerun-job', scaleSet: 'linux', name: NAME, jobId: 7 }]);
    expect(byType(a, 'mark-runner')).toEqual([]);
    // While GitHub has not ended the job (it has not noticed the runner is gone), nothing is asked yet.
    const running = after(gone({ job: { id: 7, status: 'in_progress', at: T } }));
    expect(byType(run(running, { rerunInterruptedJobs: true }, T + 3 * SECOND), 'rerun-job')).toEqual([]);
    expect(byType(run(running, { rerunInterruptedJobs: true }, T + 3 * SECOND), 'mark-runner')).toEqual([]);
  });

  it('then the record goes; without the option it goes at once; after 24 h it gives up', () => {
    const done = gone({ reason: 'job 7 re-run after the instance running it was interrupted' });
    expect(
      byType(run(after(done), { rerunInterruptedJobs: true }, T + 3 * SECOND), 'mark-runner'),
    ).toMatchObject([
      { state: 'deleted', reason: 'job 7 re-run after the instance running it was interrupted' },
    ]);
    const a = run(after(gone()), {}, T + 3 * SECOND);
    expect(byType(a, 'rerun-job')).toEqual([]);
    expect(byType(a, 'mark-runner')).toMatchObject([{ state: 'deleted' }]);
    const late = run(
      after(gone({ job: { id: 7, status: 'in_progress', at: T } })),
      { rerunInterruptedJobs: true },
      T + 25 * 60 * MINUTE,
    );
    expect(byType(late, 'mark-runner')).toMatchObject([
      {
        state: 'deleted',
        reason:
          'job 7 not re-run after the instance running it was interrupted: the job did not end within 24 h',
      },
    ]);
  });

  it('opted in: a job GitHub failed waits for an instance list newer than the news, which may show an interruption', () => {
    const failedJob = { id: 7, status: 'completed' as const, conclusion: 'failure', at: T + SECOND };
    const busy = runner({ name: NAME, state: 'busy', stateChangedAt: T, githubId: 5, job: failedJob });
    // The last list (taken when the failure was recorded) still shows the instance running.
    const stale = snapshot({
      runners: [busy],
      ...lists(T + SECOND, [instance(NAME, 'running', T + SECOND)], [NAME], false),
    });
    expect(run(stale, { rerunInterruptedJobs: true }, T + 2 * SECOND)).toEqual([]);
    // Without the option a failed job ends the runner at once, as before.
    expect(byType(run(stale, {}, T + 2 * SECOND), 'mark-runner')).toMatchObject([
      { state: 'finished', reason: 'job 7 completed' },
    ]);
    const fresh = snapshot({ runners: [busy], ...lists(T + 2 * SECOND, [interrupted(T + 2 * SECOND)]) });
    expect(byType(run(fresh, { rerunInterruptedJobs: true }, T + 3 * SECOND), 'mark-runner')).toMatchObject([
      { state: 'finished', reason: 'instance interrupted while running job 7' },
    ]);
  });
});
