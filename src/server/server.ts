/**
 * The controller's HTTP server (fastify): `POST /webhook`, `/healthz`, `/readyz`, `/metrics`, `/api/v1/*`, and a
 * dashboard mounted by whoever provides one. Built by the composition root with everything passed in; nothing is
 * read from the environment here.
 */
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import fastify, { LogController } from 'fastify';
import type { FastifyInstance } from 'fastify';
import type { FleetConfig } from '../core/fleet-config.js';
import type { WebhookSink, WorkflowJobEvent } from '../core/ports.js';
import type { Logger } from '../telemetry/logger.js';
import type { FleetMetrics } from '../telemetry/metrics.js';
import { apiRoutes } from './api-routes.js';
import { BatchingSink, isBatchWebhookSink } from './batching-sink.js';
import type { BatchingSinkOptions } from './batching-sink.js';
import { assertServerExposure, bearerAuth } from './auth.js';
import { EventHub } from './events.js';
import type { ReadModel } from './read-model.js';
import { WEBHOOK_BODY_LIMIT, webhookRoute } from './webhook-route.js';

/**
 * Connection and time limits of the HTTP server, sized for GitHub: a delivery that is not answered within 10 s
 * counts as failed on GitHub's side, so a client slower than that is not GitHub and is cut off. Documented in
 * docs/security.md ("Limits and timeouts"); `npm run reliability` measures them.
 */
export interface ServerLimits {
  /** The request line and all headers must arrive within this (Node's headersTimeout). */
  readonly headersTimeoutMs: number;
  /** The whole request, body included, must arrive within this (Node's requestTimeout); then 408 and close. */
  readonly requestTimeoutMs: number;
  /** How often Node checks the two deadlines above; a slow client is cut off at most this late. */
  readonly checkIntervalMs: number;
  /** A keep-alive connection idle this long after a response is closed. */
  readonly keepAliveTimeoutMs: number;
  /** A socket with no traffic at all for this long is closed (above the SSE heartbeat of 15 s). */
  readonly idleSocketTimeoutMs: number;
  /** Requests served on one keep-alive connection before it is closed. */
  readonly maxRequestsPerSocket: number;
  /** Open connections; further ones are refused at once (Node's server.maxConnections). */
  readonly maxConnections: number;
  /** Largest request line plus headers, in bytes (431 beyond). */
  readonly maxHeaderBytes: number;
  /**
   * Sum of the declared sizes of webhook bodies being received at once, counting only bodies larger than
   * `smallWebhookBytes`; a large body that does not fit is refused (503, Retry-After) before it is read.
   */
  readonly webhookInFlightBytes: number;
  /** Bodies up to this size (every real workflow_job) are never refused for lack of budget. */
  readonly smallWebhookBytes: number;
}

export const SERVER_LIMITS: ServerLimits = {
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 10_000,
  checkIntervalMs: 1_000,
  keepAliveTimeoutMs: 5_000,
  idleSocketTimeoutMs: 60_000,
  maxRequestsPerSocket: 1_000,
  maxConnections: 1_024,
  maxHeaderBytes: 16 * 1024,
  webhookInFlightBytes: 8 * 1024 * 1024,
  smallWebhookBytes: 64 * 1024,
};

export interface DashboardContext {
  readonly readModel: ReadModel;
  /** Live updates (also streamed at `GET /api/v1/stream`). */
  readonly events: EventHub;
}

/**
 * A dashboard mounts its routes (pages, static assets, its own SSE streams via `openSse`) in `register`. They run
 * in their own fastify context behind the same bearer-token check as /api/v1.
 */
export interface DashboardPlugin {
  register(app: FastifyInstance, context: DashboardContext): void | Promise<void>;
}

/** What /readyz answers: ready, or not and why (`reason` is shown in the answer). */
export interface Readiness {
  readonly ready: boolean;
  readonly reason?: string;
}

/** One component's state in /healthz: `ok`, or `failed` with a stable code and the reason. */
export interface HealthCheck {
  readonly status: 'ok' | 'failed';
  readonly code?: string;
  readonly reason?: string;
  /** When it failed (ISO 8601). */
  readonly since?: string;
}

export interface ServerOptions {
  readonly config: Pick<FleetConfig, 'server' | 'webhook'>;
  /**
   * Persists each verified workflow_job before the reply. A sink with `acceptWorkflowJobs` (the store) gets the
   * webhooks that arrive together in one call, one transaction (group commit); each reply waits for its commit.
   */
  readonly sink: WebhookSink;
  /** Group commit settings for a sink with `acceptWorkflowJobs`; false: one sink call per webhook. */
  readonly webhookBatch?: false | Omit<BatchingSinkOptions, 'sink'>;
  /** Called after the 202 went out, for every newly accepted (not duplicate) workflow_job: wakes the reconciler. */
  readonly onWorkflowJob?: (event: WorkflowJobEvent) => void;
  readonly readModel: ReadModel;
  /** Store open and first sync done; a Readiness also says why not. */
  readonly isReady: () => boolean | Readiness | Promise<boolean | Readiness>;
  /**
   * Components whose failure makes /healthz answer 503 (the process is alive but cannot do its work: a liveness
   * probe restarts it). Without it, /healthz answers 200 whenever the server does.
   */
  readonly health?: () => Readonly<Record<string, HealthCheck>>;
  readonly metrics: FleetMetrics;
  readonly logger: Logger;
  readonly dashboard?: DashboardPlugin;
  /** Hub for live updates; a new one by default. The core may publish to it too. */
  readonly events?: EventHub;
  /** Webhook body limit in bytes; default 1 MiB. */
  readonly bodyLimit?: number;
  /** SSE heartbeat interval; default 15 s. */
  readonly heartbeatMs?: number;
  /** Connection and time limits; SERVER_LIMITS by default. */
  readonly limits?: Partial<ServerLimits>;
}

const CLIENT_ERRORS: Record<string, number> = {
  ERR_HTTP_REQUEST_TIMEOUT: 408,
  HPE_HEADER_OVERFLOW: 431,
};

/**
 * Malformed HTTP (a header line without a colon, a bad method, oversized headers, a timeout): a short answer and a
 * closed socket. Logged at debug with the error code only: the error carries the raw bytes received, which are
 * neither useful in a log nor safe to walk.
 */
function clientErrorHandler(log: Logger) {
  return (error: Error & { code?: unknown }, socket: Socket): void => {
    const code = typeof error.code === 'string' ? error.code : 'unknown';
    if (code === 'ECONNRESET' || socket.destroyed) return;
    const status = CLIENT_ERRORS[code] ?? 400;
    try {
      log.debug({ code, status, remoteAddress: socket.remoteAddress }, 'malformed HTTP request refused');
    } catch {
      // Logging must never take the server down.
    }
    if (socket.writable) {
      const body = JSON.stringify({ error: 'bad_request', message: STATUS_CODES[status] ?? 'Bad Request' });
      socket.write(
        `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Bad Request'}\r\nConnection: close\r\n` +
          `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
      );
    }
    socket.destroy();
  };
}

export interface FleetServer {
  /** The main listener: /webhook, /healthz, /readyz, /metrics (and /api/v1 and the dashboard unless separate). */
  readonly app: FastifyInstance;
  /** Where /api/v1 and the dashboard are served: `app`, or a listener of their own with `server.dashboard`. */
  readonly dashboardApp: FastifyInstance;
  readonly events: EventHub;
  /**
   * Listens on config.server.host:port (and server.dashboard's host:port when set); resolves to the main URL (port 0
   * picks a free port).
   */
  listen(): Promise<string>;
  /** The URL of /api/v1 and the dashboard, once listening. */
  readonly dashboardUrl: string | undefined;
  close(): Promise<void>;
}

/**
 * JSON text with every lone surrogate (raw, or escaped as `\\udxxx`) replaced by U+FFFD: JSON.stringify keeps them
 * as escapes, which strict parsers reject.
 */
export function wellFormedJson(text: string): string {
  return text
    .replace(/\p{Surrogate}/gu, '\uFFFD')
    .replace(
      /\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F][0-9a-fA-F]{2})|(?<!\\u[dD][89abAB][0-9a-fA-F]{2})\\u[dD][c-fC-F][0-9a-fA-F]{2}/g,
      '\\ufffd',
    );
}

/** fastify with the server's limits, its client-error handler and the headers every answer carries. */
function newApp(log: Logger, limits: ServerLimits, bodyLimit: number): FastifyInstance {
  // Typed as a plain FastifyInstance: plugins (the dashboard) need not know the logger's type.
  const app = fastify({
    loggerInstance: log,
    // Request lines would be one log line per webhook; failures are logged where they happen instead.
    logController: new LogController({ disableRequestLogging: true }),
    // No per-request child logger: building one (with redaction paths) per webhook costs more than the handler.
    childLoggerFactory: (logger) => logger,
    bodyLimit,
    forceCloseConnections: true,
    return503OnClosing: true,
    http: {
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      connectionsCheckingInterval: limits.checkIntervalMs,
      maxHeaderSize: limits.maxHeaderBytes,
    },
    requestTimeout: limits.requestTimeoutMs,
    connectionTimeout: limits.idleSocketTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    maxRequestsPerSocket: limits.maxRequestsPerSocket,
    clientErrorHandler: clientErrorHandler(log),
  }) as unknown as FastifyInstance;
  app.server.maxConnections = limits.maxConnections;
  // A socket that goes quiet is destroyed, not just reported.
  app.server.on('timeout', (socket: Socket) => socket.destroy());

  // Every answer: never sniffed as another type, never cached (they are live state; the dashboard page sets its own
  // headers). JSON answers are made well-formed Unicode, so a lone surrogate stored from a payload cannot make
  // them unreadable to a strict parser.
  app.addHook('onSend', async (_request, reply, payload) => {
    reply.header('x-content-type-options', 'nosniff');
    if (!reply.hasHeader('cache-control')) reply.header('cache-control', 'no-store');
    const type = reply.getHeader('content-type');
    return typeof payload === 'string' && typeof type === 'string' && type.includes('json')
      ? wellFormedJson(payload)
      : payload;
  });
  return app;
}

/**
 * Throws ServerConfigError when /api/v1 and the dashboard would be served beyond loopback with no dashboard token:
 * on the main listener's host, or on `server.dashboard.host` when they have a listener of their own.
 */
export async function createServer(options: ServerOptions): Promise<FleetServer> {
  const { config, logger, metrics } = options;
  const separate = config.server.dashboard;
  assertServerExposure(config.server.host, config.server.dashboardToken, separate?.host);
  const events = options.events ?? new EventHub();
  const log = logger.child({ component: 'server' });
  const bodyLimit = options.bodyLimit ?? WEBHOOK_BODY_LIMIT;
  const limits: ServerLimits = { ...SERVER_LIMITS, ...options.limits };

  const app = newApp(log, limits, bodyLimit);
  // The dashboard and /api/v1: on the main listener, or on one of their own (server.dashboard), so the port that
  // receives webhooks from the internet serves nothing else than the webhook, health and metrics.
  const ui = separate ? newApp(log.child({ listener: 'dashboard' }), limits, bodyLimit) : app;

  app.get('/healthz', async (_request, reply) => {
    let checks: Readonly<Record<string, HealthCheck>>;
    try {
      checks = options.health?.() ?? {};
    } catch (error) {
      log.warn({ err: error }, 'health check failed');
      checks = {
        health: { status: 'failed', code: 'health-check-failed', reason: 'the health check threw' },
      };
    }
    const failed = Object.values(checks).some((c) => c.status !== 'ok');
    return reply
      .code(failed ? 503 : 200)
      .send({ status: failed ? 'unhealthy' : 'ok', ...(Object.keys(checks).length > 0 ? { checks } : {}) });
  });

  app.get('/readyz', async (_request, reply) => {
    let readiness: Readiness;
    try {
      const answer = await options.isReady();
      readiness = typeof answer === 'boolean' ? { ready: answer } : answer;
    } catch (error) {
      log.warn({ err: error }, 'readiness check failed');
      readiness = { ready: false, reason: 'the readiness check failed' };
    }
    const { ready, reason } = readiness;
    return reply
      .code(ready ? 200 : 503)
      .send({ status: ready ? 'ready' : 'not ready', ...(!ready && reason !== undefined ? { reason } : {}) });
  });

  app.get('/metrics', async (_request, reply) => {
    reply.type(metrics.registry.contentType);
    return metrics.registry.metrics();
  });

  const sink = options.sink;
  const batching =
    options.webhookBatch !== false && isBatchWebhookSink(sink)
      ? new BatchingSink({ ...options.webhookBatch, sink })
      : undefined;
  await app.register(webhookRoute, {
    secret: config.webhook.secret,
    sink,
    ...(batching ? { batching } : {}),
    ...(options.onWorkflowJob ? { onWorkflowJob: options.onWorkflowJob } : {}),
    metrics,
    logger: log,
    events,
    bodyLimit,
    inFlightBytes: limits.webhookInFlightBytes,
    smallBodyBytes: limits.smallWebhookBytes,
  });

  const auth = bearerAuth(config.server.dashboardToken);
  await ui.register(async (api) => {
    api.addHook('onRequest', auth);
    await apiRoutes(api, {
      readModel: options.readModel,
      events,
      ...(options.heartbeatMs !== undefined ? { heartbeatMs: options.heartbeatMs } : {}),
    });
  });

  if (options.dashboard) {
    const dashboard = options.dashboard;
    await ui.register(async (scope) => {
      scope.addHook('onRequest', auth);
      await dashboard.register(scope, { readModel: options.readModel, events });
    });
  }

  let dashboardUrl: string | undefined;
  return {
    app,
    dashboardApp: ui,
    events,
    async listen() {
      const url = await app.listen({ host: config.server.host, port: config.server.port });
      if (separate) {
        dashboardUrl = await ui.listen({ host: separate.host, port: separate.port });
        log.info({ url: dashboardUrl }, 'dashboard and API listening on their own port');
      } else dashboardUrl = url;
      return url;
    },
    get dashboardUrl() {
      return dashboardUrl;
    },
    async close() {
      // Events already read are written (and answered if their connection is still open), not dropped.
      batching?.flush();
      await Promise.all([app.close(), ...(separate ? [ui.close()] : [])]);
    },
  };
}
