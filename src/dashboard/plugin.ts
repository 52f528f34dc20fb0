/**
 * The dashboard as a server plugin: the page and its assets at `/`, a JSON snapshot at `/dashboard/v1/snapshot` and
 * a Server-Sent Events stream at `/dashboard/v1/stream`. The stream pushes a fresh snapshot when the controller
 * publishes a change (at most once per `pushIntervalMs`) and at least every `refreshMs` (ages and waits grow), plus
 * one chart sample per `sampleIntervalMs`. Snapshots are built once per push and shared by every open page.
 * Read-only: only GET routes. Nothing here is served from outside the package: no CDN, no external request.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { DashboardContext, DashboardPlugin } from '../server/server.js';
import { openSse } from '../server/sse.js';
import type { SseStream } from '../server/sse.js';
import { createScrubber } from '../telemetry/redact.js';
import { ASSETS } from './assets.generated.js';
import { History } from './history.js';
import type { HistoryPoint } from './history.js';
import { buildSnapshot } from './snapshot.js';
import type { ApiBudget, DashboardSnapshot, SnapshotLimits } from './snapshot.js';

export interface DashboardOptions {
  /** Shown in the page header; the fleet name is a good choice. Default `runner-fleet`. */
  readonly title?: string;
  /** GitHub API calls and rate limit remaining (the GitHub client's counters). */
  readonly budget?: () => ApiBudget | null;
  /** Exact secret values scrubbed from free text (failure reasons), besides secret-looking patterns. */
  readonly knownSecrets?: readonly string[];
  readonly now?: () => number;
  /** Chart sample period; default 2 s. */
  readonly sampleIntervalMs?: number;
  /** How much chart history is kept; default 10 min. */
  readonly historyWindowMs?: number;
  /** Shortest gap between two pushed snapshots; default 1 s. */
  readonly pushIntervalMs?: number;
  /** Longest gap between two pushed snapshots while a page is open; default 3 s. */
  readonly refreshMs?: number;
  /** SSE heartbeat; default 15 s. */
  readonly heartbeatMs?: number;
  readonly limits?: SnapshotLimits;
  readonly setInterval?: (fn: () => void, ms: number) => unknown;
  readonly clearInterval?: (handle: unknown) => void;
}

/** Paths the dashboard serves, for docs and tests. */
export const DASHBOARD_ROUTES = {
  page: '/',
  snapshot: '/dashboard/v1/snapshot',
  stream: '/dashboard/v1/stream',
  assets: '/assets/',
} as const;

const PAGE_HEADERS = {
  // Everything comes from this origin; the page never talks to anything else.
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
} as const;

function defaultSetInterval(fn: () => void, ms: number): unknown {
  const handle = setInterval(fn, ms);
  handle.unref?.();
  return handle;
}

function sendAsset(reply: FastifyReply, body: string, type: string): FastifyReply {
  return reply.headers(PAGE_HEADERS).type(type).send(body);
}

export function createDashboard(options: DashboardOptions = {}): DashboardPlugin {
  const now = options.now ?? Date.now;
  const sampleIntervalMs = options.sampleIntervalMs ?? 2_000;
  const pushIntervalMs = options.pushIntervalMs ?? 1_000;
  const refreshMs = Math.max(pushIntervalMs, options.refreshMs ?? 3_000);
  const startTimer = options.setInterval ?? defaultSetInterval;
  const stopTimer = options.clearInterval ?? ((h: unknown) => clearInterval(h as NodeJS.Timeout));
  const scrub = createScrubber(options.knownSecrets ?? []);
  const title = options.title ?? 'runner-fleet';

  return {
    async register(app: FastifyInstance, context: DashboardContext): Promise<void> {
      const { readModel } = context;
      const history = new History({
        intervalMs: sampleIntervalMs,
        windowMs: options.historyWindowMs ?? 10 * 60_000,
      });
      const streams = new Set<SseStream>();
      const snapshot = () =>
        buildSnapshot({
          readModel,
          title,
          now,
          scrub,
          ...(options.budget ? { budget: options.budget } : {}),
          ...(options.limits ? { limits: options.limits } : {}),
        });

      let dirty = true;
      let lastPush = 0;
      let pushing = false;
      const broadcast = (event: string, data: unknown) => {
        for (const stream of streams) stream.send(event, data);
      };
      const push = async () => {
        if (pushing || streams.size === 0) return;
        const t = now();
        if (!dirty && t - lastPush < refreshMs) return;
        if (t - lastPush < pushIntervalMs) return;
        pushing = true;
        dirty = false;
        lastPush = t;
        try {
          broadcast('snapshot', await snapshot());
        } catch (error) {
          app.log.warn({ err: error }, 'dashboard snapshot failed');
        } finally {
          pushing = false;
        }
      };
      const sample = async () => {
        try {
          const point: HistoryPoint = await history.sample(readModel, now());
          broadcast('sample', point);
        } catch (error) {
          app.log.warn({ err: error }, 'dashboard sample failed');
        }
      };

      const unsubscribe = context.events.subscribe(() => {
        dirty = true;
      });
      const pushTimer = startTimer(() => void push(), Math.min(pushIntervalMs, 250));
      const sampleTimer = startTimer(() => void sample(), sampleIntervalMs);
      void sample();
      app.addHook('onClose', async () => {
        unsubscribe();
        stopTimer(pushTimer);
        stopTimer(sampleTimer);
        for (const stream of streams) stream.close();
        streams.clear();
      });

      app.get(DASHBOARD_ROUTES.page, async (_request, reply) =>
        sendAsset(reply, ASSETS['index.html'], 'text/html; charset=utf-8'),
      );
      app.get('/assets/dashboard.css', async (_request, reply) =>
        sendAsset(reply, ASSETS['dashboard.css'], 'text/css; charset=utf-8'),
      );
      app.get('/assets/dashboard.js', async (_request, reply) =>
        sendAsset(reply, ASSETS['dashboard.js'], 'text/javascript; charset=utf-8'),
      );
      app.get('/assets/favicon.svg', async (_request, reply) =>
        sendAsset(reply, ASSETS['favicon.svg'], 'image/svg+xml'),
      );

      app.get(DASHBOARD_ROUTES.snapshot, async (_request, reply) => {
        const body: { snapshot: DashboardSnapshot; history: ReturnType<History['view']> } = {
          snapshot: await snapshot(),
          history: history.view(),
        };
        return reply.header('cache-control', 'no-store').send(body);
      });

      app.get(DASHBOARD_ROUTES.stream, async (request, reply) => {
        const stream = openSse(request, reply, {
          ...(options.heartbeatMs !== undefined ? { heartbeatMs: options.heartbeatMs } : {}),
          onClose: () => streams.delete(stream),
        });
        streams.add(stream);
        stream.send('history', history.view());
        try {
          stream.send('snapshot', await snapshot());
        } catch (error) {
          app.log.warn({ err: error }, 'dashboard snapshot failed');
        }
      });
    },
  };
}

/** What the dashboard reads of the controller's GitHub client (its own count of calls and the rate limit). */
export interface GitHubBudgetSource {
  apiCallCount(): { readonly total: number };
  rateLimitRemaining(): number | null;
}

/**
 * The dashboard of one controller, as `start` and `demo` mount it: titled with the fleet name, the API budget read
 * from the GitHub client (given late: the client is built with the controller, after the dashboard), and the
 * configured secret values scrubbed from free text.
 */
export function createFleetDashboard(options: {
  readonly fleetName: string;
  readonly knownSecrets: readonly string[];
  readonly github: () => GitHubBudgetSource | null | undefined;
}): DashboardPlugin {
  return createDashboard({
    title: options.fleetName,
    knownSecrets: options.knownSecrets,
    budget: () => {
      const github = options.github();
      return github
        ? { calls: github.apiCallCount().total, rateLimitRemaining: github.rateLimitRemaining() }
        : null;
    },
  });
}
