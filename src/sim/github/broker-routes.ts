/**
 * HTTP binding of the runner broker under /_runner (plus the runner-registration call that config.sh makes against
 * the REST host). Runner traffic is not GitHub REST traffic: it is not counted in apiCalls, rate-limited or
 * subject to API faults.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Broker } from './broker.js';
import { BrokerCallError } from '../runner/protocol.js';

const bearer = (request: FastifyRequest): string => {
  const m = /^bearer\s+(\S+)$/i.exec(request.headers.authorization ?? '');
  return m ? m[1]! : '';
};

function parseBody(raw: unknown, form = false): Record<string, unknown> {
  if (typeof raw !== 'string' || raw.trim() === '') return {};
  if (form && !raw.trim().startsWith('{')) return Object.fromEntries(new URLSearchParams(raw));
  try {
    const value = JSON.parse(raw) as unknown;
    if (typeof value === 'object' && value !== null && !Array.isArray(value))
      return value as Record<string, unknown>;
  } catch {
    // fall through
  }
  throw new BrokerCallError(400, 'bad_request', 'The request body must be a JSON object');
}

const str = (v: unknown): string => (typeof v === 'string' ? v : '');

function sendError(reply: FastifyReply, error: unknown): FastifyReply {
  if (error instanceof BrokerCallError) {
    return reply.code(error.status).send({
      message: error.message,
      code: error.code,
      error: error.code,
      error_description: error.message,
    });
  }
  return reply.code(500).send({ message: 'broker error', code: 'internal' });
}

/** Abort signal that fires when the client closes the connection before the response is sent. */
function clientGone(reply: FastifyReply): AbortSignal {
  const controller = new AbortController();
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished) controller.abort();
  });
  return controller.signal;
}

const waitParam = (request: FastifyRequest): number => {
  const raw = Number((request.query as Record<string, unknown>).waitMs);
  return Number.isFinite(raw) && raw >= 0 ? raw : 0;
};

export function registerBrokerRoutes(app: FastifyInstance, broker: Broker, restPrefix: string): void {
  const registration = async (request: FastifyRequest, reply: FastifyReply) => {
    try {
      const m = /^remoteauth\s+(\S+)$/i.exec(request.headers.authorization ?? '');
      const body = parseBody(request.body);
      if (!m) throw new BrokerCallError(401, 'unauthorized', 'Requires a RemoteAuth registration token');
      return reply.send(broker.runnerRegistration(m[1]!, str(body.url)));
    } catch (error) {
      return sendError(reply, error);
    }
  };
  // config.sh posts to <api>/actions/runner-registration; the emulator derives <host>/api/v3 for any host that is
  // not github.com, so that path exists in both modes.
  app.post('/api/v3/actions/runner-registration', registration);
  if (restPrefix === '') app.post('/actions/runner-registration', registration);

  app.post('/_runner/agents', async (request, reply) => {
    try {
      const body = parseBody(request.body);
      const key = (body.publicKey ?? {}) as Record<string, unknown>;
      const labels = Array.isArray(body.labels)
        ? body.labels.filter((l): l is string => typeof l === 'string')
        : [];
      if (str(body.name).trim() === '') throw new BrokerCallError(400, 'bad_request', 'name is required');
      return reply.code(201).send(
        broker.addAgent(bearer(request), {
          name: str(body.name).trim(),
          labels,
          runnerGroup: str(body.runnerGroup) || 'Default',
          ephemeral: body.ephemeral === true,
          noDefaultLabels: body.noDefaultLabels === true,
          replace: body.replace === true,
          publicKey: { modulus: str(key.modulus), exponent: str(key.exponent) },
          version: str(body.version),
        }),
      );
    } catch (error) {
      return sendError(reply, error);
    }
  });

  app.post('/_runner/oauth2/token', async (request, reply) => {
    try {
      const body = parseBody(request.body, true);
      return reply.send(
        broker.exchangeToken({
          grant_type: str(body.grant_type),
          client_assertion_type: str(body.client_assertion_type),
          client_assertion: str(body.client_assertion),
        }),
      );
    } catch (error) {
      return sendError(reply, error);
    }
  });

  app.post('/_runner/sessions', async (request, reply) => {
    try {
      const body = parseBody(request.body);
      const agent = (body.agent ?? {}) as Record<string, unknown>;
      return reply.send(
        broker.createSession(bearer(request), {
          name: str(agent.name),
          version: str(agent.version),
          osDescription: str(agent.osDescription),
        }),
      );
    } catch (error) {
      return sendError(reply, error);
    }
  });

  app.delete('/_runner/sessions/:sessionId', async (request, reply) => {
    try {
      broker.deleteSession(bearer(request), (request.params as { sessionId: string }).sessionId);
      return reply.code(204).send();
    } catch (error) {
      return sendError(reply, error);
    }
  });

  app.get('/_runner/message', async (request, reply) => {
    try {
      const sessionId = str((request.query as Record<string, unknown>).sessionId);
      const message = await broker.getMessage(
        bearer(request),
        sessionId,
        waitParam(request),
        clientGone(reply),
      );
      return message ? reply.send(message) : reply.code(204).send();
    } catch (error) {
      return sendError(reply, error);
    }
  });

  app.post('/_runner/jobs/:jobId/renew', async (request, reply) => {
    try {
      const jobId = Number((request.params as { jobId: string }).jobId);
      return reply.send(await broker.renewJob(bearer(request), jobId, waitParam(request), clientGone(reply)));
    } catch (error) {
      return sendError(reply, error);
    }
  });

  app.post('/_runner/jobs/:jobId/complete', async (request, reply) => {
    try {
      const jobId = Number((request.params as { jobId: string }).jobId);
      const body = parseBody(request.body);
      return reply.send(broker.completeJob(bearer(request), jobId, str(body.conclusion)));
    } catch (error) {
      return sendError(reply, error);
    }
  });
}
