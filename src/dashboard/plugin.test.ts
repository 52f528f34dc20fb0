import { afterEach, describe, expect, it } from 'vitest';
import type { WebhookSink } from '../core/ports.js';
import { createServer } from '../server/server.js';
import type { FleetServer } from '../server/server.js';
import { createLogger } from '../telemetry/logger.js';
import { createMetrics } from '../telemetry/metrics.js';
import { LEAKED_JIT, LEAKED_TOKEN, memoryReadModel, readSse } from './dashboard.test-helpers.js';
import type { MemoryModel, SseEvent } from './dashboard.test-helpers.js';
import { createDashboard, createFleetDashboard } from './plugin.js';
import type { DashboardOptions } from './plugin.js';
import type { DashboardSnapshot } from './snapshot.js';
import type { HistoryPoint, HistoryView } from './history.js';

const sink: WebhookSink = { acceptWorkflowJob: () => ({ duplicate: false }) };
let server: FleetServer | null = null;

afterEach(async () => {
  await server?.close();
  server = null;
});

async function start(
  model: MemoryModel,
  options: DashboardOptions = {},
  dashboardToken?: string,
): Promise<{ url: string; server: FleetServer }> {
  server = await createServer({
    config: {
      server: { host: '127.0.0.1', port: 0, ...(dashboardToken ? { dashboardToken } : {}) },
      webhook: { secret: 'dashboard-test-webhook-secret' },
    },
    sink,
    readModel: model,
    isReady: () => true,
    metrics: createMetrics(),
    logger: createLogger({ level: 'silent' }),
    dashboard: createDashboard({ pushIntervalMs: 50, refreshMs: 200, sampleIntervalMs: 100, ...options }),
  });
  const url = await server.listen();
  return { url, server };
}

const snapshots = (events: readonly SseEvent[]) =>
  events.filter((e) => e.event === 'snapshot').map((e) => e.data as DashboardSnapshot);

describe('dashboard plugin', () => {
  it('serves the page and its assets from the controller, with a same-origin-only CSP', async () => {
    const { url } = await start(memoryReadModel(Date.now()));
    const page = await fetch(`${url}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toContain('text/html');
    expect(page.headers.get('content-security-policy')).toContain("default-src 'none'");
    expect(page.headers.get('content-security-policy')).toContain("connect-src 'self'");
    const html = await page.text();
    expect(html).toContain('<main id="main"');
    // Every referenced asset is local and served.
    const refs = [...html.matchAll(/(?:href|src)="([^"#]+)"/g)].map((m) => m[1]!);
    expect(refs.length).toBeGreaterThanOrEqual(3);
    for (const ref of refs) {
      expect(ref.startsWith('/')).toBe(true);
      const asset = await fetch(`${url}${ref}`);
      expect(asset.status, ref).toBe(200);
    }
    expect(html).not.toMatch(/https?:\/\//);
  });

  it('snapshots copy declared fields only and scrub secret-looking text', async () => {
    const { url } = await start(memoryReadModel(Date.now()), {
      budget: () => ({ calls: 42, rateLimitRemaining: 4958 }),
      title: 'demo-fleet',
    });
    const res = await fetch(`${url}/dashboard/v1/snapshot`);
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).not.toContain(LEAKED_TOKEN);
    expect(text).not.toContain(LEAKED_JIT);
    expect(text).not.toContain('AABF3JGZDX3P5PMEXLND6TS6FCWO6');
    const { snapshot } = JSON.parse(text) as { snapshot: DashboardSnapshot };
    expect(snapshot.title).toBe('demo-fleet');
    expect(snapshot.budget).toEqual({ calls: 42, rateLimitRemaining: 4958 });
    expect(snapshot.scaleSets[0]).toMatchObject({
      name: 'linux-small',
      minIdle: 1,
      max: 8,
      activeRunners: 3,
    });
    expect(snapshot.scaleSets[0]!.lastFailure).toContain('[REDACTED]');
    expect(snapshot.queued.map((j) => j.id)).toEqual([101]);
    expect(snapshot.unroutable.map((j) => j.id)).toEqual([102]);
    expect(snapshot.totals).toMatchObject({ queued: 1, unroutable: 1, activeRunners: 3, busyRunners: 2 });
    expect(snapshot.runners[0]).toMatchObject({ name: 'linux-small-ab12', jobId: 99 });
    expect(snapshot.events).toHaveLength(1);
  });

  it('streams history, snapshots and samples, and pushes a change without a reload', async () => {
    const model = memoryReadModel(Date.now());
    const { url, server: s } = await start(model);
    let changed = false;
    const read = readSse(`${url}/dashboard/v1/stream`, {
      until: (events) => {
        const snaps = snapshots(events);
        if (!changed && snaps.length >= 1) {
          changed = true;
          model.sets[0] = { ...model.sets[0]!, activeRunners: 7, queuedJobs: 0 };
          s.events.publish('runner', { scaleSet: 'linux-small', state: 'idle' });
        }
        return (
          snaps.some((x) => x.totals.activeRunners === 7) &&
          events.filter((e) => e.event === 'sample').length >= 2
        );
      },
    });
    const { events, status } = await read;
    expect(status).toBe(200);
    expect(events[0]?.event).toBe('history');
    expect((events[0]!.data as HistoryView).intervalMs).toBe(100);
    const samples = events.filter((e) => e.event === 'sample').map((e) => e.data as HistoryPoint);
    expect(samples.length).toBeGreaterThanOrEqual(2);
    expect(samples[0]!.sets['linux-small']).toBeDefined();
    expect(snapshots(events).at(-1)!.totals.activeRunners).toBe(7);
  });

  it('sits behind the bearer token like /api/v1 when one is configured', async () => {
    const token = 'dashboard-token-for-tests-1234';
    const { url } = await start(memoryReadModel(Date.now()), {}, token);
    expect((await fetch(`${url}/`)).status).toBe(401);
    expect((await fetch(`${url}/dashboard/v1/snapshot`)).status).toBe(401);
    expect((await fetch(`${url}/assets/dashboard.js`)).status).toBe(401);
    const stream = await readSse(`${url}/dashboard/v1/stream`, { until: () => true });
    expect(stream.status).toBe(401);
    const ok = await fetch(`${url}/`, { headers: { authorization: `Bearer ${token}` } });
    expect(ok.status).toBe(200);
    expect(await ok.text()).not.toContain(token);
  });

  it('a fleet dashboard reads the budget from a GitHub client that exists only later', async () => {
    let github: { apiCallCount(): { total: number }; rateLimitRemaining(): number | null } | null = null;
    server = await createServer({
      config: {
        server: { host: '127.0.0.1', port: 0 },
        webhook: { secret: 'dashboard-test-webhook-secret' },
      },
      sink,
      readModel: memoryReadModel(Date.now()),
      isReady: () => true,
      metrics: createMetrics(),
      logger: createLogger({ level: 'silent' }),
      dashboard: createFleetDashboard({ fleetName: 'prod-fleet', knownSecrets: [], github: () => github }),
    });
    const url = await server.listen();
    const read = async () =>
      ((await (await fetch(`${url}/dashboard/v1/snapshot`)).json()) as { snapshot: DashboardSnapshot })
        .snapshot;
    expect((await read()).budget).toBeNull();
    github = { apiCallCount: () => ({ total: 17 }), rateLimitRemaining: () => 4983 };
    const snapshot = await read();
    expect(snapshot.title).toBe('prod-fleet');
    expect(snapshot.budget).toEqual({ calls: 17, rateLimitRemaining: 4983 });
  });

  it('is read-only: writes are not routed', async () => {
    const { url } = await start(memoryReadModel(Date.now()));
    for (const path of ['/', '/dashboard/v1/snapshot', '/dashboard/v1/stream']) {
      const res = await fetch(`${url}${path}`, { method: 'POST', body: '{}' });
      expect(res.status, path).toBe(404);
    }
  });
});
