/**
 * Pacing at GitHub's real limit, end to end: the controller as composeController builds it, against the simulator
 * with its default limits (180 runner-creating POSTs a minute per installation, 5,000 requests an hour). A burst of
 * 240 jobs into one scale set, then 30 into a second scale set of the same installation a few seconds later:
 *
 * - GitHub refuses nothing (no secondary-limit refusal), and every JIT POST is the one of a runner that ran a job;
 * - the second scale set is not starved by the first one's backlog: its jobs get runners long before that backlog
 *   is through;
 * - while runners wait for the budget, the API says so and no job status check is spent on their jobs;
 * - GitHub calls per job stay at about one.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { composeController } from '../../src/app/compose.js';
import type { Controller } from '../../src/app/compose.js';
import { loadConfig } from '../../src/config/index.js';
import { isRunnerOf } from '../../src/core/names.js';
import type { ScaleSetView } from '../../src/core/read-models.js';
import type { Simulator } from '../../src/sim/github/index.js';
import { simulatorCredentials, startFleetSimulator } from '../support/sim-fleet.js';
import { untilEvery } from '../support/until.js';

const until = untilEvery(100);
const BIG = 240;
const SMALL = 30;

interface Run {
  sim: Simulator;
  controller: Controller;
  /** ms after the burst when each scale set's last JIT POST was answered. */
  lastCreate: Record<string, number>;
  firstCreateSmall: number;
  /** The most creates the API showed waiting in `big`, and how long the oldest had waited then. */
  waitingSeen: { waiting: number; oldestWaitMs: number | null } | null;
  durationMs: number;
}

let run: Run | undefined;
const cleanup: (() => Promise<void> | void)[] = [];

beforeAll(async () => {
  // The simulator's default limits: nothing raised.
  const sim = await startFleetSimulator({ secondaryLimitPerMinute: 180 });
  cleanup.push(() => sim.close());
  const dir = mkdtempSync(join(tmpdir(), 'runner-fleet-pacing-'));
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  const set = (name: string, label: string) => ({
    name,
    scope: { org: 'octo-org' },
    labels: [label],
    max: 500,
    provider: { kind: 'sim', bootDelay: '100ms' },
  });
  const doc = {
    name: 'paced',
    ...simulatorCredentials(sim, dir),
    server: { host: '127.0.0.1', port: 0 },
    store: { path: join(dir, 'fleet.db') },
    scaleSets: [set('big', 'big'), set('small', 'small')],
  };
  writeFileSync(join(dir, 'fleet.yaml'), stringify(doc));
  const loaded = loadConfig(join(dir, 'fleet.yaml'), { env: {} });
  if (!loaded.ok) throw new Error(`fleet.yaml: ${JSON.stringify(loaded.problems)}`);
  const controller = await composeController({
    config: loaded.config,
    logLevel: 'warn',
    logDestination: new Writable({ write: (_c, _e, done) => done() }),
  });
  cleanup.unshift(() => controller.stop().then(() => undefined));
  const url = await controller.start();
  sim.setWebhook(`${url}/webhook`);
  await until(() => controller.reconciler.health().ready, 30_000, 'the first resync');

  const lastCreate: Record<string, number> = {};
  let firstCreateSmall = Infinity;
  let waitingSeen: Run['waitingSeen'] = null;
  const started = Date.now();
  const unsubscribe = controller.events.subscribe((e) => {
    const d = e.data as { scaleSet?: string; to?: string; from?: string | null };
    if (e.type === 'runner' && d.to === 'starting' && d.scaleSet !== undefined) {
      lastCreate[d.scaleSet] = Date.now() - started;
      if (d.scaleSet === 'small') firstCreateSmall = Math.min(firstCreateSmall, Date.now() - started);
    }
  });
  cleanup.unshift(unsubscribe);
  sim.createJobs({
    owner: 'octo-org',
    repo: 'app',
    labels: ['self-hosted', 'big'],
    count: BIG,
    durationMs: 200,
  });
  await new Promise((r) => setTimeout(r, 5_000));
  sim.createJobs({
    owner: 'octo-org',
    repo: 'app',
    labels: ['self-hosted', 'small'],
    count: SMALL,
    durationMs: 200,
  });
  await until(
    () => {
      const big = controller.readModel.scaleSets().find((s: ScaleSetView) => s.name === 'big');
      if (big !== undefined && big.pacing.waiting > (waitingSeen?.waiting ?? 0)) {
        waitingSeen = { waiting: big.pacing.waiting, oldestWaitMs: big.pacing.oldestWaitMs };
      }
      return sim.jobs('completed').length === BIG + SMALL;
    },
    150_000,
    `all ${BIG + SMALL} jobs completed`,
    () => ({ queued: sim.jobs('queued').length, stats: sim.stats() }),
  );
  await until(
    () => controller.store.runners().every((r) => r.state === 'deleted'),
    60_000,
    'every runner record deleted',
  );
  run = { sim, controller, lastCreate, firstCreateSmall, waitingSeen, durationMs: Date.now() - started };
  console.info(
    `paced burst: ${JSON.stringify({ ...run, sim: undefined, controller: undefined, stats: sim.stats() })}`,
  );
}, 240_000);

afterAll(async () => {
  for (const c of cleanup) await c();
});

const need = (): Run => {
  if (run === undefined) throw new Error('the paced run did not finish');
  return run;
};

describe(`paced burst of ${BIG + SMALL} jobs at the default limits`, () => {
  it('gets no rate-limit refusal from GitHub, and each JIT POST serves one job', () => {
    const { sim } = need();
    const stats = sim.stats();
    expect(stats.rateLimit).toEqual({ primaryRefusals: 0, secondaryRefusals: 0 });
    expect(stats.apiCalls.byRoute['POST /orgs/{org}/actions/runners/generate-jitconfig']).toBe(BIG + SMALL);
    const ran = sim.jobs('completed').filter((j) => j.conclusion === 'success');
    expect(ran).toHaveLength(BIG + SMALL);
    expect(
      ran.every((j) => isRunnerOf('big', j.runnerName ?? '') || isRunnerOf('small', j.runnerName ?? '')),
    ).toBe(true);
  });

  it("takes as long as the budget needs: no faster than GitHub's limit allows", () => {
    const { lastCreate } = need();
    // 270 creates with at most 180 in any minute: the 181st reaches GitHub a minute after the first at the earliest
    expect(Math.max(lastCreate.big!, lastCreate.small!)).toBeGreaterThan(60_000);
  });

  it("is fair: the second scale set's jobs get runners long before the first one's backlog is through", () => {
    const { lastCreate, firstCreateSmall } = need();
    expect(firstCreateSmall).toBeLessThan(15_000);
    expect(lastCreate.small!).toBeLessThan(lastCreate.big! - 30_000);
  });

  it('shows runners waiting for the budget in the API, and spends no job status check on them', () => {
    const { sim, waitingSeen } = need();
    expect(waitingSeen).not.toBeNull();
    expect(waitingSeen!.waiting).toBeGreaterThan(50);
    const checks = sim.stats().apiCalls.byRoute['GET /repos/{owner}/{repo}/actions/jobs/{job_id}'] ?? 0;
    expect(checks).toBe(0);
  });

  it('spends about one GitHub call per job', () => {
    const { sim } = need();
    const perJob = sim.stats().apiCalls.total / (BIG + SMALL);
    expect(perJob).toBeLessThanOrEqual(1.1);
  });

  it('records the wait in runner_fleet_pacing_wait_seconds', async () => {
    const { controller } = need();
    const text = await controller.metrics.registry.metrics();
    const count = (set: string) =>
      Number(
        new RegExp(`runner_fleet_pacing_wait_seconds_count\\{scale_set="${set}"\\} (\\d+)`).exec(text)?.[1] ??
          0,
      );
    expect(count('big') + count('small')).toBe(BIG + SMALL);
    const over30 = Number(
      /runner_fleet_pacing_wait_seconds_bucket\{le="30",scale_set="big"\} (\d+)/.exec(text)?.[1] ?? NaN,
    );
    expect(over30).toBeLessThan(BIG);
  });
});
