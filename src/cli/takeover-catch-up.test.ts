/**
 * The takeover catch-up against the simulator's App webhook deliveries and a real (in-memory SQLite) store: a fresh
 * store ends up with the jobs another replica heard of, in their latest state; a second pass changes nothing.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createAppAuth } from '@octokit/auth-app';
import { Octokit } from '@octokit/core';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGitHubClient } from '../github/index.js';
import type { Simulator } from '../sim/github/index.js';
import { startSimulator } from '../sim/github/index.js';
import { openStore } from '../store/store.js';
import { catchUpOnTakeover } from './takeover-catch-up.js';

describe('takeover catch-up', () => {
  let sim: Simulator;
  let receiver: ReturnType<typeof createServer>;
  let received = 0;

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
  });

  afterAll(async () => {
    await sim.close();
    await new Promise((r) => receiver.close(r));
  });

  it('records the window’s workflow_job events in order into a fresh store, once', async () => {
    const jobs = sim.createJobs({ owner: 'octo-org', repo: 'app', labels: ['linux', 'x64'], count: 3 });
    const cancelled = jobs[0]!.id;
    expect(sim.cancelJob(cancelled)).toBe(true);
    await sim.webhooksIdle();
    expect(received).toBe(4);

    const logger = pino({ level: 'silent' });
    const github = createGitHubClient({
      config: {
        url: sim.baseUrl,
        apiUrl: sim.apiUrl,
        ghes: false,
        auth: { app: { id: sim.appId, privateKey: sim.privateKeyPem } },
      },
      logger,
    });
    const app = new Octokit({
      baseUrl: sim.apiUrl,
      authStrategy: createAppAuth,
      auth: { appId: sim.appId, privateKey: sim.privateKeyPem },
    });
    const payloadOf = async (id: number) =>
      (
        (await app.request('GET /app/hook/deliveries/{delivery_id}', { delivery_id: id })).data as {
          request: { payload: unknown };
        }
      ).request.payload;
    const store = openStore({ path: ':memory:', route: () => 'linux' });
    try {
      const first = await catchUpOnTakeover({ github, payloadOf, sink: store, logger });
      expect(first).toEqual({ events: 4, recorded: 4, duplicates: 0, failed: 0 });
      const open = store.openJobs().map((j) => j.id);
      expect(open.sort()).toEqual(
        jobs
          .slice(1)
          .map((j) => j.id)
          .sort(),
      );
      expect(store.job(cancelled)?.status).toBe('completed');

      const again = await catchUpOnTakeover({ github, payloadOf, sink: store, logger });
      expect(again).toEqual({ events: 4, recorded: 0, duplicates: 4, failed: 0 });
      // Outside the lookback window there is nothing to read.
      const none = await catchUpOnTakeover({
        github,
        payloadOf,
        sink: store,
        logger,
        now: () => Date.now() + 7_200_000,
      });
      expect(none.events).toBe(0);
    } finally {
      store.close();
    }
  });
});
