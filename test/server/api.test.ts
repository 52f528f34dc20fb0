import { afterEach, describe, expect, it } from 'vitest';
import { createServer } from '../../src/server/server.js';
import type { HealthCheck } from '../../src/server/server.js';
import { ServerConfigError, isLoopbackHost } from '../../src/server/auth.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { createMetrics } from '../../src/telemetry/metrics.js';
import {
  DASHBOARD_TOKEN,
  MemorySink,
  SECRET,
  leakyReadModel,
  signedHeaders,
  startTestServer,
  testConfig,
  workflowJobPayload,
} from './helpers.js';
import type { TestServer } from './helpers.js';

let t: TestServer | null = null;
afterEach(async () => {
  await t?.server.close();
  t = null;
});

const silent = createLogger({ level: 'silent' });

describe('health and metrics', () => {
  it('/healthz is up while /readyz follows isReady (and a failing check is not ready)', async () => {
    let ready: boolean | Error = false;
    t = await startTestServer({
      isReady: () => {
        if (ready instanceof Error) throw ready;
        return ready;
      },
    });
    const { app } = t.server;
    expect((await app.inject({ url: '/healthz' })).statusCode).toBe(200);
    expect((await app.inject({ url: '/readyz' })).statusCode).toBe(503);
    ready = true;
    expect((await app.inject({ url: '/readyz' })).json()).toEqual({ status: 'ready' });
    ready = new Error('store closed');
    expect((await app.inject({ url: '/readyz' })).statusCode).toBe(503);
  });

  it('/readyz says why it is not ready; /healthz is 503 with the failed component while one has failed', async () => {
    let store: HealthCheck = { status: 'ok' };
    t = await startTestServer({
      isReady: () =>
        store.status === 'ok'
          ? { ready: true, reason: 'ignored when ready' }
          : { ready: false, reason: `store failed: ${store.reason} (${store.code})` },
      health: () => ({ store }),
    });
    const { app } = t.server;
    expect((await app.inject({ url: '/healthz' })).json()).toEqual({
      status: 'ok',
      checks: { store: { status: 'ok' } },
    });
    expect((await app.inject({ url: '/readyz' })).json()).toEqual({ status: 'ready' });
    store = {
      status: 'failed',
      code: 'SQLITE_CORRUPT',
      reason: 'database disk image is malformed',
      since: '2026-01-01T00:00:00.000Z',
    };
    const health = await app.inject({ url: '/healthz' });
    expect(health.statusCode).toBe(503);
    expect(health.json()).toEqual({ status: 'unhealthy', checks: { store } });
    const ready = await app.inject({ url: '/readyz' });
    expect(ready.statusCode).toBe(503);
    expect(ready.json()).toEqual({
      status: 'not ready',
      reason: 'store failed: database disk image is malformed (SQLITE_CORRUPT)',
    });
  });

  it('/metrics serves the Prometheus text of the instance registry', async () => {
    t = await startTestServer();
    t.metrics.jobs.inc({ scale_set: 'linux-small', event: 'queued' });
    const res = await t.server.app.inject({ url: '/metrics' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toContain('text/plain');
    expect(res.body).toContain('runner_fleet_jobs_total{scale_set="linux-small",event="queued"} 1');
    expect(res.body).toContain('# TYPE runner_fleet_webhooks_total counter');
  });
});

describe('/api/v1', () => {
  it('serves scale sets, runners, jobs and events as JSON without the secrets the records carry', async () => {
    t = await startTestServer();
    const { app } = t.server;
    const scaleSets = await app.inject({ url: '/api/v1/scale-sets' });
    expect(scaleSets.statusCode).toBe(200);
    expect(scaleSets.json().scaleSets[0]).toMatchObject({
      name: 'linux-small',
      scope: { org: 'octo-org' },
      runners: { idle: 1, busy: 2, deleted: 0 },
      activeRunners: 3,
      queuedJobs: 3,
      backoff: { failures: 0, until: null },
      instancesListedAt: null,
    });
    const runners = await app.inject({ url: '/api/v1/runners?state=busy' });
    expect(runners.json().runners).toEqual([
      {
        name: 'linux-small-ab12',
        scaleSet: 'linux-small',
        state: 'busy',
        reason: null,
        githubId: 7,
        createdAt: 1,
        ageMs: 10,
        stateChangedAt: 2,
        stateAgeMs: 9,
        instance: { state: 'running', providerId: 'pid-1234' },
        github: { status: 'online', busy: true },
        job: { id: 99, status: 'in_progress' },
      },
    ]);
    expect((await app.inject({ url: '/api/v1/runners?state=idle' })).json().runners).toEqual([]);
    const jobs = await app.inject({ url: '/api/v1/jobs' });
    expect(jobs.json().jobs).toHaveLength(3);
    expect(jobs.json().jobs[2]).toMatchObject({
      id: 102,
      status: 'queued',
      scaleSet: null,
      unroutable: true,
      waitMs: 20,
    });
    const events = await app.inject({ url: '/api/v1/events?scaleSet=linux-small&afterId=0' });
    expect(events.json().events[0]).toMatchObject({ id: 1, kind: 'runner', event: 'idle' });
    const all = scaleSets.body + runners.body + jobs.body + events.body;
    for (const secret of [
      'AABF3JGZDX3P5PMEXLND6TS6FCWO6',
      'eyJTRUNSRVQiOiJqaXQifQ',
      'secret-jit',
      'ghs_',
      'registrationToken',
      'encodedJitConfig',
      'jitConfig',
      'token',
    ]) {
      expect(all).not.toContain(secret);
    }
  });

  it('scrubs token-shaped values out of free-text reasons', async () => {
    const model = leakyReadModel();
    const leaked = 'ghs_16CharsOrMoreOfInstallationToken';
    const runners = await model.runners({});
    t = await startTestServer({
      readModel: {
        ...model,
        runners: () => runners.map((r) => ({ ...r, reason: `JIT call failed with token ${leaked}` })),
      },
    });
    const body = (await t.server.app.inject({ url: '/api/v1/runners' })).body;
    expect(body).toContain('JIT call failed with token');
    expect(body).not.toContain(leaked);
  });

  it('validates query parameters and passes them on', async () => {
    const model = leakyReadModel();
    t = await startTestServer({ readModel: model });
    const { app } = t.server;
    expect((await app.inject({ url: '/api/v1/runners?state=sleeping' })).statusCode).toBe(400);
    expect((await app.inject({ url: '/api/v1/jobs?status=done' })).statusCode).toBe(400);
    expect((await app.inject({ url: '/api/v1/jobs?completedLimit=-1' })).statusCode).toBe(400);
    const bad = await app.inject({ url: '/api/v1/events?limit=abc' });
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toEqual({ error: 'bad_request', message: 'limit must be a non-negative integer' });
    await app.inject({ url: '/api/v1/jobs?completedLimit=999999&status=completed' });
    expect(model.lastJobQuery).toEqual({ status: 'completed', completedLimit: 5000 });
    await app.inject({ url: '/api/v1/jobs?unroutable=true' });
    expect(model.lastJobQuery).toEqual({ scaleSet: null });
    await app.inject({ url: '/api/v1/jobs?scaleSet=linux-small' });
    expect(model.lastJobQuery).toEqual({ scaleSet: 'linux-small' });
    await app.inject({ url: '/api/v1/events' });
    expect(model.lastEventQuery).toEqual({ limit: 200 });
    await app.inject({ url: '/api/v1/events?jobId=7&limit=10' });
    expect(model.lastEventQuery).toEqual({ limit: 10, jobId: 7 });
  });

  it('answers 404 for events when the read model has none', async () => {
    const { events: _events, ...withoutEvents } = leakyReadModel();
    t = await startTestServer({ readModel: withoutEvents });
    expect((await t.server.app.inject({ url: '/api/v1/events' })).statusCode).toBe(404);
  });

  it('requires the bearer token when one is configured, for /api/v1 only', async () => {
    t = await startTestServer({ config: testConfig({ dashboardToken: DASHBOARD_TOKEN }) });
    const { app } = t.server;
    expect((await app.inject({ url: '/api/v1/jobs' })).statusCode).toBe(401);
    expect(
      (await app.inject({ url: '/api/v1/jobs', headers: { authorization: 'Bearer nope' } })).statusCode,
    ).toBe(401);
    expect(
      (await app.inject({ url: '/api/v1/jobs', headers: { authorization: DASHBOARD_TOKEN } })).statusCode,
    ).toBe(401);
    const ok = await app.inject({
      url: '/api/v1/jobs',
      headers: { authorization: `Bearer ${DASHBOARD_TOKEN}` },
    });
    expect(ok.statusCode).toBe(200);
    // GitHub, kubelet probes and Prometheus do not carry the dashboard token.
    expect((await app.inject({ url: '/healthz' })).statusCode).toBe(200);
    expect((await app.inject({ url: '/metrics' })).statusCode).toBe(200);
    const body = JSON.stringify(workflowJobPayload());
    expect(
      (
        await app.inject({
          method: 'POST',
          url: '/webhook',
          payload: body,
          headers: await signedHeaders(body),
        })
      ).statusCode,
    ).toBe(202);
  });
});

describe('exposure rule', () => {
  it('refuses to start beyond loopback without a dashboard token, with a clear error', async () => {
    const base = {
      sink: new MemorySink(),
      readModel: leakyReadModel(),
      isReady: () => true,
      metrics: createMetrics(),
      logger: silent,
    };
    const attempt = createServer({
      ...base,
      config: { server: { host: '0.0.0.0', port: 0 }, webhook: { secret: SECRET } },
    });
    await expect(attempt).rejects.toBeInstanceOf(ServerConfigError);
    await expect(attempt).rejects.toThrow(/server\.host is 0\.0\.0\.0.*dashboardToken/);
    const withToken = await createServer({
      ...base,
      config: {
        server: { host: '0.0.0.0', port: 0, dashboardToken: DASHBOARD_TOKEN },
        webhook: { secret: SECRET },
      },
    });
    await withToken.close();
  });

  it('with server.dashboard the main port serves only webhook, health and metrics, and needs no token', async () => {
    const base = {
      sink: new MemorySink(),
      readModel: leakyReadModel(),
      isReady: () => true,
      metrics: createMetrics(),
      logger: silent,
    };
    // The API and dashboard listener beyond loopback still needs a token, and the error names that field.
    const exposed = createServer({
      ...base,
      config: {
        server: { host: '127.0.0.1', port: 0, dashboard: { host: '0.0.0.0', port: 0 } },
        webhook: { secret: SECRET },
      },
    });
    await expect(exposed).rejects.toThrow(/server\.dashboard\.host is 0\.0\.0\.0/);

    // Accepted on 0.0.0.0 without a token (not listened on here: test servers stay on loopback).
    const open = await createServer({
      ...base,
      config: {
        server: { host: '0.0.0.0', port: 0, dashboard: { host: '127.0.0.1', port: 0 } },
        webhook: { secret: SECRET },
      },
    });
    await open.close();

    const server = await createServer({
      ...base,
      dashboard: {
        register(app) {
          app.get('/', async () => 'the dashboard');
        },
      },
      config: {
        server: { host: '127.0.0.1', port: 0, dashboard: { host: '127.0.0.1', port: 0 } },
        webhook: { secret: SECRET },
      },
    });
    try {
      const webhookSide = await server.listen();
      const dashboardSide = server.dashboardUrl!;
      expect(new URL(dashboardSide).hostname).toBe('127.0.0.1');
      expect(dashboardSide).not.toBe(webhookSide);
      // Over real sockets: what each port answers.
      const status = async (url: string) => {
        const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
        await res.body?.cancel();
        return res.status;
      };
      expect(await status(`${webhookSide}/healthz`)).toBe(200);
      expect(await status(`${webhookSide}/readyz`)).toBe(200);
      expect(await status(`${webhookSide}/metrics`)).toBe(200);
      expect(await status(`${webhookSide}/api/v1/scale-sets`)).toBe(404);
      expect(await status(`${webhookSide}/`)).toBe(404);
      expect(await status(`${dashboardSide}/api/v1/scale-sets`)).toBe(200);
      expect(await status(`${dashboardSide}/`)).toBe(200);
      expect(await status(`${dashboardSide}/webhook`)).toBe(404);
      const body = JSON.stringify(workflowJobPayload({ jobId: 77 }));
      const delivered = await fetch(`${webhookSide}/webhook`, {
        method: 'POST',
        body,
        headers: await signedHeaders(body),
      });
      expect(delivered.status).toBe(202);
    } finally {
      await server.close();
    }
  });

  it('knows loopback addresses', () => {
    for (const h of ['127.0.0.1', '127.1.2.3', 'localhost', '::1', '[::1]', '::ffff:127.0.0.1'])
      expect(isLoopbackHost(h), h).toBe(true);
    for (const h of ['0.0.0.0', '::', '10.0.0.1', 'example.com', '128.0.0.1'])
      expect(isLoopbackHost(h), h).toBe(false);
  });
});

describe('live updates and the dashboard mount point', () => {
  it('streams accepted webhook events over SSE at /api/v1/stream', async () => {
    t = await startTestServer({ heartbeatMs: 50 });
    const url = await t.server.listen();
    const controller = new AbortController();
    const res = await fetch(`${url}/api/v1/stream`, { signal: controller.signal });
    expect(res.headers.get('content-type')).toContain('text/event-stream');
    const reader = res.body!.getReader();
    const body = JSON.stringify(workflowJobPayload({ jobId: 31 }));
    await fetch(`${url}/webhook`, { method: 'POST', body, headers: await signedHeaders(body) });
    let text = '';
    while (!text.includes('event: workflow_job') || !text.includes('heartbeat')) {
      const { value, done } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
    }
    controller.abort();
    const data = text.split('\n').find((l) => l.startsWith('data: '))!;
    expect(JSON.parse(data.slice(6))).toMatchObject({
      action: 'queued',
      jobId: 31,
      repository: 'octo-org/app',
    });
    // The server notices the closed connection asynchronously.
    for (let i = 0; i < 200 && t.server.events.subscribers > 0; i++)
      await new Promise((r) => setTimeout(r, 10));
    expect(t.server.events.subscribers).toBe(0);
  });

  it('mounts a dashboard plugin behind the same bearer token', async () => {
    t = await startTestServer({
      config: testConfig({ dashboardToken: DASHBOARD_TOKEN }),
      dashboard: {
        register(app, context) {
          app.get('/', async (_req, reply) => reply.type('text/html').send('<h1>runner-fleet</h1>'));
          app.get('/assets/app.js', async (_req, reply) => reply.type('text/javascript').send('export {}'));
          app.get('/dashboard/summary', async () => ({
            scaleSets: (await context.readModel.scaleSets()).length,
          }));
        },
      },
    });
    const { app } = t.server;
    expect((await app.inject({ url: '/' })).statusCode).toBe(401);
    const auth = { authorization: `Bearer ${DASHBOARD_TOKEN}` };
    const page = await app.inject({ url: '/', headers: auth });
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('runner-fleet');
    expect((await app.inject({ url: '/assets/app.js', headers: auth })).headers['content-type']).toContain(
      'javascript',
    );
    expect((await app.inject({ url: '/dashboard/summary', headers: auth })).json()).toEqual({ scaleSets: 1 });
  });
});

describe('API answers are safe to read', () => {
  it('GET /api/v1 lists the routes', async () => {
    t = await startTestServer();
    const url = await t.server.listen();
    for (const path of ['/api/v1', '/api/v1/']) {
      const res = await fetch(`${url}${path}`);
      expect(res.status).toBe(200);
      const body = (await res.json()) as { routes: { method: string; path: string; description: string }[] };
      expect(body.routes.map((r) => r.path)).toEqual([
        '/api/v1/scale-sets',
        '/api/v1/runners',
        '/api/v1/jobs',
        '/api/v1/events',
        '/api/v1/stream',
      ]);
      for (const route of body.routes) expect((await fetch(`${url}${route.path}`)).status).not.toBe(404);
    }
  });

  it('every API and dashboard answer carries nosniff and no-store, the stream included', async () => {
    t = await startTestServer({
      heartbeatMs: 50,
      dashboard: {
        register(app) {
          app.get('/dashboard/snapshot', async () => ({ ok: true }));
        },
      },
    });
    const url = await t.server.listen();
    for (const path of [
      '/api/v1',
      '/api/v1/scale-sets',
      '/api/v1/jobs',
      '/api/v1/runners?state=x',
      '/dashboard/snapshot',
    ]) {
      const res = await fetch(`${url}${path}`);
      await res.arrayBuffer();
      expect(res.headers.get('x-content-type-options'), path).toBe('nosniff');
      expect(res.headers.get('cache-control'), path).toBe('no-store');
    }
    const abort = new AbortController();
    const stream = await fetch(`${url}/api/v1/stream`, { signal: abort.signal });
    expect(stream.headers.get('x-content-type-options')).toBe('nosniff');
    expect(stream.headers.get('cache-control')).toContain('no-store');
    abort.abort();
  });

  it('lone surrogates in stored labels do not make the JSON unreadable to a strict parser', async () => {
    const model = leakyReadModel();
    const jobs = model.jobs;
    model.jobs = async (query) =>
      (await jobs(query)).map((job) => ({ ...job, labels: ['linux\ud800', '\udc00x', '😀'] }));
    t = await startTestServer({ readModel: model });
    const url = await t.server.listen();
    const res = await fetch(`${url}/api/v1/jobs`);
    const text = new TextDecoder('utf-8', { fatal: true }).decode(await res.arrayBuffer());
    // No escaped lone surrogate left for a strict parser to refuse; real pairs are kept.
    expect(text).not.toMatch(/\\ud[89ab][0-9a-f]{2}(?!\\ud[c-f])/i);
    expect(text).not.toMatch(/(?<!\\ud[89ab][0-9a-f]{2})\\ud[c-f][0-9a-f]{2}/i);
    const body = JSON.parse(text) as { jobs: { labels: string[] }[] };
    expect(body.jobs[0]?.labels).toEqual(['linux\ufffd', '\ufffdx', '😀']);
  });
});
