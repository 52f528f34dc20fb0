/**
 * The simulator's fastify server: GitHub REST routes (under /api/v3 in GHES mode), the runner broker (/_runner)
 * and the control API (/_sim). Request bodies are kept as strings and parsed per route, because GitHub reads JSON
 * whatever the content type and the broker's token endpoint takes a form.
 */
import Fastify from 'fastify';
import type { FastifyError, FastifyInstance } from 'fastify';
import { registerActionsService } from './actions-service.js';
import { registerBrokerRoutes } from './broker-routes.js';
import type { SimContext } from './context.js';
import { registerControlRoutes } from './control.js';
import { GitHubError } from './errors.js';
import type { InstanceManager } from './instances.js';
import { registerRest, restNotFound } from './rest.js';
import { actionsRoutes } from './routes/actions.js';
import { appRoutes } from './routes/app.js';
import { runnerGroupRoutes } from './routes/runner-groups.js';
import { runnerRoutes } from './routes/runners.js';

const BODY_LIMIT = 1024 * 1024;

export function buildServer(
  ctx: SimContext,
  instances: InstanceManager,
  reset: () => Promise<void>,
): FastifyInstance {
  const app = Fastify({
    ...(ctx.options.tls ? { https: { cert: ctx.options.tls.cert, key: ctx.options.tls.key } } : {}),
    logger: false,
    bodyLimit: BODY_LIMIT,
    routerOptions: { maxParamLength: 1_000 },
    // Long polls must not keep close() waiting.
    forceCloseConnections: true,
    return503OnClosing: true,
    keepAliveTimeout: 65_000,
  });

  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string', bodyLimit: BODY_LIMIT }, (_request, body, done) =>
    done(null, body),
  );

  registerRest(app, ctx, [
    ...appRoutes(ctx),
    ...runnerRoutes(ctx),
    ...runnerGroupRoutes(ctx),
    ...actionsRoutes(ctx),
  ]);
  registerBrokerRoutes(app, ctx.broker, ctx.prefix);
  registerActionsService(app, ctx, ctx.scaleSets);
  registerControlRoutes(app, ctx, instances, reset);

  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0] ?? '';
    if (path.startsWith('/_sim') || path.startsWith('/_runner')) {
      return reply.code(404).send({ message: 'Not Found' });
    }
    return restNotFound(ctx, request, reply);
  });

  // Anything fastify itself rejects (body too large, bad URL encoding) still gets a GitHub-shaped answer.
  app.setErrorHandler((error: FastifyError, _request, reply) => {
    const status =
      typeof error.statusCode === 'number' && error.statusCode >= 400 && error.statusCode < 500
        ? error.statusCode
        : 500;
    const message =
      status === 413
        ? 'Payload too large'
        : status === 500
          ? 'Server Error'
          : status === 400
            ? 'Problems parsing request'
            : error.message;
    if (status === 500) ctx.options.logger?.error({ err: error }, 'simulator request failed');
    return reply.code(status).send(new GitHubError(status, message).body());
  });

  return app;
}
