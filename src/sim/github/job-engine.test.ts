import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { JobAction } from './job-engine.js';
import { JobEngine } from './job-engine.js';
import type { Job, Runner, ScopeRef } from './model.js';
import { RunnerRegistry } from './runner-registry.js';
import { RunnerService } from './runners.js';
import { World } from './world.js';

const { publicKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });

function setup() {
  const events: [JobAction, number, string | null][] = [];
  let now = 1_000;
  const world = new World(['octo-org', 'other'], 'octo-ent', [], now);
  const engine = new JobEngine({
    now: () => now,
    enterprise: 'octo-ent',
    emit: (a, j) => events.push([a, j.id, j.runnerName]),
  });
  const runners = new RunnerService({
    registry: new RunnerRegistry(),
    world,
    engine,
    now: () => now,
    jitExpiryMs: 100,
    offlineAfterMs: 50,
  });
  const runner = (name: string, labels: string[], scope: ScopeRef = { kind: 'org', org: 'octo-org' }) =>
    runners.create({
      scope,
      name,
      group: world.groups()[0]!,
      labels,
      readOnlyLabels: ['self-hosted'],
      ephemeral: true,
      mode: 'jit',
      publicKey,
    });
  const jobs = (labels: string[], owner = 'octo-org', repo = 'app', count = 1) =>
    engine.createJobs({ repo: world.repo(owner, repo, now)!, labels, durationMs: 10, count });
  const wait = (r: Runner) => {
    const got: (Job | 'gone' | null)[] = [];
    engine.wait(r, (x) => got.push(x));
    return got;
  };
  return { engine, runners, runner, jobs, wait, events, world, tick: (ms: number) => (now += ms) };
}

describe('JobEngine matching', () => {
  it('gives a job to any idle runner whose labels plus self-hosted cover it, case-insensitively', () => {
    const { runner, jobs, wait, events } = setup();
    const small = runner('small', ['linux']);
    const big = runner('big', ['Linux', 'GPU']);
    const gotSmall = wait(small);
    const gotBig = wait(big);
    const [job] = jobs(['self-hosted', 'linux', 'gpu']);
    expect(gotSmall).toEqual([]);
    expect(gotBig).toEqual([job]);
    expect(job!.status).toBe('in_progress');
    expect(events.map(([a]) => a)).toEqual(['queued', 'in_progress']);
    expect(events[0]![2]).toBeNull();
  });

  it('hands the oldest matching queued job to a runner that starts waiting, and respects scope', () => {
    const { runner, jobs, wait, world } = setup();
    const [first] = jobs(['linux'], 'other', 'x');
    const [second] = jobs(['linux']);
    const [third] = jobs(['linux']);
    expect(wait(runner('org-runner', ['linux']))).toEqual([second]);
    expect(
      wait(runner('repo-runner', ['linux'], { kind: 'repo', owner: 'octo-org', repo: 'elsewhere' })),
    ).toEqual([]);
    expect(wait(runner('ent-runner', ['linux'], { kind: 'enterprise', enterprise: 'octo-ent' }))).toEqual([
      first,
    ]);
    expect(third!.status).toBe('queued');
    expect(world.org('OTHER')).toBeDefined();
  });

  it('fails a lost job after the timeout and frees its runner', () => {
    const { runner, jobs, wait, engine, runners, tick } = setup();
    const r = runner('r', ['a']);
    runners.goOnline(r, 's1');
    wait(r);
    const [job] = jobs(['a']);
    expect(r.busy).toBe(true);
    runners.goOffline(r);
    engine.sweepLost(500, () => r);
    expect(job!.status).toBe('in_progress');
    tick(500);
    engine.sweepLost(500, () => r);
    expect(job).toMatchObject({ status: 'completed', conclusion: 'failure' });
    expect(r.busy).toBe(false);
  });

  it('tells a waiting runner it is gone when removed, and expires unused JIT registrations', () => {
    const { runner, wait, runners, tick } = setup();
    const r = runner('r', ['a']);
    const got = wait(r);
    runners.remove(r);
    expect(got).toEqual(['gone']);
    const unused = runner('unused', ['a']);
    tick(101);
    runners.sweep();
    expect(runners.isRegistered(unused)).toBe(false);
  });
});

describe('JobEngine re-runs', () => {
  it('re-runs a job only once its run has ended: a new attempt, a new job queued and handed out like any other', () => {
    const { engine, runner, jobs, wait, events } = setup();
    const [first, second] = jobs(['linux'], 'octo-org', 'app', 2);
    const worker = runner('w1', ['linux']);
    expect(wait(worker)).toEqual([first]);
    engine.complete(first!, 'failure', worker);
    // The run still has a queued job: GitHub refuses while the run is in progress.
    expect(engine.rerun(first!)).toBe('run-in-progress');
    engine.cancel(second!);
    const fresh = engine.rerun(first!);
    if (typeof fresh === 'string') throw new Error(fresh);
    expect(fresh).toMatchObject({ runId: first!.runId, runAttempt: 2, name: first!.name, status: 'queued' });
    expect(fresh.id).not.toBe(first!.id);
    expect(first!).toMatchObject({ status: 'completed', conclusion: 'failure', runAttempt: 1 });
    const run = engine.run(first!.runId)!;
    expect(run.attempt).toBe(2);
    expect(engine.jobsOf(run).map((j) => j.id)).toEqual([fresh.id, second!.id]);
    expect(events.at(-1)).toEqual(['queued', fresh.id, null]);
    const next = runner('w2', ['linux']);
    expect(wait(next)).toEqual([fresh]);
    expect(fresh.runnerName).toBe('w2');
    expect(engine.rerun(fresh)).toBe('run-in-progress');
  });
});
