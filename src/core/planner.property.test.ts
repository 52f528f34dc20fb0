/**
 * Property tests of the invariants in docs/core.md, one describe per invariant. Each invariant is checked twice:
 *  - on random snapshots: whatever the planner is shown, its actions respect the invariant;
 *  - on random sequences of events run through the world model (test/support/core/world.ts): plan -> execute -> the
 *    world moves (jobs, boots, failures, crashes, lost or duplicated webhooks) -> plan ...
 * Jobs come from repositories in and out of the scale sets' scopes (another owner's too); a last describe checks
 * that those out of scope never get a runner and are counted unroutable.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import type { ScaleSetConfig } from './fleet-config.js';
import type { RunnerState } from './types.js';
import { RUNNER_STATES } from './types.js';
import type { Action, JobSnapshot, RunnerSnapshot, ScaleSetSnapshot } from './plan-types.js';
import type { InstanceState } from '../providers/provider.js';
import { planScaleSet } from './planner.js';
import { isRunnerOf, seededRandom } from './names.js';
import { MINUTE, SECOND, scaleSetConfig, timings } from '../../test/support/core/planner.js';
import { JOB_REPOS, World, type WorldEvent } from '../../test/support/core/world.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'rf-props-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const NOW = 100 * 60 * MINUTE;
const ACTIVE: ReadonlySet<RunnerState> = new Set(['requested', 'creating', 'starting', 'idle', 'busy']);
const SEQ_RUNS = Number(process.env.RF_PROPERTY_RUNS ?? 40);
const SNAP_RUNS = Number(process.env.RF_PROPERTY_RUNS ?? 300);
const SEQ_TIMEOUT = 600_000;

// ---- random snapshots ----------------------------------------------------------------------------------------------

const arbSet: fc.Arbitrary<ScaleSetConfig> = fc
  .record({
    minIdle: fc.integer({ min: 0, max: 3 }),
    extra: fc.integer({ min: 0, max: 6 }),
    persistent: fc.boolean(),
  })
  .map(({ minIdle, extra, persistent }) =>
    scaleSetConfig({
      minIdle,
      max: minIdle + extra,
      ephemeral: !persistent,
      registration: persistent ? 'token' : 'jit',
    }),
  );

const ago = (max: number) => fc.integer({ min: 0, max }).map((d) => NOW - d);
const maybeAgo = (max: number) => fc.option(ago(max), { nil: null });
const instanceStates: InstanceState[] = ['pending', 'running', 'succeeded', 'failed'];

const arbRunner = (name: string): fc.Arbitrary<RunnerSnapshot> =>
  fc
    .record({
      state: fc.constantFrom(...RUNNER_STATES),
      githubId: fc.option(fc.integer({ min: 1, max: 1_000 }), { nil: null }),
      createdAt: ago(40 * MINUTE),
      changed: fc.integer({ min: 0, max: 40 * MINUTE }),
      instanceDeletedAt: maybeAgo(40 * MINUTE),
      registrationDeletedAt: maybeAgo(40 * MINUTE),
      job: fc.option(
        fc.record({
          id: fc.integer({ min: 1, max: 40 }),
          status: fc.constantFrom('queued' as const, 'in_progress' as const, 'completed' as const),
          at: ago(40 * MINUTE),
        }),
        { nil: null },
      ),
      inFlight: fc.boolean(),
      reason: fc.constant(null),
    })
    .map(({ changed, createdAt, ...r }) => ({
      ...r,
      name,
      scaleSet: 'linux',
      createdAt,
      stateChangedAt: Math.max(createdAt, NOW - changed),
    }));

const arbJob = (id: number): fc.Arbitrary<JobSnapshot> =>
  fc.record({
    id: fc.constant(id),
    owner: fc.constant('o'),
    repo: fc.constant('r'),
    status: fc.constantFrom('queued' as const, 'in_progress' as const),
    queuedAt: ago(20 * MINUTE),
    startedAt: maybeAgo(10 * MINUTE),
    checkedAt: maybeAgo(10 * MINUTE),
    inFlight: fc.boolean(),
  });

const arbSnapshot: fc.Arbitrary<ScaleSetSnapshot> = fc
  .record({
    runnerCount: fc.integer({ min: 0, max: 12 }),
    jobCount: fc.integer({ min: 0, max: 12 }),
    extraNames: fc.integer({ min: 0, max: 4 }),
    seed: fc.integer(),
  })
  .chain(({ runnerCount, jobCount, extraNames }) => {
    const names = Array.from({ length: runnerCount }, (_, i) => `linux-r${String(i).padStart(7, '0')}`);
    const others = Array.from({ length: extraNames }, (_, i) => `linux-x${String(i).padStart(7, '0')}`);
    const all = [...names, ...others, 'linux-not-ours-at-all', 'linuxx-abcdefgh'];
    return fc.record({
      runners: fc.tuple(...names.map(arbRunner)).map((rs) => rs as RunnerSnapshot[]),
      jobs: fc
        .tuple(...Array.from({ length: jobCount }, (_, i) => arbJob(i + 1)))
        .map((js) => js as JobSnapshot[]),
      ghAt: maybeAgo(10 * MINUTE),
      instAt: maybeAgo(10 * MINUTE),
      gh: fc.subarray(all).chain((listed) =>
        fc.tuple(
          ...listed.map((name, i) =>
            fc.record({
              id: fc.constant(i + 1),
              name: fc.constant(name),
              status: fc.constantFrom('online' as const, 'offline' as const),
              busy: fc.boolean(),
              labels: fc.constant([] as string[]),
              firstSeenAt: ago(30 * MINUTE),
            }),
          ),
        ),
      ),
      inst: fc.subarray(all).chain((listed) =>
        fc.tuple(
          ...listed.map((name) =>
            fc.record({
              name: fc.constant(name),
              fleet: fc.constant('runner-fleet'),
              scaleSet: fc.constant('linux'),
              state: fc.constantFrom(...instanceStates),
              createdAt: ago(40 * MINUTE),
              observedAt: ago(40 * MINUTE),
            }),
          ),
        ),
      ),
      backoff: fc.oneof(
        fc.constant({ failures: 0, until: 0 }),
        fc.record({
          failures: fc.integer({ min: 1, max: 6 }),
          until: fc.integer({ min: NOW - MINUTE, max: NOW + MINUTE }),
        }),
      ),
    });
  })
  .map((s): ScaleSetSnapshot => ({
    name: 'linux',
    runners: s.runners,
    jobs: s.jobs,
    // runner lists are all-or-nothing: no list, no runners
    github: { at: s.ghAt, runners: new Map(s.ghAt === null ? [] : s.gh.map((g) => [g.name, g])) },
    instances: { at: s.instAt, items: new Map(s.inst.map((i) => [i.name, i])) },
    backoff: s.backoff,
  }));

function rec(name: string, over: Partial<RunnerSnapshot>): RunnerSnapshot {
  return {
    name,
    scaleSet: 'linux',
    state: 'starting',
    reason: null,
    githubId: 5,
    createdAt: NOW - 60 * MINUTE,
    stateChangedAt: NOW - 30 * MINUTE,
    instanceDeletedAt: null,
    registrationDeletedAt: null,
    job: null,
    inFlight: false,
    ...over,
  };
}

function planOf(s: ScaleSetSnapshot, set: ScaleSetConfig, now = NOW): Action[] {
  return planScaleSet(s, set, timings, now, { random: seededRandom(7) });
}

/** Record states after the plan's marks (what the executor writes before any call). */
function statesAfter(s: ScaleSetSnapshot, actions: readonly Action[]): Map<string, RunnerState> {
  const states = new Map(s.runners.map((r) => [r.name, r.state]));
  for (const a of actions) if (a.type === 'mark-runner') states.set(a.name, a.state);
  return states;
}

/** The records as the executor leaves them after writing the plan's marks. */
function applyMarks(runners: readonly RunnerSnapshot[], actions: readonly Action[]): RunnerSnapshot[] {
  return runners.map((r) => {
    let out = r;
    for (const a of actions) {
      if (a.type !== 'mark-runner' || a.name !== r.name) continue;
      out = {
        ...out,
        state: a.state,
        reason: a.reason,
        stateChangedAt: a.state !== out.state ? NOW : out.stateChangedAt,
        instanceDeletedAt: a.instanceGone ? (out.instanceDeletedAt ?? NOW) : out.instanceDeletedAt,
        registrationDeletedAt: a.registrationGone ? NOW : out.registrationDeletedAt,
        githubId: a.githubId ?? out.githubId,
      };
    }
    return out;
  });
}

const creates = (actions: readonly Action[], resume?: boolean) =>
  actions.filter(
    (a): a is Extract<Action, { type: 'create-runner' }> =>
      a.type === 'create-runner' && (resume === undefined || a.resume === resume),
  );

// ---- event sequences -----------------------------------------------------------------------------------------------

const arbWorldSets: fc.Arbitrary<ScaleSetConfig[]> = fc
  .record({
    aMin: fc.integer({ min: 0, max: 2 }),
    aExtra: fc.integer({ min: 1, max: 4 }),
    withB: fc.boolean(),
    bMin: fc.integer({ min: 0, max: 2 }),
    bExtra: fc.integer({ min: 1, max: 3 }),
    bGpu: fc.boolean(),
    bEphemeral: fc.boolean(),
    aRerun: fc.boolean(),
    /** `big` serves one repository (octo-org/lib) instead of the whole organization. */
    bRepo: fc.boolean(),
  })
  .map((o) => {
    const a = scaleSetConfig({
      name: 'lin',
      labels: ['linux', 'x64'],
      minIdle: o.aMin,
      max: o.aMin + o.aExtra,
      rerunInterruptedJobs: o.aRerun,
    });
    if (!o.withB) return [a];
    const b = scaleSetConfig({
      name: 'big',
      labels: o.bGpu ? ['linux', 'x64', 'gpu'] : ['linux', 'arm64'],
      minIdle: o.bMin,
      max: o.bMin + o.bExtra,
      ephemeral: o.bEphemeral,
      registration: 'token',
      priority: 1,
      ...(o.bRepo ? { scope: { repo: 'octo-org/lib' } } : {}),
    });
    return [a, b];
  });

const arbEvent: fc.Arbitrary<WorldEvent> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      t: fc.constant('job' as const),
      labels: fc.nat(5),
      copies: fc.integer({ min: 1, max: 3 }),
      newId: fc.boolean(),
      // JOB_REPOS: octo-org/app (twice as likely), octo-org/lib, other-org/app.
      repo: fc.nat(3),
    }),
  },
  { weight: 6, arbitrary: fc.record({ t: fc.constant('deliver' as const), i: fc.nat(30) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('drop' as const), i: fc.nat(30) }) },
  { weight: 7, arbitrary: fc.constant({ t: 'plan' as const }) },
  {
    weight: 9,
    arbitrary: fc.record({
      t: fc.constant('release' as const),
      i: fc.nat(30),
      outcome: fc.constantFrom(
        'ok' as const,
        'ok' as const,
        'ok' as const,
        'ok' as const,
        'fail' as const,
        'lost' as const,
      ),
    }),
  },
  { weight: 3, arbitrary: fc.constant({ t: 'resync' as const }) },
  {
    weight: 3,
    arbitrary: fc.record({
      t: fc.constant('tick' as const),
      ms: fc.constantFrom(SECOND, 10 * SECOND, 30 * SECOND, MINUTE, 5 * MINUTE, 11 * MINUTE),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      t: fc.constant('boot' as const),
      i: fc.nat(30),
      ok: fc.oneof(fc.constant(true), fc.constant(true), fc.constant(false)),
    }),
  },
  { weight: 4, arbitrary: fc.record({ t: fc.constant('assign' as const), i: fc.nat(30) }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('finish' as const), i: fc.nat(30) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('cancel' as const), i: fc.nat(30) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('kill' as const), i: fc.nat(30) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('interrupt' as const), i: fc.nat(30) }) },
  {
    weight: 1,
    arbitrary: fc.record({
      t: fc.constant('crash' as const),
      reached: fc.array(fc.boolean(), { minLength: 1, maxLength: 8 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('orphan' as const), set: fc.nat(1) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('stray' as const), set: fc.nat(1) }) },
);

const arbScenario = fc.record({
  sets: arbWorldSets,
  events: fc.array(arbEvent, { minLength: 20, maxLength: 120 }),
  seed: fc.integer({ min: 1, max: 2 ** 30 }),
  watch: fc.boolean(),
});

interface RunOptions {
  /** Webhooks may be lost. */
  readonly lossy?: boolean;
  /** Deliver every webhook (all copies) right after the event that caused it. */
  readonly prompt?: boolean;
  /** Checked after every event. */
  readonly step?: (w: World) => void;
  /** Heal the world and let time pass at the end. */
  readonly settle?: boolean;
}

async function runScenario(
  scenario: { sets: ScaleSetConfig[]; events: WorldEvent[]; seed: number; watch: boolean },
  options: RunOptions,
): Promise<World> {
  const world = new World({
    sets: scenario.sets,
    controller: timings,
    dir,
    seed: scenario.seed,
    watch: scenario.watch,
  });
  try {
    for (const e of scenario.events) {
      if (e.t === 'drop' && !options.lossy) continue;
      await world.apply(e, options.lossy ?? false);
      if (options.prompt) world.deliverAll();
      options.step?.(world);
    }
    if (options.settle) await world.settle();
    return world;
  } catch (err) {
    world.close();
    throw err;
  }
}

async function withWorld(
  scenario: Parameters<typeof runScenario>[0],
  options: RunOptions,
  check: (w: World) => void,
): Promise<void> {
  const world = await runScenario(scenario, options);
  try {
    check(world);
  } finally {
    world.close();
  }
}

// ---- 1 -------------------------------------------------------------------------------------------------------------

describe('invariant 1: never more than max runners of a scale set in any non-deleted state', () => {
  it('random snapshots: the plan never takes the non-deleted count above max', () => {
    fc.assert(
      fc.property(arbSnapshot, arbSet, (s, set) => {
        const actions = planOf(s, set);
        const after = statesAfter(s, actions);
        const before = s.runners.filter((r) => r.state !== 'deleted').length;
        const kept = [...after.values()].filter((st) => st !== 'deleted').length;
        expect(kept + creates(actions, false).length).toBeLessThanOrEqual(Math.max(set.max, before));
        if (kept >= set.max) expect(creates(actions, false)).toEqual([]);
      }),
      { numRuns: SNAP_RUNS },
    );
  });

  it(
    'event sequences: records and instances of each scale set stay within max',
    async () => {
      await fc.assert(
        fc.asyncProperty(arbScenario, async (scenario) => {
          await withWorld(
            scenario,
            {
              lossy: true,
              step: (w) => {
                for (const set of w.sets) {
                  expect(w.liveRecords(set.name).length).toBeLessThanOrEqual(set.max);
                  const ours = [...w.instances.values()].filter(
                    (i) => i.scaleSet === set.name && w.created.has(i.name),
                  );
                  expect(ours.length).toBeLessThanOrEqual(set.max);
                }
              },
            },
            () => undefined,
          );
        }),
        { numRuns: SEQ_RUNS },
      );
    },
    SEQ_TIMEOUT,
  );
});

// ---- 2 -------------------------------------------------------------------------------------------------------------

describe('invariant 2: never delete an instance whose runner is busy', () => {
  it('random snapshots: no delete-instance for a runner busy in the record or in a current GitHub list', () => {
    fc.assert(
      fc.property(arbSnapshot, arbSet, (s, set) => {
        const actions = planOf(s, set);
        const after = statesAfter(s, actions);
        const records = new Map(s.runners.map((r) => [r.name, r]));
        for (const a of actions) {
          if (a.type !== 'delete-instance') continue;
          const inst = s.instances.items.get(a.name);
          const stopped = inst?.state === 'succeeded' || inst?.state === 'failed';
          expect(after.get(a.name)).not.toBe('busy');
          const gh = s.github.runners.get(a.name);
          const r = records.get(a.name);
          // a registration removed after that list was taken was not busy then (GitHub refuses that)
          // A list is stale about `busy` when it predates our removal of the registration (GitHub refuses to
          // remove a busy runner) or the job's completion we recorded.
          const listStale =
            s.github.at === null ||
            (r?.registrationDeletedAt != null && r.registrationDeletedAt >= s.github.at) ||
            (r?.job?.status === 'completed' && r.job.at > s.github.at) ||
            // deleted means its registration was known gone (removed, or absent from a later list)
            (r?.state === 'deleted' && r.stateChangedAt > s.github.at);
          if (!stopped && !listStale) {
            if (gh?.busy) {
              throw new Error(
                `deleted ${a.name} busy in a list at ${s.github.at}: ${JSON.stringify(r ?? null)}`,
              );
            }
          }
        }
        for (const a of actions) {
          if (a.type === 'deregister-runner' && a.retire) expect(a.checkBusy).toBe(true);
        }
      }),
      { numRuns: SNAP_RUNS },
    );
  });

  it(
    'event sequences: the provider never deletes a running instance whose runner runs a job',
    async () => {
      await fc.assert(
        fc.asyncProperty(arbScenario, async (scenario) => {
          await withWorld(scenario, { lossy: true, settle: true }, (w) => expect(w.violations).toEqual([]));
        }),
        { numRuns: SEQ_RUNS },
      );
    },
    SEQ_TIMEOUT,
  );
});

// ---- 3 -------------------------------------------------------------------------------------------------------------

describe('invariant 3: one pending job causes at most one new runner, however many times its webhook arrives', () => {
  it('random snapshots: creates stay within the missing capacity, and planning again creates nothing more', () => {
    fc.assert(
      fc.property(arbSnapshot, arbSet, (s, set) => {
        const actions = planOf(s, set);
        const after = statesAfter(s, actions);
        const inFlight = new Set(s.runners.filter((r) => r.inFlight).map((r) => r.name));
        let active = 0;
        let busy = 0;
        for (const [name, st] of after) {
          if (st === 'idle' && inFlight.has(name)) continue; // being retired
          if (ACTIVE.has(st)) active++;
          if (st === 'busy') busy++;
        }
        const queued = s.jobs.filter((j) => j.status === 'queued').length;
        const fresh = creates(actions, false).length;
        expect(fresh).toBeLessThanOrEqual(Math.max(0, queued + busy + set.minIdle - active));
        // Each webhook wakes a pass. Apply this pass (its marks written, its calls in flight) and plan again.
        const working = new Set(
          actions.flatMap((a) =>
            a.type === 'mark-runner' || a.type === 'wake-at' || a.type === 'check-job' ? [] : [a.name],
          ),
        );
        const next: ScaleSetSnapshot = {
          ...s,
          runners: [
            ...applyMarks(s.runners, actions).map((r) => ({
              ...r,
              inFlight: r.inFlight || working.has(r.name),
            })),
            ...creates(actions, false).map((c): RunnerSnapshot => ({
              name: c.name,
              scaleSet: 'linux',
              state: 'requested',
              reason: null,
              githubId: null,
              createdAt: NOW,
              stateChangedAt: NOW,
              instanceDeletedAt: null,
              registrationDeletedAt: null,
              job: null,
              inFlight: true,
            })),
          ],
        };
        // A second pass creates nothing for the same jobs; it may only replace runners that it saw leave.
        const again = planOf(next, set);
        if (!again.some((a) => a.type === 'mark-runner')) expect(creates(again, false)).toEqual([]);
      }),
      { numRuns: SNAP_RUNS },
    );
  });

  it(
    'event sequences: duplicated and reordered webhooks create exactly what single deliveries create',
    async () => {
      const single = (events: WorldEvent[]) => events.map((e) => (e.t === 'job' ? { ...e, copies: 1 } : e));
      await fc.assert(
        fc.asyncProperty(arbScenario, async (scenario) => {
          const once = await runScenario({ ...scenario, events: single(scenario.events) }, {});
          const many = await runScenario(scenario, {});
          try {
            // Copies are queued behind the original, so the first delivery happens at the same point in both runs.
            expect(many.created.size).toBe(once.created.size);
            expect(many.plans.map((p) => p.actions)).toEqual(once.plans.map((p) => p.actions));
          } finally {
            once.close();
            many.close();
          }
        }),
        { numRuns: SEQ_RUNS },
      );
    },
    SEQ_TIMEOUT,
  );

  it(
    'event sequences: runners created <= jobs + minIdle + runners that ended without a job + jobs taken across sets',
    async () => {
      await fc.assert(
        fc.asyncProperty(arbScenario, async (scenario) => {
          const minIdle = scenario.sets.reduce((n, s) => n + s.minIdle, 0);
          await withWorld(
            scenario,
            {
              prompt: true,
              step: (w) =>
                expect(w.created.size).toBeLessThanOrEqual(
                  w.routableJobs() + minIdle + w.endedWithoutJob() + w.jobsTakenAcrossSets(),
                ),
            },
            () => undefined,
          );
        }),
        { numRuns: SEQ_RUNS },
      );
    },
    SEQ_TIMEOUT,
  );
});

// ---- 4 -------------------------------------------------------------------------------------------------------------

describe('invariant 4: a runner not online within bootstrapTimeout is deleted with its registration', () => {
  it('random starting runners: past the deadline, in a list taken after it, offline -> bootstrap-timeout', () => {
    const arbCase = fc.record({
      set: arbSet,
      changed: fc.integer({ min: 0, max: 30 * MINUTE }),
      ghDelay: fc.integer({ min: 0, max: 30 * MINUTE }),
      listed: fc.boolean(),
      jit: fc.boolean(),
      instance: fc.constantFrom('none', 'pending', 'running', 'failed') as fc.Arbitrary<
        'none' | InstanceState
      >,
    });
    fc.assert(
      fc.property(arbCase, ({ set, changed, ghDelay, listed, instance, jit }) => {
        const stateChangedAt = NOW - changed;
        const ghAt = Math.min(NOW, stateChangedAt + ghDelay);
        const name = 'linux-r0000001';
        const cfg = {
          ...set,
          registration: jit ? ('jit' as const) : ('token' as const),
          ephemeral: jit ? true : set.ephemeral,
        };
        const s: ScaleSetSnapshot = {
          name: 'linux',
          runners: [
            {
              name,
              scaleSet: 'linux',
              state: 'starting',
              reason: null,
              githubId: 5,
              createdAt: stateChangedAt - SECOND,
              stateChangedAt,
              instanceDeletedAt: null,
              registrationDeletedAt: null,
              job: null,
              inFlight: false,
            },
          ],
          jobs: [],
          github: {
            at: ghAt,
            runners: new Map(
              listed
                ? [
                    [
                      name,
                      {
                        id: 5,
                        name,
                        status: 'offline' as const,
                        busy: false,
                        labels: [],
                        firstSeenAt: stateChangedAt,
                      },
                    ],
                  ]
                : [],
            ),
          },
          instances: {
            at: null,
            items: new Map(
              instance === 'none'
                ? []
                : [
                    [
                      name,
                      {
                        name,
                        fleet: 'runner-fleet',
                        scaleSet: 'linux',
                        state: instance,
                        createdAt: stateChangedAt,
                        observedAt: NOW,
                      },
                    ],
                  ],
            ),
          },
          backoff: { failures: 0, until: 0 },
        };
        const actions = planOf(s, cfg);
        const mark = actions.find((a) => a.type === 'mark-runner' && a.name === name);
        const deadline = stateChangedAt + cfg.bootstrapTimeout;
        // A JIT (so ephemeral) registration gone: GitHub removed it after a job whose webhooks have not come yet.
        const vanished = jit && !listed && ghAt > stateChangedAt;
        if (instance === 'failed') {
          expect(mark).toMatchObject({ state: 'failed', failure: true });
        } else if (vanished) {
          expect(mark).toMatchObject({ state: 'finished', registrationGone: true });
          expect(mark).not.toMatchObject({ failure: true });
        } else if (NOW >= deadline && ghAt >= deadline) {
          expect(mark).toMatchObject({ state: 'bootstrap-timeout', failure: true });
        } else {
          expect(mark).toBeUndefined();
          // before the deadline it asks to be woken then; after it, the next runner list decides
          if (NOW < deadline)
            expect(actions).toContainEqual({ type: 'wake-at', scaleSet: 'linux', at: deadline });
        }
      }),
      { numRuns: SNAP_RUNS },
    );
  });

  it('random snapshots: a starting runner past its deadline in a later list times out; timed-out ones are cleaned', () => {
    fc.assert(
      fc.property(arbSnapshot, arbSet, (s, set) => {
        const actions = planOf(s, set);
        for (const r of s.runners) {
          if (r.inFlight) continue;
          const gh = s.github.runners.get(r.name);
          const inst = s.instances.items.get(r.name);
          const deadline = r.stateChangedAt + set.bootstrapTimeout;
          const quiet =
            r.state === 'starting' &&
            r.instanceDeletedAt === null &&
            r.job === null &&
            s.github.at !== null &&
            s.github.at >= deadline &&
            NOW >= deadline &&
            gh !== undefined &&
            gh.status === 'offline' &&
            !gh.busy &&
            (inst === undefined ||
              inst.observedAt < r.stateChangedAt ||
              inst.state === 'pending' ||
              inst.state === 'running') &&
            !(s.instances.at !== null && s.instances.at > r.stateChangedAt && inst === undefined);
          if (quiet) {
            expect(actions).toContainEqual(
              expect.objectContaining({
                type: 'mark-runner',
                name: r.name,
                state: 'bootstrap-timeout',
                failure: true,
              }),
            );
          }
          if (
            r.state === 'bootstrap-timeout' &&
            r.githubId !== null &&
            r.registrationDeletedAt === null &&
            !(gh?.busy ?? false)
          ) {
            // its registration goes (or, when the list shows it already gone, the instance does)
            const touched = actions.some(
              (a) =>
                (a.type === 'deregister-runner' ||
                  a.type === 'delete-instance' ||
                  a.type === 'mark-runner') &&
                a.name === r.name,
            );
            expect(touched).toBe(true);
          }
        }
      }),
      { numRuns: SNAP_RUNS },
    );
  });

  it(
    'event sequences: after the world settles, no instance without an online runner and no such registration remain',
    async () => {
      await fc.assert(
        fc.asyncProperty(arbScenario, async (scenario) => {
          await withWorld(scenario, { lossy: true, settle: true }, (w) => {
            for (const i of w.instances.values()) {
              const r = w.runners.get(i.name);
              expect({ instance: i.name, state: i.state, online: r?.online ?? false }).toEqual({
                instance: i.name,
                state: 'running',
                online: true,
              });
            }
            for (const set of w.sets) {
              for (const r of w.store.runners(set.name)) expect(r.state).not.toBe('starting');
            }
          });
        }),
        { numRuns: SEQ_RUNS },
      );
    },
    SEQ_TIMEOUT,
  );
});

// ---- 5 -------------------------------------------------------------------------------------------------------------

describe('invariant 5: orphan registrations and runner-less instances are removed (both directions)', () => {
  it('random snapshots: orphans past the grace period are deregistered, stray instances deleted; nothing foreign', () => {
    fc.assert(
      fc.property(arbSnapshot, arbSet, (s, set) => {
        const actions = planOf(s, set);
        const records = new Map(s.runners.map((r) => [r.name, r]));
        for (const a of actions) {
          if (a.type === 'deregister-runner') expect(isRunnerOf('linux', a.name)).toBe(true);
        }
        for (const g of s.github.runners.values()) {
          const r = records.get(g.name);
          if (!isRunnerOf('linux', g.name) || (r !== undefined && r.state !== 'deleted')) continue;
          if (r !== undefined && (r.inFlight || (s.github.at ?? 0) <= r.stateChangedAt)) continue;
          const inst = s.instances.items.get(g.name);
          const hosted = inst !== undefined && !(r !== undefined && inst.observedAt <= r.stateChangedAt);
          const due = Math.max(g.firstSeenAt, r?.stateChangedAt ?? 0) + timings.orphanGracePeriod;
          if (!hosted && !g.busy && s.instances.at !== null && s.instances.at > g.firstSeenAt && NOW >= due) {
            expect(actions).toContainEqual(
              expect.objectContaining({ type: 'deregister-runner', name: g.name, runnerId: g.id }),
            );
          }
        }
        for (const i of s.instances.items.values()) {
          const r = records.get(i.name);
          if (r !== undefined && (r.state !== 'deleted' || r.inFlight || i.observedAt <= r.stateChangedAt))
            continue;
          const gh = s.github.runners.get(i.name);
          const ghStale = r !== undefined && (s.github.at ?? 0) <= r.stateChangedAt;
          if (
            (gh === undefined || ghStale) &&
            s.github.at !== null &&
            s.github.at > i.createdAt &&
            NOW >= i.createdAt + set.bootstrapTimeout
          ) {
            expect(actions).toContainEqual(
              expect.objectContaining({ type: 'delete-instance', name: i.name }),
            );
          }
        }
      }),
      { numRuns: SNAP_RUNS },
    );
  });

  it(
    'event sequences: after the world settles, every registration and instance belongs to a live record',
    async () => {
      await fc.assert(
        fc.asyncProperty(arbScenario, async (scenario) => {
          await withWorld(scenario, { lossy: true, settle: true }, (w) => {
            const live = new Set(w.sets.flatMap((s) => w.liveRecords(s.name)));
            expect([...w.runners.keys()].filter((n) => !live.has(n))).toEqual([]);
            expect([...w.instances.keys()].filter((n) => !live.has(n))).toEqual([]);
          });
        }),
        { numRuns: SEQ_RUNS },
      );
    },
    SEQ_TIMEOUT,
  );
});

// ---- 6 -------------------------------------------------------------------------------------------------------------

describe('invariant 6: a runner that fails before taking a job is replaced with backoff, visibly', () => {
  it('random failing runners: an instance that fails before a job is a visible, backed-off failure', () => {
    const arbCase = fc.record({
      set: arbSet,
      state: fc.constantFrom('starting' as const, 'idle' as const),
      changed: fc.integer({ min: 0, max: 20 * MINUTE }),
      seenAfter: fc.integer({ min: 0, max: 5 * MINUTE }),
      message: fc.option(fc.constantFrom('exit 1', 'OOMKilled', 'image pull failed'), { nil: undefined }),
      queued: fc.integer({ min: 0, max: 4 }),
      backoffUntil: fc.integer({ min: NOW - MINUTE, max: NOW + MINUTE }),
    });
    fc.assert(
      fc.property(arbCase, ({ set, state, changed, seenAfter, message, queued, backoffUntil }) => {
        const name = 'linux-r0000001';
        const stateChangedAt = NOW - changed;
        const observedAt = Math.min(NOW, stateChangedAt + seenAfter);
        const s: ScaleSetSnapshot = {
          name: 'linux',
          runners: [rec(name, { state, stateChangedAt })],
          jobs: Array.from({ length: queued }, (_, i) => ({
            id: i + 1,
            owner: 'o',
            repo: 'r',
            status: 'queued' as const,
            queuedAt: NOW,
            startedAt: null,
            checkedAt: null,
            inFlight: false,
          })),
          github: { at: null, runners: new Map() },
          instances: {
            at: null,
            items: new Map([
              [
                name,
                {
                  name,
                  fleet: 'runner-fleet',
                  scaleSet: 'linux',
                  state: 'failed' as const,
                  createdAt: stateChangedAt,
                  observedAt,
                  ...(message ? { message } : {}),
                },
              ],
            ]),
          },
          backoff: { failures: 1, until: backoffUntil },
        };
        const actions = planOf(s, set);
        const mark = actions.find((a) => a.type === 'mark-runner' && a.name === name);
        expect(mark).toMatchObject({ state: 'failed', failure: true });
        expect(mark?.type === 'mark-runner' ? mark.reason : '').toMatch(/instance failed/);
        if (message) expect(mark?.type === 'mark-runner' ? mark.reason : '').toContain(message);
        if (NOW < backoffUntil) expect(creates(actions)).toEqual([]);
        // replaced at once, as long as the failed record (still counted until cleaned up) leaves room under max
        else if (queued > 0 && set.max > 1) expect(creates(actions).length).toBeGreaterThan(0);
      }),
      { numRuns: SNAP_RUNS },
    );
  });

  it('random snapshots: no create during backoff; an instance that failed while starting is a visible failure', () => {
    fc.assert(
      fc.property(arbSnapshot, arbSet, (s, set) => {
        const actions = planOf(s, set);
        if (NOW < s.backoff.until) expect(creates(actions)).toEqual([]);
        for (const r of s.runners) {
          const inst = s.instances.items.get(r.name);
          if (
            r.state === 'starting' &&
            !r.inFlight &&
            r.job === null &&
            inst?.state === 'failed' &&
            inst.observedAt >= r.stateChangedAt &&
            (r.instanceDeletedAt === null || inst.observedAt > r.instanceDeletedAt)
          ) {
            const mark = actions.find((a) => a.type === 'mark-runner' && a.name === r.name);
            expect(mark).toMatchObject({ state: 'failed', failure: true });
            expect(mark?.type === 'mark-runner' && mark.reason.length > 0).toBe(true);
          }
        }
      }),
      { numRuns: SNAP_RUNS },
    );
  });

  it(
    'event sequences: no runner is created while backing off, failures keep a reason, and they are replaced',
    async () => {
      await fc.assert(
        fc.asyncProperty(arbScenario, async (scenario) => {
          await withWorld(
            scenario,
            {
              lossy: true,
              settle: true,
              step: (w) => {
                for (const set of w.sets) {
                  for (const r of w.store.runners(set.name)) {
                    if (r.state === 'failed' || r.state === 'bootstrap-timeout')
                      expect(r.reason ?? '').not.toBe('');
                  }
                }
              },
            },
            (w) => {
              for (const p of w.plans) if (p.at < p.backoffUntil) expect(creates(p.actions)).toEqual([]);
              // replaced: every job ran, and each scale set is back at its minimum
              expect([...w.jobs.values()].filter((j) => j.status !== 'completed')).toEqual([]);
              for (const set of w.sets) expect(w.liveRecords(set.name).length).toBe(set.minIdle);
            },
          );
        }),
        { numRuns: SEQ_RUNS },
      );
    },
    SEQ_TIMEOUT,
  );
});

// ---- 7 -------------------------------------------------------------------------------------------------------------

describe('invariant 7: after the queue drains and idle timeouts pass, every scale set is back to minIdle', () => {
  it('random idle fleets: the longest-idle runners past the timeout are retired down to minIdle, never below', () => {
    const arbCase = fc.record({
      set: arbSet,
      idle: fc.array(fc.integer({ min: 0, max: 20 * MINUTE }), { maxLength: 8 }),
      busy: fc.integer({ min: 0, max: 3 }),
    });
    fc.assert(
      fc.property(arbCase, ({ set: base, idle, busy }) => {
        const set = { ...base, max: Math.max(base.max, idle.length + busy) };
        const runners = [
          ...idle.map((d, i) =>
            rec(`linux-i${String(i).padStart(7, '0')}`, {
              state: 'idle',
              stateChangedAt: NOW - d,
              githubId: i + 1,
            }),
          ),
          ...Array.from({ length: busy }, (_, i) =>
            rec(`linux-b${String(i).padStart(7, '0')}`, {
              state: 'busy',
              job: { id: 100 + i, status: 'in_progress', at: NOW - 40 * MINUTE },
            }),
          ),
        ];
        const s: ScaleSetSnapshot = {
          name: 'linux',
          runners,
          jobs: [],
          github: { at: null, runners: new Map() },
          instances: { at: null, items: new Map() },
          backoff: { failures: 0, until: 0 },
        };
        const actions = planOf(s, set);
        const retired = actions.flatMap((a) => (a.type === 'deregister-runner' && a.retire ? [a.name] : []));
        const excess = Math.max(0, idle.length + busy - (busy + set.minIdle));
        const eligible = idle.filter((d) => d >= set.idleTimeout).length;
        expect(retired.length).toBe(Math.min(excess, eligible));
        // the ones retired are the longest idle
        const longest = [...idle.entries()]
          .sort((a, b) => b[1] - a[1] || a[0] - b[0])
          .slice(0, retired.length);
        expect(retired.sort()).toEqual(longest.map(([i]) => `linux-i${String(i).padStart(7, '0')}`).sort());
        if (idle.length + busy >= Math.min(set.max, busy + set.minIdle)) expect(creates(actions)).toEqual([]);
      }),
      { numRuns: SNAP_RUNS },
    );
  });

  it('random snapshots: with no jobs, runners idle past the timeout are retired down to minIdle, never below', () => {
    fc.assert(
      fc.property(arbSnapshot, arbSet, (s0, set) => {
        const s = { ...s0, jobs: [] };
        const actions = planOf(s, set);
        const after = statesAfter(s, actions);
        const retired = new Set(
          actions.flatMap((a) => (a.type === 'deregister-runner' && a.retire ? [a.name] : [])),
        );
        const inFlight = new Set(s.runners.filter((r) => r.inFlight).map((r) => r.name));
        let active = 0;
        for (const [name, st] of after) {
          if (ACTIVE.has(st) && !retired.has(name) && !(st === 'idle' && inFlight.has(name))) active++;
        }
        const busy = [...after.values()].filter((st) => st === 'busy').length;
        const target = Math.min(set.max, busy + set.minIdle);
        // never retire below the target ...
        if (retired.size > 0) expect(active).toBeGreaterThanOrEqual(target);
        // ... and retire every long-idle runner above it
        const eligible = s.runners.filter(
          (r) =>
            after.get(r.name) === 'idle' &&
            !r.inFlight &&
            NOW - r.stateChangedAt >= set.idleTimeout &&
            r.state === 'idle',
        );
        const known = eligible.filter((r) => r.githubId !== null || s.github.runners.has(r.name));
        if (known.length === eligible.length && eligible.length > 0) {
          expect(retired.size).toBe(Math.min(eligible.length, Math.max(0, active + retired.size - target)));
        }
      }),
      { numRuns: SNAP_RUNS },
    );
  });

  it(
    'event sequences: after the world settles, exactly minIdle idle runners per scale set, nothing else',
    async () => {
      await fc.assert(
        fc.asyncProperty(arbScenario, async (scenario) => {
          await withWorld(scenario, { lossy: true, settle: true }, (w) => {
            expect(w.store.openJobs('lin')).toEqual([]);
            for (const set of w.sets) {
              const live = w.store.runners(set.name).filter((r) => r.state !== 'deleted');
              expect(live.map((r) => r.state)).toEqual(Array.from({ length: set.minIdle }, () => 'idle'));
            }
            expect(w.runners.size).toBe(w.sets.reduce((n, s) => n + s.minIdle, 0));
            expect(w.instances.size).toBe(w.runners.size);
            // and no secret was ever written to the store
            for (const f of [w.file, `${w.file}-wal`]) {
              let bytes: Buffer;
              try {
                bytes = readFileSync(f);
              } catch {
                continue;
              }
              expect(bytes.includes('secret')).toBe(false);
            }
          });
        }),
        { numRuns: SEQ_RUNS },
      );
    },
    SEQ_TIMEOUT,
  );
});

// ---- interruptions -------------------------------------------------------------------------------------------------

/** Scenarios biased toward busy runners (jobs, creates that succeed, boots, assignments) and their interruption. */
const arbInterruptScenario = fc.record({
  sets: arbWorldSets,
  events: fc.array(
    fc.oneof(
      { weight: 6, arbitrary: arbEvent },
      {
        weight: 2,
        arbitrary: fc.record({
          t: fc.constant('job' as const),
          labels: fc.constant(0),
          copies: fc.constant(1),
          newId: fc.constant(false),
        }),
      },
      { weight: 3, arbitrary: fc.constant({ t: 'plan' as const }) },
      {
        weight: 4,
        arbitrary: fc.record({
          t: fc.constant('release' as const),
          i: fc.nat(30),
          outcome: fc.constant('ok' as const),
        }),
      },
      {
        weight: 2,
        arbitrary: fc.record({ t: fc.constant('boot' as const), i: fc.nat(30), ok: fc.constant(true) }),
      },
      { weight: 2, arbitrary: fc.record({ t: fc.constant('assign' as const), i: fc.nat(30) }) },
      { weight: 3, arbitrary: fc.record({ t: fc.constant('interrupt' as const), i: fc.nat(30) }) },
    ),
    { minLength: 40, maxLength: 160 },
  ),
  seed: fc.integer({ min: 1, max: 2 ** 30 }),
  watch: fc.boolean(),
});

describe('interrupted jobs: the cloud takes a busy runner’s instance', () => {
  it(
    'event sequences: after the world settles, every job interrupted under a live runner record of a scale set that opted in was re-run and served; no other job was re-run',
    async () => {
      let interrupted = 0;
      await fc.assert(
        fc.asyncProperty(arbInterruptScenario, async (scenario) => {
          await withWorld(scenario, { prompt: true, settle: true }, (w) => {
            // The model flags a re-run of a job no interruption cut short, or of a scale set that did not opt in.
            expect(w.violations).toEqual([]);
            for (const [jobId, { set, tracked }] of w.interruptedJobs) {
              const reruns = w.reruns.filter((r) => r.from === jobId);
              const optedIn = w.sets.find((s) => s.name === set)?.rerunInterruptedJobs === true;
              if (!optedIn) {
                expect(reruns).toEqual([]);
                continue;
              }
              // A runner whose record the controller had already given up on is not followed.
              if (!tracked) continue;
              interrupted++;
              expect(reruns.length, `job ${jobId} was not re-run`).toBeGreaterThan(0);
              // Each re-run's new job ran on a runner of the fleet (unless someone cancelled it while queued).
              for (const { to } of reruns) {
                const fresh = w.jobs.get(to);
                expect({
                  job: to,
                  status: fresh?.status,
                  served: fresh?.runner !== null || fresh?.cancelled === true,
                }).toEqual({ job: to, status: 'completed', served: true });
              }
            }
            // Nothing is left of the interrupted runners: no registration, no instance, no live record.
            for (const set of w.sets) {
              const live = w.store.runners(set.name).filter((r) => r.state !== 'deleted');
              expect(live.map((r) => r.state)).toEqual(Array.from({ length: set.minIdle }, () => 'idle'));
            }
          });
        }),
        { numRuns: SEQ_RUNS },
      );
      // The scenarios do interrupt runners (a property that never sees one would prove nothing).
      console.log(`interrupted jobs seen: ${interrupted}`);
      expect(interrupted).toBeGreaterThan(0);
    },
    SEQ_TIMEOUT,
  );
});

// ---- scope ---------------------------------------------------------------------------------------------------------

describe('scope: a job of a repository no scale set serves gets no runner and is counted unroutable', () => {
  const OTHER_OWNER = JOB_REPOS.findIndex((r) => r.owner !== 'octo-org');

  /** Checked after every event: the store routed each such job nowhere and counts it among the unroutable. */
  function outOfScopeUnroutable(w: World): void {
    const unroutable = new Set(w.store.openJobs(null).map((j) => j.id));
    for (const job of w.outOfScopeJobs()) {
      const record = w.store.job(job.id);
      if (record === null) continue; // not delivered yet
      expect(record.scaleSet, `job ${job.id} of ${job.owner}/${job.repo}`).toBeNull();
      if (record.status !== 'completed') expect(unroutable.has(job.id), `job ${job.id} counted`).toBe(true);
    }
  }

  it(
    'event sequences, jobs from the fleet’s organization and another owner: those out of scope never run',
    async () => {
      await fc.assert(
        fc.asyncProperty(arbScenario, async (scenario) => {
          const minIdle = scenario.sets.reduce((n, s) => n + s.minIdle, 0);
          await withWorld(
            scenario,
            {
              prompt: true,
              step: (w) => {
                outOfScopeUnroutable(w);
                expect(w.created.size).toBeLessThanOrEqual(
                  w.routableJobs() + minIdle + w.endedWithoutJob() + w.jobsTakenAcrossSets(),
                );
              },
            },
            (w) => {
              for (const job of w.outOfScopeJobs()) expect(job.runner, `job ${job.id}`).toBeNull();
            },
          );
        }),
        { numRuns: SEQ_RUNS },
      );
    },
    SEQ_TIMEOUT,
  );

  it(
    'event sequences, every job from another owner: no runner is created for any, beyond minIdle and replacements',
    async () => {
      await fc.assert(
        fc.asyncProperty(arbScenario, async (scenario) => {
          const events = scenario.events.map((e) => (e.t === 'job' ? { ...e, repo: OTHER_OWNER } : e));
          const minIdle = scenario.sets.reduce((n, s) => n + s.minIdle, 0);
          await withWorld(
            { ...scenario, events },
            {
              prompt: true,
              step: (w) => {
                outOfScopeUnroutable(w);
                expect(w.routableJobs()).toBe(0);
                expect(w.created.size).toBeLessThanOrEqual(
                  minIdle + w.endedWithoutJob() + w.jobsTakenAcrossSets(),
                );
              },
            },
            (w) => {
              expect(w.outOfScopeJobs()).toHaveLength(w.jobs.size);
              for (const job of w.jobs.values()) expect(job.runner).toBeNull();
            },
          );
        }),
        { numRuns: SEQ_RUNS },
      );
    },
    SEQ_TIMEOUT,
  );
});
