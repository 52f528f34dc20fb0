/**
 * The takeover catch-up against the simulator's App webhook deliveries and a real (in-memory SQLite) store: a fresh
 * store ends up with the jobs another replica heard of, in their latest state; a second pass changes nothing. Every
 * deliveries call goes through the controller's GitHub client: each one the simulator answered is counted in
 * runner_fleet_github_api_calls_total.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GitHubClient } from '../github/index.js';
import { createGitHubClient } from '../github/index.js';
import type { Simulator } from '../sim/github/index.js';
import { startSimulator } from '../sim/github/index.js';
import { openStore } from '../store/store.js';
import type { FleetMetrics } from '../telemetry/index.js';
import { createMetrics } from '../telemetry/index.js';
import { catchUpAsLeader, catchUpOnTakeover } from './takeover-catch-up.js';

const LIST = 'GET /app/hook/deliveries';
const GET_ONE = 'GET /app/hook/deliveries/{delivery_id}';
const logger = pino({ level: 'silent' });

/** runner_fleet_github_api_calls_total for one route, every status. */
async function counted(metrics: FleetMetrics, route: string): Promise<number> {
  const { values } = await metrics.githubApiCalls.get();
  return values.filter((v) => v.labels.route === route).reduce((sum, v) => sum + v.value, 0);
}

describe('takeover catch-up', () => {
  let sim: Simulator;
  let receiver: ReturnType<typeof createServer>;
  let received = 0;
  let jobs: { id: number }[];

  beforeAll(async () => {
    // The previous leader: it accepts every delivery (and is then gone with what it learned).
    receiver = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        received++;
        res.writeHead(202).end();
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    const { port } = receiver.address() as AddressInfo;
    sim = await startSimulator({ orgs: ['octo-org'], webhookUrl: `http://127.0.0.1:${port}/webhook` });
    jobs = sim.createJobs({ owner: 'octo-org', repo: 'app', labels: ['linux', 'x64'], count: 3 });
    expect(sim.cancelJob(jobs[0]!.id)).toBe(true);
    await sim.webhooksIdle();
    expect(received).toBe(4);
  });

  afterAll(async () => {
    await sim.close();
    await new Promise((r) => receiver.close(r));
  });

  function client(auth: 'app' | 'token'): { github: GitHubClient; metrics: FleetMetrics } {
    const metrics = createMetrics();
    const github = createGitHubClient({
      config: {
        url: sim.baseUrl,
        apiUrl: sim.apiUrl,
        ghes: false,
        auth:
          auth === 'app'
            ? { app: { id: sim.appId, privateKey: sim.privateKeyPem } }
            : { token: 'ghp_runnerfleettakeovertest000000000000' },
      },
      logger,
      metrics,
    });
    return { github, metrics };
  }

  /** The simulator's own count of a route: what really reached it. */
  const served = (route: string) => sim.stats().apiCalls.byRoute[route] ?? 0;

  it('records the window’s workflow_job events in order into a fresh store, once, with counted calls', async () => {
    const { github, metrics } = client('app');
    const store = openStore({ path: ':memory:', route: () => 'linux' });
    const before = { list: served(LIST), one: served(GET_ONE) };
    try {
      const first = await catchUpOnTakeover({ github, sink: store, logger });
      expect(first).toEqual({ events: 4, recorded: 4, duplicates: 0, failed: 0 });
      const open = store.openJobs().map((j) => j.id);
      expect(open.sort()).toEqual(
        jobs
          .slice(1)
          .map((j) => j.id)
          .sort(),
      );
      expect(store.job(jobs[0]!.id)?.status).toBe('completed');
      // One GET per event, each counted by the client as the simulator saw it.
      expect(await counted(metrics, GET_ONE)).toBe(4);
      expect(served(GET_ONE) - before.one).toBe(4);
      expect(await counted(metrics, LIST)).toBe(served(LIST) - before.list);
      expect(github.apiCallCount().byRoute[GET_ONE]).toBe(4);

      const again = await catchUpOnTakeover({ github, sink: store, logger });
      expect(again).toEqual({ events: 4, recorded: 0, duplicates: 4, failed: 0 });
      expect(await counted(metrics, GET_ONE)).toBe(8);
      // Outside the lookback window there is nothing to read.
      const none = await catchUpOnTakeover({
        github,
        sink: store,
        logger,
        now: () => Date.now() + 7_200_000,
      });
      expect(none.events).toBe(0);
      expect(await counted(metrics, GET_ONE)).toBe(8);
    } finally {
      store.close();
    }
  });

  it('a new leader catches up with the controller’s own client; with a token there is nothing to read', async () => {
    const store = openStore({ path: ':memory:', route: () => 'linux' });
    try {
      const app = client('app');
      const result = await catchUpAsLeader(
        { github: app.github, store, logger },
        new AbortController().signal,
      );
      expect(result).toEqual({ events: 4, recorded: 4, duplicates: 0, failed: 0 });
      expect(await counted(app.metrics, GET_ONE)).toBe(4);
      expect(await counted(app.metrics, LIST)).toBeGreaterThanOrEqual(1);

      const token = client('token');
      const before = sim.stats().apiCalls.total;
      expect(
        await catchUpAsLeader({ github: token.github, store, logger }, new AbortController().signal),
      ).toBeNull();
      expect(token.github.apiCallCount().total).toBe(0);
      expect(sim.stats().apiCalls.total).toBe(before);
    } finally {
      store.close();
    }
  });
});
