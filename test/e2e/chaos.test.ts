/**
 * End to end under faults: the fleet.test.ts shape (three scale sets, 200 jobs, a burst of 100) with every webhook
 * delivered twice, deliveries delayed at random so they overtake each other, 20% of GitHub REST calls failing
 * (500 and 429, alternating), and the controller, a real `runner-fleet start` child process on a SQLite store on
 * disk, killed with SIGKILL twice mid-run and restarted. Webhooks sent while it is down are lost, as on GitHub.
 *
 * Asserted: every job completes successfully (a runner deleted under its job would fail it); no scale set ever has
 * more than `max` runners (sampled from the simulator and the API during the run, and replayed exactly from the
 * store's runner history afterwards); no job gets two new runners (JIT registrations the simulator created, per
 * scale set, against the jobs and against the runners that ran them; each one that ran nothing is accounted for by
 * an interrupted create in the store); nothing leaks; no log line holds a secret.
 *
 * Needs `npm run build`.
 */
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ScaleSetView } from '../../src/core/read-models.js';
import { isRunnerOf } from '../../src/core/names.js';
import { ControllerProcess } from './controller-process.js';
import type { E2eSimulator, FleetFiles, Leftovers } from './harness.js';
import {
  CLI,
  MaxTracker,
  expectAtMostMax,
  expectClean,
  finished,
  freePort,
  jitRegistrations,
  liveRunners,
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
import type { StoreRecords } from './store-records.js';
import { readStore, replayLiveRunners, runnerHistory } from './store-records.js';
import type { CreatedJob } from './workload.js';
import { createJobs, playWorkload, standardWorkload } from './workload.js';

interface Run {
  e2e: E2eSimulator;
  files: FleetFiles;
  controller: ControllerProcess;
  jobs: CreatedJob[];
  tracker: MaxTracker;
  left: Leftovers;
  killedWith: { completed: number; creating: number }[];
  webhooksLostWhileDown: number;
  injected: Record<number, number>;
  store: StoreRecords;
}

let run: Run | undefined;
const cleanup: (() => Promise<void>)[] = [];
/** Writes the logs beside the run's files and returns that directory, which a failed run keeps. */
let keepOnFailure: (() => string) | undefined;

beforeAll(async () => {
  try {
    await chaosRun();
  } catch (error) {
    const dir = keepOnFailure?.();
    if (dir !== undefined) console.error(`chaos run failed; logs and store kept in ${dir}`);
    throw error;
  }
}, 300_000);

async function chaosRun(): Promise<void> {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run npm run build first`);
  const e2e = await startE2eSimulator();
  cleanup.push(() => e2e.sim.close());
  const { sim } = e2e;
  const port = await freePort();
  const files = writeFleetConfig(sim, { port });
  cleanup.push(async () => {
    if (run !== undefined) rmSync(files.dir, { recursive: true, force: true });
  });
  const controller = new ControllerProcess(files.configPath, port);
  cleanup.unshift(() => controller.stop());
  keepOnFailure = () => {
    writeFileSync(join(files.dir, 'controller-stdout.log'), controller.stdout.text());
    writeFileSync(join(files.dir, 'controller-stderr.log'), controller.stderr.text());
    writeFileSync(join(files.dir, 'simulator.log'), e2e.logs.text());
    return files.dir;
  };
  sim.setWebhook(`${controller.url}/webhook`);
  await controller.start();

  sim.setFaults({
    webhookDuplicateRate: 1,
    webhookReorder: true,
    webhookDelayMs: 300,
    apiErrorRate: 0.2,
    apiErrorStatus: 500,
  });
  let status = 500;
  const flip = setInterval(() => {
    status = status === 500 ? 429 : 500;
    sim.setFaults({ apiErrorStatus: status });
  }, 700);
  const tracker = new MaxTracker();
  const sampler = setInterval(() => sampleWorld(sim, files, tracker), 25);
  let sampling = true;
  const apiSampler = (async () => {
    while (sampling) {
      const body = await controller.get<{ scaleSets: ScaleSetView[] }>('/api/v1/scale-sets');
      sampleApi(tracker, body?.scaleSets ?? []);
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  const stopSampling = async () => {
    clearInterval(flip);
    clearInterval(sampler);
    sampling = false;
    await apiSampler;
  };
  cleanup.unshift(stopSampling);

  const t0 = Date.now();
  const timeline: Record<string, number> = {};
  const mark = (what: string): void => void (timeline[what] = Date.now() - t0);
  const killedWith: Run['killedWith'] = [];
  let webhooksLostWhileDown = 0;
  const crashAndRestart = async (whileDown: () => void = () => undefined): Promise<void> => {
    const runners = await controller.get<{ runners: { state: string }[] }>('/api/v1/runners');
    killedWith.push({
      completed: sim.jobs('completed').length,
      creating:
        runners?.runners.filter((r) => r.state === 'creating' || r.state === 'requested').length ?? -1,
    });
    await controller.kill();
    mark(`kill ${controller.kills}`);
    whileDown();
    // Down long enough that deliveries fail: GitHub does not retry them.
    const failed = sim.stats().webhooks.failed;
    await until(() => sim.stats().webhooks.failed >= failed + 4, 30_000, 'webhooks to fail while down');
    webhooksLostWhileDown += sim.stats().webhooks.failed - failed;
    await controller.start();
    mark(`ready again ${controller.kills}`);
  };

  const workload = standardWorkload(20_240_602);
  // The last jobs are queued while the controller is down for the second time: their `queued` webhooks are lost,
  // and no later job would make the controller create a runner that happens to take them.
  const held = workload.batches.slice(-3).flat();
  const playing = playWorkload(
    sim,
    { ...workload, batches: workload.batches.slice(0, -3) },
    { intervalMs: 250 },
  );
  await until(() => sim.jobs('completed').length >= 20, 90_000, '20 jobs completed before the first kill');
  await crashAndRestart();
  const played = await playing;
  await until(() => sim.jobs('completed').length >= 90, 90_000, '90 jobs completed before the second kill');
  let late: CreatedJob[] = [];
  await crashAndRestart(() => {
    late = createJobs(sim, held);
  });
  const jobs = [...played, ...late];
  await until(
    () => sim.jobs('completed').length === jobs.length,
    120_000,
    `all ${jobs.length} jobs completed`,
    () => ({ queued: sim.jobs('queued').map((j) => j.id), inProgress: sim.jobs('in_progress').length }),
  );
  mark('all jobs completed');
  // in_progress and completed webhooks lost while down are repaired by job status checks; a job whose every webhook
  // was lost (it ran on another job's runner while the controller was down) reaches the store through the App's
  // deliveries, found by a later scan (up to two resync intervals after they settle).
  const ids = new Set(jobs.map((j) => j.id));
  await until(
    async () => {
      const open = await controller.get<{ jobs: unknown[] }>('/api/v1/jobs');
      const done = await controller.get<{ jobs: { id: number }[] }>(
        `/api/v1/jobs?status=completed&completedLimit=${jobs.length + 100}`,
      );
      if (open === null || done === null || open.jobs.length > 0) return false;
      const known = new Set(done.jobs.map((j) => j.id));
      return [...ids].every((id) => known.has(id));
    },
    120_000,
    'the store to have no open job and every job completed',
  );
  mark('store agrees');
  const left = await untilClean(sim, files, 90_000);
  await until(
    async () => {
      const body = await controller.get<{ scaleSets: ScaleSetView[] }>('/api/v1/scale-sets');
      return (
        body !== null &&
        body.scaleSets.every((s) => {
          const live = liveRunners(s);
          return s.ephemeral ? live === 0 : live === s.minIdle && s.runners.idle === s.minIdle;
        })
      );
    },
    60_000,
    'the store to agree: ephemeral sets empty, persistent at minIdle',
  );
  mark('clean');
  await stopSampling();
  const injected: Record<number, number> = {};
  for (const x of sim.recordedExchanges()) {
    if (x.status === 500 || x.status === 429) injected[x.status] = (injected[x.status] ?? 0) + 1;
  }
  await controller.stop();

  const store = readStore(files.storePath);
  console.info(
    `chaos run: ${JSON.stringify({ timelineMs: timeline, killedWith, webhooksLostWhileDown, injected, apiCalls: sim.stats().apiCalls.total })}`,
  );
  run = {
    e2e,
    files,
    controller,
    jobs,
    tracker,
    left,
    killedWith,
    webhooksLostWhileDown,
    injected,
    store,
  };
}

afterAll(() => runCleanup(cleanup));

const need = (): Run => finished(run, 'the chaos run');

describe('chaos: duplicated and reordered webhooks, 20% API errors, two kill -9 of the controller', () => {
  it('applied the faults it claims', () => {
    const { e2e, controller, killedWith, webhooksLostWhileDown, injected } = need();
    expect(controller.kills).toBe(2);
    expect(controller.starts).toBe(3);
    // both kills fell in the middle of the run
    for (const k of killedWith) {
      expect(k.completed).toBeGreaterThan(0);
      expect(k.completed).toBeLessThan(200);
    }
    expect(webhooksLostWhileDown).toBeGreaterThanOrEqual(8);
    const stats = e2e.sim.stats();
    // every event went out twice: at least 2 deliveries per job action (queued, in_progress, completed)
    expect(stats.webhooks.sent + stats.webhooks.failed).toBeGreaterThanOrEqual(2 * 3 * 200);
    expect(injected[500]).toBeGreaterThan(10);
    expect(injected[429]).toBeGreaterThan(10);
    const share = ((injected[500] ?? 0) + (injected[429] ?? 0)) / stats.apiCalls.total;
    expect(share).toBeGreaterThan(0.1);
    expect(share).toBeLessThan(0.3);
  });

  it('completes every job successfully on a runner of its scale set; the store agrees', () => {
    const { e2e, jobs, store } = need();
    expect(jobs).toHaveLength(200);
    const byId = new Map(e2e.sim.jobs().map((j) => [j.id, j]));
    const stored = new Map(store.jobs.map((j) => [j.id, j]));
    const wrong: string[] = [];
    for (const job of jobs) {
      const sim = byId.get(job.id)!;
      if (sim.status !== 'completed' || sim.conclusion !== 'success') {
        wrong.push(`${job.id}: ${sim.status} ${sim.conclusion}`);
      } else if (sim.runnerName === null || !isRunnerOf(job.scaleSet, sim.runnerName)) {
        wrong.push(`${job.id} [${job.labels.join(',')}] ran on ${sim.runnerName}`);
      }
      const s = stored.get(job.id);
      if (s === undefined || s.status !== 'completed' || s.scale_set !== job.scaleSet) {
        wrong.push(`${job.id}: store has ${JSON.stringify(s)}`);
      }
    }
    expect(wrong).toEqual([]);
  });

  it('never has more than max runners of a scale set: live samples and the exact replay of the store history', () => {
    const { tracker, files, store } = need();
    // Replay: a record counts from `requested` to `deleted`; invariant 1 bounds the count in between.
    const { max: replayMax, end: live } = replayLiveRunners(store.events);
    for (const set of files.scaleSets) {
      const seen = expectAtMostMax(tracker, set, { storeReplay: replayMax.get(set.name) ?? 0 });
      expect(seen.storeReplay, `${set.name} reached max`).toBe(set.max);
      // the replay ends where the store is: persistent sets at minIdle, ephemeral ones empty
      expect(live.get(set.name) ?? 0).toBe(set.ephemeral ? 0 : set.minIdle);
    }
  });

  it('gives no job two new runners: every JIT registration ran a job or was lost to a kill', () => {
    const { e2e, jobs, store } = need();
    const sets = ['proc', 'cloud'];
    const created = jitRegistrations(e2e.sim, sets);
    const ran = runnersThatRan(e2e.sim, sets);
    const history = runnerHistory(store.events);
    for (const set of sets) {
      const jobCount = jobs.filter((j) => j.scaleSet === set).length;
      const names = created.get(set)!;
      expect(new Set(names).size, `${set}: registration names are unique`).toBe(names.length);
      // each job ran on its own runner (ephemeral: one job per runner)
      expect(ran.get(set)!.size).toBe(jobCount);
      const idle = names.filter((n) => !ran.get(set)!.has(n));
      const unexplained = idle.filter((n) => !(history.get(n) ?? []).some((h) => /interrupted/.test(h)));
      expect(unexplained.map((n) => `${n}: ${(history.get(n) ?? []).join(' | ')}`)).toEqual([]);
      // a kill can interrupt at most the creates in flight at that moment
      expect(names.length).toBeLessThanOrEqual(jobCount + idle.length);
      expect(idle.length).toBeLessThanOrEqual(2 * 32);
    }
  });

  it('leaves no runner and no instance behind; the persistent set is back at minIdle', () => {
    const { left, files, store } = need();
    expectClean(left, files);
    const live = store.runners.filter((r) => r.state !== 'deleted');
    expect(live.map((r) => `${r.scale_set}:${r.state}`)).toEqual(['persist:idle']);
  });

  it('logs no secret, crash output included', () => {
    const { e2e, controller, files } = need();
    const secrets = simulatorSecrets(e2e.sim);
    const kinds = countByKind(secrets);
    expect(kinds['JIT config']).toBeGreaterThanOrEqual(170);
    expect(kinds['installation token']).toBeGreaterThanOrEqual(1);
    expect(kinds['registration token']).toBeGreaterThanOrEqual(1);
    const runnerOutput = readFileSync(files.runnerLog, 'utf8');
    expect(runnerOutput.match(/Running job/g)?.length ?? 0).toBeGreaterThanOrEqual(20);
    expect(controller.stdout.lines.length).toBeGreaterThan(1000);
    // logs go to stdout as JSON; stderr stays empty (no crash traces, no runtime warnings)
    expect(controller.stderr.lines).toEqual([]);
    const hits = findSecrets(
      {
        'controller stdout': controller.stdout.text(),
        'controller stderr': controller.stderr.text(),
        simulator: e2e.logs.text(),
        'process runners': runnerOutput,
      },
      secrets,
    );
    expect(hits).toEqual([]);
  });
});
