/**
 * `discovery: scale-set` against the simulator's Actions service: the controller composed as `start` composes it,
 * with a scale-set scale set beside a webhook one, webhooks delivered for every job. Jobs of the scale-set scale set
 * are learnt from its message queue (their webhooks are ignored), served by runners whose JIT configs come from the
 * runner scale set, with at most one runner per job and never more than max; a stale session at start is waited
 * out and reported; 401s and dropped long polls are survived; the session is deleted on stop; no token or JIT config
 * reaches the log. Where jobs are offered first (GHES), they are acquired; an admin token about to expire is traded
 * again.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { composeController } from '../../src/app/compose.js';
import type { Controller } from '../../src/app/compose.js';
import type { FleetConfig } from '../../src/core/fleet-config.js';
import { isRunnerOf } from '../../src/core/names.js';
import type { Simulator } from '../../src/sim/github/index.js';
import { startSimulator } from '../../src/sim/github/index.js';
import { untilEvery } from '../support/until.js';

const until = untilEvery(50);
let sim: Simulator;
let dir: string;
let controller: Controller | null = null;
let log = '';

beforeAll(async () => {
  sim = await startSimulator({
    orgs: ['octo-org'],
    scaleSetPollTimeoutMs: 1_000,
    scaleSetSessionTimeoutMs: 1_500,
    scaleSetRedeliveryMs: 1_000,
    runnerOfflineAfterMs: 2_000,
    secondaryLimitPerMinute: 10_000,
  });
  dir = mkdtempSync(join(tmpdir(), 'rf-scale-set-'));
});

afterEach(async () => {
  await controller?.stop();
  controller = null;
  await sim.reset();
});

afterAll(async () => {
  await sim.close();
  rmSync(dir, { recursive: true, force: true });
});

let stores = 0;

function fleet(max = 4): FleetConfig {
  const common = {
    scope: { org: 'octo-org' },
    runnerGroup: 'Default',
    minIdle: 0,
    ephemeral: true,
    registration: 'jit',
    priority: 0,
    bootstrapTimeout: 60_000,
    idleTimeout: 60_000,
    provider: { kind: 'sim', url: sim.baseUrl, bootDelay: 0 },
  } as const;
  return {
    name: 'ssm',
    github: { url: sim.baseUrl, apiUrl: sim.apiUrl, ghes: false, auth: { token: sim.token } },
    webhook: { secret: sim.webhookSecret },
    server: { host: '127.0.0.1', port: 0 },
    store: { path: join(dir, `store-${++stores}.db`) },
    controller: { resyncInterval: 1_000, orphanGracePeriod: 60_000, failureBackoff: 500, concurrency: 32 },
    scaleSets: [
      { ...common, name: 'queue', labels: ['queue-linux'], max, discovery: 'scale-set' },
      { ...common, name: 'hook', labels: ['hook-linux'], max, discovery: 'webhook' },
    ],
  } as FleetConfig;
}

async function start(config: FleetConfig): Promise<Controller> {
  log = '';
  controller = await composeController({
    config,
    logDestination: new Writable({
      write(chunk, _enc, done) {
        log += String(chunk);
        done();
      },
    }),
    logLevel: 'debug',
    dashboard: false,
    github: { retryBaseMs: 10 },
    scaleSetListener: { retryBaseMs: 100, maxRetryMs: 1_000 },
  });
  const url = await controller.start();
  sim.setWebhook(`${url}/webhook`, sim.webhookSecret);
  return controller;
}

/** Every job completed by a runner of its own scale set, and each runner ran at most one job. */
function expectServed(ids: readonly number[]): void {
  const jobs = ids.map((id) => sim.job(id)!);
  for (const j of jobs) expect(j.status, `job ${j.id}`).toBe('completed');
  const byRunner = new Map<string, number>();
  for (const j of jobs) byRunner.set(j.runnerName ?? '', (byRunner.get(j.runnerName ?? '') ?? 0) + 1);
  for (const [runner, n] of byRunner) expect(n, `jobs of ${runner}`).toBe(1);
}

describe('discovery: scale-set', () => {
  it('serves the scale set from its message queue beside a webhook scale set, within max, one runner per job', async () => {
    const c = await start(fleet(3));
    let peak = 0;
    let queue: { id: number }[];
    const watch = setInterval(() => {
      const live = sim.runners().filter((r) => isRunnerOf('queue', r.name)).length;
      peak = Math.max(peak, live);
    }, 10);
    try {
      await until(() => sim.scaleSets().some((s) => s.session !== null), 10_000, 'a message session');
      queue = sim.createJobs({
        owner: 'octo-org',
        repo: 'app',
        labels: ['queue-linux'],
        count: 8,
        durationMs: 100,
      });
      const hook = sim.createJobs({
        owner: 'octo-org',
        repo: 'app',
        labels: ['hook-linux'],
        count: 3,
        durationMs: 100,
      });
      const ids = [...queue, ...hook].map((j) => j.id);
      await until(
        () => ids.every((id) => sim.job(id)!.status === 'completed'),
        60_000,
        'every job served',
        () => sim.jobs().filter((j) => j.status !== 'completed').length,
      );
      expectServed(ids);
      for (const j of queue) expect(isRunnerOf('queue', sim.job(j.id)!.runnerName!)).toBe(true);
      for (const j of hook) expect(isRunnerOf('hook', sim.job(j.id)!.runnerName!)).toBe(true);
    } finally {
      clearInterval(watch);
    }
    expect(peak).toBeLessThanOrEqual(3);
    // The scale set's jobs were recorded from messages (runner request ids), never from their webhooks.
    const recorded = c.store.openJobs().concat(c.store.recentCompletedJobs(100));
    const queueRecords = recorded.filter((j) => j.scaleSet === 'queue');
    expect(queueRecords.length).toBe(8);
    for (const j of queueRecords) expect(queue.map((q) => q.id)).not.toContain(j.id);
    expect(recorded.filter((j) => j.scaleSet === null)).toEqual([]);
    // Every message is acknowledged once its last items (the JobCompleted ones) were recorded.
    await until(() => sim.scaleSets()[0]?.unacknowledged === 0, 10_000, 'every message acknowledged');
    expect(sim.scaleSets()[0]).toMatchObject({ name: 'queue', labels: ['queue-linux'], maxCapacity: 3 });
    // Nothing left behind, and the session goes with the controller.
    await until(
      () => sim.runners().length === 0 && sim.instances().length === 0,
      20_000,
      'nothing leaked',
      () => sim.runners(),
    );
    await c.stop();
    controller = null;
    expect(
      sim.scaleSets()[0]!.session,
      log
        .split('\n')
        .filter((l) => /session/.test(l))
        .join('\n'),
    ).toBeNull();
    // No admin token, queue token or JIT config in the log.
    expect(log).toContain('message session opened');
    expect(log).not.toMatch(/eyJ[A-Za-z0-9_-]{10,}\./);
    expect(log).not.toMatch(/RemoteAuth|messageQueueAccessToken|encodedJITConfig/);
  });

  it('waits out a stale session at start (409), reports it, then serves', async () => {
    sim.setFaults({ sessionConflicts: 3 });
    const c = await start(fleet());
    await until(
      () => sim.scaleSets().some((s) => s.session !== null),
      15_000,
      'a session after the conflicts',
    );
    const events = c.store.recentEvents({ scaleSet: 'queue' });
    expect(events.some((e) => e.event === 'session-conflict')).toBe(true);
    expect(log).toContain('already has an active session');
    const jobs = sim.createJobs({
      owner: 'octo-org',
      repo: 'app',
      labels: ['queue-linux'],
      count: 3,
      durationMs: 50,
    });
    await until(() => jobs.every((j) => sim.job(j.id)!.status === 'completed'), 30_000, 'jobs served');
    expectServed(jobs.map((j) => j.id));
  });

  it('survives 401s on the queue and dropped long polls', async () => {
    await start(fleet());
    await until(() => sim.scaleSets().some((s) => s.session !== null), 10_000, 'a message session');
    sim.setFaults({ queueUnauthorizedRate: 0.3, queueDropRate: 0.3 });
    sim.expireQueueTokens();
    const jobs = sim.createJobs({
      owner: 'octo-org',
      repo: 'app',
      labels: ['queue-linux'],
      count: 6,
      durationMs: 50,
    });
    await until(() => jobs.every((j) => sim.job(j.id)!.status === 'completed'), 60_000, 'jobs served');
    sim.setFaults({ queueUnauthorizedRate: 0, queueDropRate: 0 });
    expectServed(jobs.map((j) => j.id));
    expect(log).toContain('message queue token refreshed');
    await until(() => sim.scaleSets()[0]!.unacknowledged === 0, 10_000, 'every message acknowledged');
  });
});

describe('discovery: scale-set where jobs must be acquired (as on GHES), with a short-lived admin token', () => {
  let offering: Simulator;
  let original: Simulator;

  beforeAll(async () => {
    offering = await startSimulator({
      orgs: ['octo-org'],
      scaleSetAcquireJobs: true,
      scaleSetPollTimeoutMs: 1_000,
      // Its exp is within the client's 60 s refresh margin a second after it is issued.
      actionsAdminTokenTtlMs: 61_000,
      secondaryLimitPerMinute: 10_000,
    });
    original = sim;
    sim = offering;
  });

  afterAll(async () => {
    sim = original;
    await offering.close();
  });

  it('acquires offered jobs, serves them, and trades the admin token again before it expires', async () => {
    await start(fleet());
    await until(() => sim.scaleSets().some((s) => s.session !== null), 10_000, 'a message session');
    const serve = async () => {
      const jobs = sim.createJobs({
        owner: 'octo-org',
        repo: 'app',
        labels: ['queue-linux'],
        count: 3,
        durationMs: 50,
      });
      await until(
        () => jobs.every((j) => sim.job(j.id)!.status === 'completed'),
        30_000,
        'offered jobs served',
      );
      expectServed(jobs.map((j) => j.id));
    };
    await serve();
    await new Promise((r) => setTimeout(r, 1_500));
    await serve();
    const byRoute = sim.stats().apiCalls.byRoute;
    expect(byRoute['POST {actions}/_apis/runtime/runnerscalesets/{id}/acquirejobs']).toBeGreaterThan(0);
    // Admin tokens are the JWTs among what the service issued (the others are queue tokens and JIT configs).
    const adminTokens = sim.actionsSecrets().filter((s) => s.split('.').length === 3);
    expect(adminTokens.length).toBeGreaterThan(1);
    expect(log).not.toMatch(/eyJ[A-Za-z0-9_-]{10,}\./);
  });
});
