/**
 * The control API and GitHub's operational behaviour: stats by route, fault injection (REST and webhooks, never
 * /_sim), primary and secondary rate limits, deliveries API with redelivery, PUT /_sim/webhook, reset.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { signPayload, startSimulator } from '../../src/sim/github/index.js';
import type { SimStats, Simulator } from '../../src/sim/github/index.js';
import { call, waitFor, webhookReceiver } from './helpers.js';

let sim: Simulator;
let hook: Awaited<ReturnType<typeof webhookReceiver>>;

beforeAll(async () => {
  hook = await webhookReceiver();
  sim = await startSimulator({ secondaryLimitPerMinute: 1000 });
});

afterAll(async () => {
  await sim?.close();
  await hook?.close();
});

afterEach(async () => {
  await call(`${sim.baseUrl}/_sim/reset`, { method: 'POST' });
  hook.received.length = 0;
});

const stats = async () => (await call(`${sim.baseUrl}/_sim/stats`)).body as SimStats;
const jit = (name: string) =>
  call(`${sim.apiUrl}/orgs/octo-org/actions/runners/generate-jitconfig`, {
    method: 'POST',
    token: sim.token,
    body: { name, runner_group_id: 1, labels: ['x'] },
  });

describe('control API', () => {
  it('counts GitHub REST calls by route template, not control or broker calls', async () => {
    await jit('s-1');
    await jit('s-2');
    await call(`${sim.apiUrl}/orgs/octo-org/actions/runners?per_page=5`, { token: sim.token });
    await call(`${sim.baseUrl}/_sim/jobs`);
    const s = await stats();
    expect(s.apiCalls.total).toBe(3);
    expect(s.apiCalls.byRoute).toEqual({
      'POST /orgs/{org}/actions/runners/generate-jitconfig': 2,
      'GET /orgs/{org}/actions/runners': 1,
    });
    expect(s.runners).toEqual({ registered: 2, online: 0, busy: 0 });
    expect(s.jobs).toEqual({ queued: 0, in_progress: 0, completed: 0 });
    expect(s.webhooks).toEqual({ sent: 0, failed: 0, dropped: 0 });
  });

  it('injects API errors and latency into REST calls only', async () => {
    const set = await call(`${sim.baseUrl}/_sim/faults`, {
      method: 'POST',
      body: { apiErrorRate: 1, apiErrorStatus: 502, latencyMs: 50 },
    });
    expect(set.status).toBe(200);
    const started = Date.now();
    const r = await jit('f-1');
    expect(Date.now() - started).toBeGreaterThanOrEqual(45);
    expect(r.status).toBe(502);
    expect(r.headers.get('x-ratelimit-remaining')).not.toBeNull();
    expect(sim.runners()).toHaveLength(0);
    expect((await call(`${sim.baseUrl}/_sim/stats`)).status).toBe(200);

    await call(`${sim.baseUrl}/_sim/faults`, {
      method: 'POST',
      body: { apiErrorRate: 0, apiLostResponseRate: 1, apiErrorStatus: 500, latencyMs: 0 },
    });
    const lost = await jit('f-2');
    expect(lost.status).toBe(500);
    // The call took effect: a retry finds the name taken (409), as after a lost response on GitHub.
    expect(sim.runners().map((x) => x.name)).toEqual(['f-2']);
    await call(`${sim.baseUrl}/_sim/faults`, { method: 'POST', body: { apiLostResponseRate: 0 } });
    expect((await jit('f-2')).status).toBe(409);

    await call(`${sim.baseUrl}/_sim/faults`, {
      method: 'POST',
      body: { apiErrorRate: 1, apiErrorStatus: 429 },
    });
    const limited = await jit('f-3');
    expect(limited.status).toBe(429);
    expect(limited.headers.get('retry-after')).toBe('1');
    expect((limited.body as { message: string }).message).toMatch(/secondary rate limit/);

    const badFault = await call(`${sim.baseUrl}/_sim/faults`, { method: 'POST', body: { apiErrorRate: 2 } });
    expect(badFault.status).toBe(400);
  });

  it('enforces the primary rate limit with x-ratelimit-* headers', async () => {
    const first = await call(`${sim.apiUrl}/orgs/octo-org/actions/runners`, { token: sim.token });
    expect(first.headers.get('x-ratelimit-limit')).toBe('5000');
    expect(first.headers.get('x-ratelimit-used')).toBe('1');
    await call(`${sim.baseUrl}/_sim/faults`, { method: 'POST', body: { rateLimit: { remaining: 1 } } });
    const last = await call(`${sim.apiUrl}/orgs/octo-org/actions/runners`, { token: sim.token });
    expect(last.status).toBe(200);
    expect(last.headers.get('x-ratelimit-remaining')).toBe('0');
    const refused = await call(`${sim.apiUrl}/orgs/octo-org/actions/runners`, { token: sim.token });
    expect(refused.status).toBe(403);
    expect(refused.headers.get('x-ratelimit-remaining')).toBe('0');
    expect(Number(refused.headers.get('x-ratelimit-reset'))).toBeGreaterThan(Date.now() / 1000);
    expect((refused.body as { message: string }).message).toMatch(/API rate limit exceeded/);
    const rl = await call(`${sim.apiUrl}/rate_limit`, { token: sim.token });
    expect(rl.status).toBe(200);
    expect((rl.body as { rate: { remaining: number } }).rate.remaining).toBe(0);
  });

  it('enforces the secondary limit on runner-creating POSTs with retry-after', async () => {
    await call(`${sim.baseUrl}/_sim/faults`, {
      method: 'POST',
      body: { rateLimit: { secondaryPerMinute: 2 } },
    });
    expect((await jit('sec-1')).status).toBe(201);
    expect((await jit('sec-2')).status).toBe(201);
    const third = await jit('sec-3');
    expect(third.status).toBe(403);
    expect(Number(third.headers.get('retry-after'))).toBeGreaterThan(0);
    expect((third.body as { message: string }).message).toMatch(/secondary rate limit/);
    expect((await call(`${sim.apiUrl}/orgs/octo-org/actions/runners`, { token: sim.token })).status).toBe(
      200,
    );
    expect((await stats()).rateLimit).toEqual({ primaryRefusals: 0, secondaryRefusals: 1 });
  });

  it('reports refusals by limit in /_sim/stats, not injected faults, and starts over on reset', async () => {
    await call(`${sim.baseUrl}/_sim/faults`, {
      method: 'POST',
      body: { apiErrorRate: 1, apiErrorStatus: 403 },
    });
    expect((await jit('inj-1')).status).toBe(403);
    expect((await stats()).rateLimit).toEqual({ primaryRefusals: 0, secondaryRefusals: 0 });
    await call(`${sim.baseUrl}/_sim/faults`, {
      method: 'POST',
      body: { apiErrorRate: 0, rateLimit: { remaining: 0 } },
    });
    expect((await call(`${sim.apiUrl}/orgs/octo-org/actions/runners`, { token: sim.token })).status).toBe(
      403,
    );
    expect((await call(`${sim.apiUrl}/orgs/octo-org/actions/runners`, { token: sim.token })).status).toBe(
      403,
    );
    expect((await stats()).rateLimit).toEqual({ primaryRefusals: 2, secondaryRefusals: 0 });
    await call(`${sim.baseUrl}/_sim/reset`, { method: 'POST' });
    expect((await stats()).rateLimit).toEqual({ primaryRefusals: 0, secondaryRefusals: 0 });
  });

  it('delivers signed webhooks to a URL set later, records deliveries, redelivers with the same GUID', async () => {
    const put = await call(`${sim.baseUrl}/_sim/webhook`, {
      method: 'PUT',
      body: { url: hook.url, secret: 'later-secret' },
    });
    expect(put.status).toBe(200);
    const created = await call(`${sim.baseUrl}/_sim/jobs`, {
      method: 'POST',
      body: { owner: 'octo-org', repo: 'app', labels: ['none'] },
    });
    expect(created.status).toBe(201);
    await sim.webhooksIdle();
    expect(hook.received).toHaveLength(1);
    const delivery = hook.received[0]!;
    expect(delivery.headers['x-hub-signature-256']).toBe(signPayload('later-secret', delivery.raw));
    expect(delivery.headers['x-github-event']).toBe('workflow_job');
    expect(delivery.headers['x-github-hook-installation-target-type']).toBe('integration');
    expect(delivery.headers['x-github-hook-installation-target-id']).toBe(String(sim.appId));

    const appJwt = await appToken(sim);
    const list = await call(`${sim.apiUrl}/app/hook/deliveries`, { token: appJwt });
    expect(list.status).toBe(200);
    const items = list.body as { id: number; guid: string; status_code: number; action: string }[];
    expect(items).toHaveLength(1);
    expect(items[0]).toMatchObject({
      guid: delivery.headers['x-github-delivery'],
      status_code: 200,
      action: 'queued',
    });
    const redeliver = await call(`${sim.apiUrl}/app/hook/deliveries/${items[0]!.id}/attempts`, {
      method: 'POST',
      token: appJwt,
    });
    expect(redeliver.status).toBe(202);
    await sim.webhooksIdle();
    expect(hook.received).toHaveLength(2);
    expect(hook.received[1]!.headers['x-github-delivery']).toBe(delivery.headers['x-github-delivery']);
    expect(hook.received[1]!.raw).toBe(delivery.raw);
    const detail = await call(`${sim.apiUrl}/app/hook/deliveries/${items[0]!.id}`, { token: appJwt });
    expect(detail.body).toMatchObject({
      request: { payload: { action: 'queued' } },
      response: { payload: 'ok' },
    });
    const after = (await call(`${sim.apiUrl}/app/hook/deliveries`, { token: appJwt })).body as {
      redelivery: boolean;
    }[];
    expect(after.map((d) => d.redelivery)).toEqual([true, false]);
  });

  it('drops and duplicates webhooks as told, and never retries a failed delivery', async () => {
    sim.setWebhook(hook.url);
    await call(`${sim.baseUrl}/_sim/faults`, { method: 'POST', body: { webhookDropRate: 1 } });
    sim.createJobs({ owner: 'octo-org', repo: 'app', labels: ['none'] });
    await sim.webhooksIdle();
    expect(hook.received).toHaveLength(0);
    expect((await stats()).webhooks).toEqual({ sent: 0, failed: 0, dropped: 1 });

    await call(`${sim.baseUrl}/_sim/faults`, {
      method: 'POST',
      body: { webhookDropRate: 0, webhookDuplicateRate: 1, webhookDelayMs: 30 },
    });
    sim.createJobs({ owner: 'octo-org', repo: 'app', labels: ['none'] });
    await sim.webhooksIdle();
    expect(hook.received).toHaveLength(2);
    expect(hook.received[0]!.raw).toBe(hook.received[1]!.raw);
    expect(hook.received[0]!.headers['x-github-delivery']).not.toBe(
      hook.received[1]!.headers['x-github-delivery'],
    );

    sim.setWebhook('http://127.0.0.1:9/unreachable');
    await call(`${sim.baseUrl}/_sim/faults`, {
      method: 'POST',
      body: { webhookDuplicateRate: 0, webhookDelayMs: 0 },
    });
    sim.createJobs({ owner: 'octo-org', repo: 'app', labels: ['none'] });
    await sim.webhooksIdle();
    expect((await stats()).webhooks.failed).toBe(1);
    await new Promise((r) => setTimeout(r, 100));
    expect((await stats()).webhooks.failed).toBe(1);
  });

  it('lists, filters and cancels jobs; reset empties everything', async () => {
    const created = await call(`${sim.baseUrl}/_sim/jobs`, {
      method: 'POST',
      body: { owner: 'octo-org', repo: 'app', labels: ['a'], count: 3, durationMs: 10 },
    });
    const ids = (created.body as { jobs: { id: number; runId: number }[] }).jobs;
    expect(ids).toHaveLength(3);
    expect(new Set(ids.map((j) => j.runId)).size).toBe(1);
    expect((await call(`${sim.baseUrl}/_sim/jobs/${ids[0]!.id}/cancel`, { method: 'POST' })).status).toBe(
      202,
    );
    expect((await call(`${sim.baseUrl}/_sim/jobs/${ids[0]!.id}/cancel`, { method: 'POST' })).status).toBe(
      409,
    );
    expect((await call(`${sim.baseUrl}/_sim/jobs/999/cancel`, { method: 'POST' })).status).toBe(404);
    const queued = (await call(`${sim.baseUrl}/_sim/jobs?status=queued`)).body as {
      jobs: { status: string }[];
    };
    expect(queued.jobs).toHaveLength(2);
    const completed = (await call(`${sim.baseUrl}/_sim/jobs?status=completed`)).body as {
      jobs: { conclusion: string }[];
    };
    expect(completed.jobs).toEqual([
      expect.objectContaining({
        conclusion: 'cancelled',
        status: 'completed',
        completedAt: expect.any(Number),
      }),
    ]);
    expect((await call(`${sim.baseUrl}/_sim/jobs?status=bogus`)).status).toBe(400);
    for (const body of [
      {},
      { owner: 'octo-org', repo: 'app' },
      { owner: 'nobody', repo: 'app', labels: ['a'] },
      { owner: 'octo-org', repo: 'app', labels: ['a'], count: 0 },
    ]) {
      expect((await call(`${sim.baseUrl}/_sim/jobs`, { method: 'POST', body })).status).toBe(400);
    }
    expect((await call(`${sim.baseUrl}/_sim/reset`, { method: 'POST' })).status).toBe(204);
    expect(((await call(`${sim.baseUrl}/_sim/jobs`)).body as { jobs: unknown[] }).jobs).toEqual([]);
    await waitFor('stats zero', async () => (await stats()).apiCalls.total === 0);
  });
});

async function appToken(s: Simulator): Promise<string> {
  const { createAppAuth } = await import('@octokit/auth-app');
  const auth = createAppAuth({ appId: s.appId, privateKey: s.privateKeyPem });
  return (await auth({ type: 'app' })).token;
}
