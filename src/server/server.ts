/**
 * The controller's HTTP server (fastify): `POST /webhook`, `/healthz`, `/readyz`, `/metrics`, `/api/v1/*`, and a
 * dashboard mounted by whoever provides one. Built by the composition root with everything passed in; nothing is
 * read from the environment here.
 */
import fastify, { LogController } from 'fastify';
import type { FastifyInstance } from 'fastify';
import type { FleetConfig } from '../config/types.js';
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
  /** Store open and first sync done. */
  readonly isReady: () => boolean | Promise<boolean>;
  readonly metrics: FleetMetrics;
  readonly logger: Logger;
  readonly dashboard?: DashboardPlugin;
  /** Hub for live updates; a new one by default. The core may publish to it too. */
  readonly events?: EventHub;
  /** Webhook body limit in bytes; default 1 MiB. */
  readonly bodyLimit?: number;
  /** SSE heartbeat interval; default 15 s. */
  readonly heartbeatMs?: number;
}

export interface FleetServer {
  readonly app: FastifyInstance;
  readonly events: EventHub;
  /** Listens on config.server.host:port; resolves to the URL it listens on (port 0 picks a free port). */
  listen(): Promise<string>;
  close(): Promise<void>;
}

/** Throws ServerConfigError when the host is not loopback and no dashboard token is configured. */
export async function createServer(options: ServerOptions): Promise<FleetServer> {
  const { config, logger, metrics } = options;
  assertServerExposure(config.server.host, config.server.dashboardToken);
  const events = options.events ?? new EventHub();
  const log = logger.child({ component: 'server' });
  const bodyLimit = options.bodyLimit ?? WEBHOOK_BODY_LIMIT;

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
  }) as unknown as FastifyInstance;

  app.get('/healthz', async () => ({ status: 'ok' }));

  app.get('/readyz', async (_request, reply) => {
    let ready = false;
    try {
      ready = await options.isReady();
    } catch (error) {
      log.warn({ err: error }, 'readiness check failed');
    }
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not ready' });
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
  });

  const auth = bearerAuth(config.server.dashboardToken);
  await app.register(async (api) => {
    api.addHook('onRequest', auth);
    await apiRoutes(api, {
      readModel: options.readModel,
      events,
      ...(options.heartbeatMs !== undefined ? { heartbeatMs: options.heartbeatMs } : {}),
    });
  });

  if (options.dashboard) {
    const dashboard = options.dashboard;
    await app.register(async (ui) => {
      ui.addHook('onRequest', auth);
      await dashboard.register(ui, { readModel: options.readModel, events });
    });
  }

  return {
    app,
    events,
    async listen() {
      return app.listen({ host: config.server.host, port: config.server.port });
    },
    async close() {
      // Events already read are written (and answered if their connection is still open), not dropped.
      batching?.flush();
      await app.close();
    },
  };
}
