/**
 * End to end, no faults: the controller as `runner-fleet start` builds it (composeController), against the GitHub
 * simulator, with three scale sets (org and repo scope; jit and token registration; ephemeral and persistent; process
 * and sim providers) and 200 jobs with mixed labels, 100 of them in one burst.
 *
 * While the run goes on, runner counts are sampled on every runner state change (the controller's store) and every
 * 20 ms (the simulator's runners and instances, the process instances on disk); the largest count seen per scale set
 * must never exceed its `max`. Afterwards nothing of the fleet may be left but the persistent set's `minIdle` runner,
 * and no log line (controller, simulator, process runners) may hold a secret the simulator issued or was given.
 *
 * Needs `npm run build` (process runners run dist/cli/main.js emulate-runner).
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { composeController } from '../../src/app/compose.js';
import type { Controller } from '../../src/app/compose.js';
import { loadConfig } from '../../src/config/index.js';
import { isRunnerOf } from '../../src/core/names.js';
import type { E2eSimulator, FleetFiles, Leftovers } from './harness.js';
import {
  CLI,
  LogSink,
  MaxTracker,
  expectAtMostMax,
  expectClean,
  finished,
  jitRegistrations,
  runCleanup,
  runnersThatRan,
  sampleApi,
  sampleWorld,
  startE2eSimulator,
  until,
  untilClean,
  writeFleetConfig,
} from './harness.js';
import { countByKind, findSecrets, simulatorSecrets } from './secrets.js';
import type { CreatedJob } from './workload.js';
import { playWorkload, standardWorkload } from './workload.js';

interface Run {
  e2e: E2eSimulator;
  files: FleetFiles;
  controller: Controller;
  controllerLogs: LogSink;
  jobs: CreatedJob[];
  tracker: MaxTracker;
  left: Leftovers;
  durationMs: number;
}

let run: Run | undefined;
/** Process warnings during the run (the controller runs in this process). */
const warnings: string[] = [];
const cleanup: (() => Promise<void>)[] = [];

beforeAll(async () => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run npm run build first`);
  const started = Date.now();
  const e2e = await startE2eSimulator();
  cleanup.push(() => e2e.sim.close());
  const { sim } = e2e;
  const files = writeFleetConfig(sim);
  cleanup.push(async () => rmSync(files.dir, { recursive: true, force: true }));
  const loaded = loadConfig(files.configPath, { env: {} });
  if (!loaded.ok) throw new Error(`fleet.yaml: ${JSON.stringify(loaded.problems)}`);

  const onWarning = (w: Error): void => void warnings.push(`${w.name}: ${w.message}`);
  process.on('warning', onWarning);
  cleanup.push(async () => void process.off('warning', onWarning));
  const controllerLogs = new LogSink();
  const controller = await composeController({
    config: loaded.config,
    env: process.env,
    logDestination: controllerLogs,
    logLevel: 'debug',
  });
  cleanup.unshift(async () => void (await controller.stop()));
  const url = await controller.start();
  sim.setWebhook(`${url}/webhook`);

  // Capacity as the controller counts it (invariant 1: records in any state but deleted), at every state change.
  const tracker = new MaxTracker();
  const countStore = (scaleSet: string): void => {
    let n = 0;
    controller.store.forEachRunner(scaleSet, (r) => {
      if (r.state !== 'deleted') n++;
    });
    tracker.see(`store:${scaleSet}`, n);
  };
  const unsubscribe = controller.events.subscribe((e) => {
    if (e.type === 'runner') countStore((e.data as { scaleSet: string }).scaleSet);
  });
  const sampler = setInterval(() => {
    sampleWorld(sim, files, tracker);
    sampleApi(tracker, controller.readModel.scaleSets());
  }, 20);
  cleanup.unshift(async () => {
    clearInterval(sampler);
    unsubscribe();
  });

  const workload = standardWorkload(20_240_601);
  const jobs = await playWorkload(sim, workload, { intervalMs: 150 });
  await until(
    () => sim.jobs('completed').length === jobs.length,
    120_000,
    `all ${jobs.length} jobs completed`,
    () => ({ queued: sim.jobs('queued').length, inProgress: sim.jobs('in_progress').length }),
  );
  const completedMs = Date.now() - started;
  const left = await untilClean(sim, files, 60_000);
  await until(
    () =>
      controller.store
        .runners()
        .every((r) =>
          r.scaleSet === 'persist' ? r.state === 'deleted' || r.state === 'idle' : r.state === 'deleted',
        ),
    30_000,
    'every ephemeral runner record deleted',
    () => controller.store.runners().filter((r) => r.state !== 'deleted' && r.scaleSet !== 'persist'),
  );
  clearInterval(sampler);
  unsubscribe();
  console.info(
    `fleet run: ${JSON.stringify({ completedMs, cleanMs: Date.now() - started, maxSeen: Object.fromEntries(tracker.max), samples: tracker.samples, apiCalls: sim.stats().apiCalls.total })}`,
  );
  run = {
    e2e,
    files,
    controller,
    controllerLogs,
    jobs,
    tracker,
    left,
    durationMs: Date.now() - started,
  };
}, 170_000);

afterAll(() => runCleanup(cleanup));

const need = (): Run => finished(run, 'the end-to-end run');

describe('end to end: 3 scale sets, 200 jobs, a burst of 100', () => {
  it('completes every job successfully, each on a runner of the scale set its labels route to', () => {
    const { e2e, jobs, controller } = need();
    expect(jobs).toHaveLength(200);
    const byId = new Map(e2e.sim.jobs().map((j) => [j.id, j]));
    const wrong: string[] = [];
    for (const job of jobs) {
      const sim = byId.get(job.id)!;
      expect(sim.status).toBe('completed');
      expect(sim.conclusion).toBe('success');
      if (sim.runnerName === null || !isRunnerOf(job.scaleSet, sim.runnerName)) {
        wrong.push(`${job.id} [${job.labels.join(',')}] ran on ${sim.runnerName}`);
      }
      const stored = controller.store.job(job.id);
      expect(stored?.scaleSet).toBe(job.scaleSet);
      expect(stored?.status).toBe('completed');
    }
    expect(wrong).toEqual([]);
    // the burst really was one: 100 jobs queued within a few milliseconds of each other
    const queuedAt = jobs.slice(0, 100).map((j) => byId.get(j.id)!.queuedAt);
    expect(Math.max(...queuedAt) - Math.min(...queuedAt)).toBeLessThan(1000);
  });

  it('never has more than max runners of a scale set (store, API, simulator runners and instances, processes)', () => {
    const { tracker, files } = need();
    expect(tracker.samples).toBeGreaterThan(100);
    for (const set of files.scaleSets) {
      const seen = expectAtMostMax(tracker, set, { store: tracker.get(`store:${set.name}`) });
      // and the scale set was actually driven to its max, so the bound was tested
      expect(seen.store, `${set.name} reached max`).toBe(set.max);
    }
  });

  it('leaves no runner and no instance behind; the persistent set is back at minIdle', () => {
    const { left, files } = need();
    expectClean(left, files);
    expect(left.instances.map((i) => i.tags.scaleSet)).toEqual(['persist']);
    expect(left.runners.filter((r) => r.status === 'online' && !r.busy)).toHaveLength(1);
  });

  it('creates exactly one runner per job for ephemeral scale sets, and no more than jobs + minIdle for persistent ones', () => {
    const { e2e, jobs, controller } = need();
    const sets = ['proc', 'cloud', 'persist'];
    const created = jitRegistrations(e2e.sim, sets);
    const ran = runnersThatRan(e2e.sim, sets);
    const jobsOf = (set: string) => jobs.filter((j) => j.scaleSet === set).length;
    // Live records are in memory; deleted ones leave it soon after and are listed from the file for an hour.
    const records = (set: string) => [
      ...controller.store.runners(set).filter((r) => r.state !== 'deleted'),
      ...controller.store.deletedRunners(set),
    ];
    for (const set of ['proc', 'cloud']) {
      expect(created.get(set), `JIT registrations of ${set}`).toHaveLength(jobsOf(set));
      expect(ran.get(set)!.size, `runners of ${set} that ran a job`).toBe(jobsOf(set));
      expect(records(set)).toHaveLength(jobsOf(set));
    }
    // token mode: no JIT configs; runners are grown for queued jobs and shrunk after idleTimeout
    expect(created.get('persist')).toEqual([]);
    const persistRecords = records('persist').length;
    expect(persistRecords).toBeGreaterThan(1);
    expect(persistRecords).toBeLessThanOrEqual(jobsOf('persist') + 1);
  });

  it('logs no secret: controller, simulator and process runner output hold no token, JIT config, key or webhook secret', () => {
    const { e2e, controllerLogs, files } = need();
    const secrets = simulatorSecrets(e2e.sim);
    const kinds = countByKind(secrets);
    // the check had something to find: every kind of secret was issued during the run
    expect(kinds['JIT config']).toBe(170);
    expect(kinds['installation token']).toBeGreaterThanOrEqual(1);
    expect(kinds['registration token']).toBeGreaterThanOrEqual(1);
    expect(kinds['app private key']).toBe(1);
    expect(kinds['webhook secret']).toBe(1);
    const runnerOutput = readFileSync(files.runnerLog, 'utf8');
    // the runners did log (one "Running job" line per process job at least)
    expect(runnerOutput.match(/Running job/g)?.length ?? 0).toBeGreaterThanOrEqual(20);
    expect(controllerLogs.lines.length).toBeGreaterThan(1000);
    expect(warnings).toEqual([]);
    const hits = findSecrets(
      {
        controller: controllerLogs.text(),
        simulator: e2e.logs.text(),
        'process runners': runnerOutput,
      },
      secrets,
    );
    expect(hits).toEqual([]);
  });
});
