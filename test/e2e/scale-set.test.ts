/**
 * End to end, `discovery: scale-set` beside `discovery: webhook`: `runner-fleet start` as a real child process against
 * the simulator, which serves both webhooks and the Actions service's runner scale set protocol. Faults: a stale
 * message session at the first start (409 twice), 20% of long polls dropped and 10% answered 401 for the whole run,
 * and a SIGKILL of the controller in the middle of the burst, whose session then blocks the restarted controller's
 * until it expires, while more jobs are queued.
 *
 * Asserted, as for webhooks: every job completes successfully on a runner of its scale set, each runner ran at most
 * one job and every created runner that ran nothing is explained by the kill; no scale set ever had more than `max`
 * runners; nothing is left behind; the scale set's messages are all acknowledged and its session deleted at stop;
 * no log line holds a secret (Actions admin and queue tokens and scale-set JIT configs included).
 *
 * Needs `npm run build`.
 */
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { ScaleSetView } from '../../src/core/read-models.js';
import { isRunnerOf } from '../../src/core/names.js';
import { simulatorCredentials } from '../support/sim-fleet.js';
import { ControllerProcess } from './controller-process.js';
import type { E2eSimulator, FleetFiles, Leftovers, ScaleSetShape } from './harness.js';
import {
  CLI,
  FLEET,
  MaxTracker,
  expectAtMostMax,
  expectClean,
  finished,
  freePort,
  jitRegistrations,
  liveRunners,
  runCleanup,
  runnersThatRan,
  sampleWorld,
  startE2eSimulator,
  until,
  untilClean,
} from './harness.js';
import { findSecrets, simulatorSecrets } from './secrets.js';
import type { StoreRecords } from './store-records.js';
import { readStore, replayLiveRunners, runnerHistory } from './store-records.js';

const SETS = [
  { name: 'queue', max: 6, minIdle: 0, ephemeral: true, provider: 'sim' },
  { name: 'hook', max: 5, minIdle: 0, ephemeral: true, provider: 'sim' },
] as const satisfies readonly ScaleSetShape[];

interface Job {
  readonly id: number;
  readonly scaleSet: 'queue' | 'hook';
}

interface Run {
  e2e: E2eSimulator;
  files: FleetFiles;
  controller: ControllerProcess;
  jobs: Job[];
  tracker: MaxTracker;
  left: Leftovers;
  completedAtKill: number;
  store: StoreRecords;
  actionsSecrets: readonly string[];
  calls: Record<string, number>;
}

let run: Run | undefined;
const cleanup: (() => Promise<void>)[] = [];

function writeConfig(e2e: E2eSimulator, port: number): FleetFiles {
  const dir = mkdtempSync(join(tmpdir(), 'runner-fleet-e2e-ss-'));
  const doc = {
    name: FLEET,
    ...simulatorCredentials(e2e.sim, dir),
    server: { host: '127.0.0.1', port },
    store: { path: join(dir, 'fleet.db') },
    controller: { resyncInterval: '2s', orphanGracePeriod: '10s', failureBackoff: '1s' },
    scaleSets: SETS.map((set) => ({
      name: set.name,
      scope: { org: 'octo-org' },
      labels: ['linux', set.name],
      max: set.max,
      bootstrapTimeout: '60s',
      idleTimeout: '3s',
      discovery: set.name === 'queue' ? 'scale-set' : 'webhook',
      provider: { kind: 'sim', bootDelay: '100ms' },
    })),
  };
  const configPath = join(dir, 'fleet.yaml');
  writeFileSync(configPath, stringify(doc));
  return {
    dir,
    configPath,
    storePath: join(dir, 'fleet.db'),
    workDir: join(dir, 'runners'),
    runnerLog: join(dir, 'runner-output.log'),
    scaleSets: SETS,
  };
}

function queueJobs(e2e: E2eSimulator, scaleSet: 'queue' | 'hook', count: number): Job[] {
  return e2e.sim
    .createJobs({ owner: 'octo-org', repo: 'app', labels: ['linux', scaleSet], count, durationMs: 400 })
    .map((j) => ({ id: j.id, scaleSet }));
}

beforeAll(async () => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run npm run build first`);
  const e2e = await startE2eSimulator({
    scaleSetPollTimeoutMs: 2_000,
    scaleSetSessionTimeoutMs: 4_000,
    scaleSetRedeliveryMs: 3_000,
  });
  cleanup.push(() => e2e.sim.close());
  const { sim } = e2e;
  const port = await freePort();
  const files = writeConfig(e2e, port);
  const controller = new ControllerProcess(files.configPath, port);
  cleanup.unshift(() => controller.stop());
  cleanup.push(async () => {
    if (run !== undefined) rmSync(files.dir, { recursive: true, force: true });
    else {
      writeFileSync(join(files.dir, 'controller-stdout.log'), controller.stdout.text());
      console.error(`scale-set run failed; logs kept in ${files.dir}`);
    }
  });
  sim.setWebhook(`${controller.url}/webhook`);
  // A stale session of the scale set at the first start.
  sim.setFaults({ sessionConflicts: 2 });
  await controller.start();
  await until(() => sim.scaleSets().some((s) => s.session !== null), 30_000, 'the first message session');
  sim.setFaults({ queueDropRate: 0.2, queueUnauthorizedRate: 0.1 });

  const tracker = new MaxTracker();
  const sampler = setInterval(() => sampleWorld(sim, files, tracker), 20);
  cleanup.unshift(async () => clearInterval(sampler));

  const jobs: Job[] = [...queueJobs(e2e, 'queue', 24), ...queueJobs(e2e, 'hook', 12)];
  // Mid-burst: some jobs done, others queued or running.
  await until(() => sim.jobs('completed').length >= 8, 60_000, '8 jobs completed before the kill');
  const completedAtKill = sim.jobs('completed').length;
  await controller.kill();
  // While it is down: more jobs; the killed controller's session blocks the next one until it expires.
  jobs.push(...queueJobs(e2e, 'queue', 10), ...queueJobs(e2e, 'hook', 4));
  await controller.start();
  await until(
    () => jobs.every((j) => sim.job(j.id)?.status === 'completed'),
    150_000,
    `all ${jobs.length} jobs completed`,
    () => ({ queued: sim.jobs('queued').length, inProgress: sim.jobs('in_progress').length }),
  );
  sim.setFaults({ queueDropRate: 0, queueUnauthorizedRate: 0 });
  const left = await untilClean(sim, files, 60_000);
  await until(() => sim.scaleSets()[0]?.unacknowledged === 0, 30_000, 'every message acknowledged');
  // The store follows the world: a removal's last mark comes with the next pass (follow-ups are coalesced).
  await until(
    async () => {
      const body = await controller.get<{ scaleSets: ScaleSetView[] }>('/api/v1/scale-sets');
      return body !== null && body.scaleSets.every((s) => liveRunners(s) === 0);
    },
    30_000,
    'the store to agree: every ephemeral set empty',
  );
  clearInterval(sampler);
  await controller.stop();
  const calls = sim.stats().apiCalls.byRoute;
  run = {
    e2e,
    files,
    controller,
    jobs,
    tracker,
    left,
    completedAtKill,
    store: readStore(files.storePath),
    actionsSecrets: [...sim.actionsSecrets()],
    calls,
  };
}, 240_000);

afterAll(() => runCleanup(cleanup));

const need = (): Run => finished(run, 'the scale-set run');

describe('end to end: a scale-set scale set beside a webhook one, with faults and a kill -9', () => {
  it('applied the faults it claims', () => {
    const { controller, completedAtKill, jobs, calls } = need();
    expect(controller.kills).toBe(1);
    expect(controller.starts).toBe(2);
    expect(completedAtKill).toBeGreaterThan(0);
    expect(completedAtKill).toBeLessThan(jobs.length);
    const sessions = calls['POST {actions}/_apis/runtime/runnerscalesets/{id}/sessions'] ?? 0;
    // two injected conflicts, the first session, the restart's session (and its conflicts while the old one lived)
    expect(sessions).toBeGreaterThanOrEqual(4);
    expect(
      calls['PATCH {actions}/_apis/runtime/runnerscalesets/{id}/sessions/{sessionId}'] ?? 0,
    ).toBeGreaterThan(0);
    expect(calls['DELETE {actions}/_apis/runtime/runnerscalesets/{id}/sessions/{sessionId}'] ?? 0).toBe(1);
  });

  it('completes every job successfully on a runner of its scale set, one job per runner', () => {
    const { e2e, jobs } = need();
    const wrong: string[] = [];
    for (const job of jobs) {
      const j = e2e.sim.job(job.id)!;
      if (j.status !== 'completed' || j.conclusion !== 'success')
        wrong.push(`${job.id}: ${j.status} ${j.conclusion}`);
      else if (j.runnerName === null || !isRunnerOf(job.scaleSet, j.runnerName))
        wrong.push(`${job.id} (${job.scaleSet}) ran on ${j.runnerName}`);
    }
    expect(wrong).toEqual([]);
    const ran = runnersThatRan(e2e.sim, ['queue', 'hook']);
    for (const set of ['queue', 'hook'] as const) {
      expect(ran.get(set)!.size, set).toBe(jobs.filter((j) => j.scaleSet === set).length);
    }
  });

  // After the restart the listener works through the backlog of unacknowledged messages one by one, and a pass may
  // run between a JobAssigned and the JobStarted behind it while the runner list still shows that runner idle: a
  // runner too many, which nothing else takes and which leaves at its idle timeout. That surplus is bounded by max.
  it('gives no job two runners: every created runner ran a job, was lost to the kill or retired idle', () => {
    const { e2e, jobs, store } = need();
    const ran = runnersThatRan(e2e.sim, ['queue', 'hook']);
    const history = runnerHistory(store.events);
    const created = {
      queue: store.runners.filter((r) => r.scale_set === 'queue').map((r) => r.name),
      hook: jitRegistrations(e2e.sim, ['hook']).get('hook')!,
    };
    for (const set of ['queue', 'hook'] as const) {
      const idle = created[set].filter((n) => !ran.get(set)!.has(n));
      const unexplained = idle.filter(
        (n) => !(history.get(n) ?? []).some((h) => /interrupted|no longer needed|idle timeout/.test(h)),
      );
      expect(
        unexplained.map((n) => `${n}: ${(history.get(n) ?? []).join(' | ')}`),
        set,
      ).toEqual([]);
      const max = SETS.find((x) => x.name === set)!.max;
      expect(idle.length, `${set}: runners that ran nothing`).toBeLessThanOrEqual(max);
      expect(created[set].length).toBeLessThanOrEqual(
        jobs.filter((j) => j.scaleSet === set).length + idle.length,
      );
    }
    // The store recorded the scale set's jobs from messages, all completed, none unroutable.
    const queueJobsStored = store.jobs.filter((j) => j.scale_set === 'queue');
    expect(queueJobsStored.length).toBe(jobs.filter((j) => j.scaleSet === 'queue').length);
    expect(queueJobsStored.every((j) => j.status === 'completed')).toBe(true);
    expect(store.jobs.filter((j) => j.scale_set === null)).toEqual([]);
  });

  it('never has more than max runners of a scale set', () => {
    const { tracker, files, store } = need();
    const { max: replayMax, end } = replayLiveRunners(store.events);
    for (const set of files.scaleSets) {
      expectAtMostMax(tracker, set, { storeReplay: replayMax.get(set.name) ?? 0 });
      expect(end.get(set.name) ?? 0).toBe(0);
    }
  });

  it('leaves nothing behind; the session is deleted at stop', () => {
    const { left, files, e2e } = need();
    expectClean(left, files);
    expect(e2e.sim.scaleSets()[0]!.session).toBeNull();
  });

  it('logs no secret: REST ones, Actions admin and queue tokens, scale-set JIT configs', () => {
    const { e2e, controller, actionsSecrets } = need();
    expect(actionsSecrets.length).toBeGreaterThan(30);
    const secrets = [
      ...simulatorSecrets(e2e.sim),
      ...actionsSecrets.map((value) => ({ kind: 'Actions service secret', value })),
    ];
    const hits = findSecrets(
      {
        'controller stdout': controller.stdout.text(),
        'controller stderr': controller.stderr.text(),
        simulator: e2e.logs.text(),
      },
      secrets,
    );
    expect(hits).toEqual([]);
    expect(controller.stdout.text()).toContain('already has an active session');
    expect(controller.stdout.text()).toContain('message queue token refreshed');
  });
});
