/**
 * `POST /webhook`. Order matters:
 * 1. the signature is checked over the raw bytes before anything is parsed (401 otherwise);
 * 2. a `workflow_job` payload is validated field by field (400 naming the field);
 * 3. the event is handed to the sink, and 202 is sent only once it is persisted, so a crash right after the reply
 *    loses nothing (a sink failure is a 503: GitHub's delivery shows the failure and can redeliver). With a batching
 *    sink (batching-sink.ts), the events of concurrent requests share one transaction and each request waits for
 *    its commit;
 * 4. after the reply, `onWorkflowJob` wakes the reconciler.
 * Bad input never produces a 5xx and never stops the server.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { WebhookSink, WorkflowJobEvent } from '../core/ports.js';
import {
  WebhookError,
  decodeBody,
  parseWebhookBody,
  parseWorkflowJobEvent,
  verifyWebhookSignature,
} from '../github/webhooks.js';
import type { Logger } from '../telemetry/logger.js';
import type { FleetMetrics } from '../telemetry/metrics.js';
import type { BatchingSink } from './batching-sink.js';
import type { EventHub } from './events.js';

export const WEBHOOK_BODY_LIMIT = 1024 * 1024;

export interface WebhookRouteOptions {
  readonly secret: string;
  readonly sink: WebhookSink;
  /** When set, events go through it (group commit) instead of one sink call per request. */
  readonly batching?: BatchingSink;
  readonly onWorkflowJob?: (event: WorkflowJobEvent) => void;
  readonly metrics: FleetMetrics;
  readonly logger: Logger;
  readonly events: EventHub;
  readonly bodyLimit: number;
}

type WebhookResult =
  'accepted' | 'duplicate' | 'ignored' | 'ping' | 'unauthorized' | 'invalid' | 'too_large' | 'unavailable';

/** Events are labelled by name only after the signature is verified, so strangers cannot grow the label set. */
const UNVERIFIED = 'unverified';

function header(request: FastifyRequest, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

const accepted = new WeakMap<FastifyRequest, WorkflowJobEvent>();

export async function webhookRoute(app: FastifyInstance, options: WebhookRouteOptions): Promise<void> {
  const { metrics, logger, batching, sink } = options;
  // Resolves (or rejects) only once the event is durable.
  const persist = batching
    ? (event: WorkflowJobEvent) => batching.accept(event)
    : async (event: WorkflowJobEvent) => sink.acceptWorkflowJob(event);
  const count = (event: string, result: WebhookResult) => metrics.webhooks.inc({ event, result });

  // Raw bytes for every content type: the signature covers the body exactly as sent.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: options.bodyLimit }, (_req, body, done) =>
    done(null, body),
  );

  app.setErrorHandler((error: FastifyError, request, reply) => {
    const status = error.statusCode ?? 500;
    if (status === 413) {
      count(UNVERIFIED, 'too_large');
      return reply.code(413).send({ error: 'too_large', message: `body exceeds ${options.bodyLimit} bytes` });
    }
    if (status >= 400 && status < 500) {
      count(UNVERIFIED, 'invalid');
      return reply.code(status).send({ error: 'bad_request', message: error.message });
    }
    logger.error({ err: error, deliveryId: header(request, 'x-github-delivery') }, 'webhook handler failed');
    count(UNVERIFIED, 'unavailable');
    return reply.code(503).send({ error: 'unavailable', message: 'the webhook could not be processed' });
  });

  app.addHook('onResponse', async (request) => {
    const event = accepted.get(request);
    if (!event || !options.onWorkflowJob) return;
    try {
      options.onWorkflowJob(event);
    } catch (error) {
      logger.error({ err: error, jobId: event.job.id }, 'onWorkflowJob failed');
    }
  });

  app.post(
    '/webhook',
    { bodyLimit: options.bodyLimit },
    async (request: FastifyRequest, reply: FastifyReply) => {
      const signature = header(request, 'x-hub-signature-256');
      if (!signature) {
        count(UNVERIFIED, 'unauthorized');
        return reply.code(401).send({ error: 'unauthorized', message: 'missing X-Hub-Signature-256' });
      }
      const raw = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
      const text = decodeBody(raw);
      if (text === null) {
        count(UNVERIFIED, 'invalid');
        return reply.code(400).send({ error: 'bad_request', message: 'body is not UTF-8' });
      }
      if (!(await verifyWebhookSignature(options.secret, text, signature))) {
        count(UNVERIFIED, 'unauthorized');
        return reply.code(401).send({ error: 'unauthorized', message: 'signature does not match' });
      }

      const eventName = header(request, 'x-github-event');
      if (!eventName) {
        count(UNVERIFIED, 'invalid');
        return reply.code(400).send({ error: 'bad_request', message: 'missing X-GitHub-Event' });
      }
      if (eventName === 'ping') {
        count('ping', 'ping');
        return reply.code(200).send({ ok: true });
      }
      if (eventName !== 'workflow_job') {
        count(eventName, 'ignored');
        return reply.code(202).send({ accepted: false, ignored: eventName });
      }

      const deliveryId = header(request, 'x-github-delivery');
      if (!deliveryId) {
        count(eventName, 'invalid');
        return reply.code(400).send({ error: 'bad_request', message: 'missing X-GitHub-Delivery' });
      }
      let event: WorkflowJobEvent;
      try {
        event = parseWorkflowJobEvent(parseWebhookBody(text, header(request, 'content-type')), deliveryId);
      } catch (error) {
        if (!(error instanceof WebhookError)) throw error;
        count(eventName, 'invalid');
        logger.warn({ deliveryId, field: error.field, code: error.code }, 'rejected workflow_job payload');
        return reply.code(400).send({ error: error.code, message: error.message, field: error.field });
      }

      let duplicate: boolean;
      try {
        ({ duplicate } = await persist(event));
      } catch (error) {
        count(eventName, 'unavailable');
        logger.error({ err: error, deliveryId, jobId: event.job.id }, 'could not persist workflow_job');
        return reply.code(503).send({ error: 'unavailable', message: 'the event could not be stored' });
      }
      count(eventName, duplicate ? 'duplicate' : 'accepted');
      logger.debug(
        { deliveryId, jobId: event.job.id, action: event.action, duplicate },
        'workflow_job accepted',
      );
      if (!duplicate) {
        accepted.set(request, event);
        options.events.publish('workflow_job', {
          action: event.action,
          jobId: event.job.id,
          runId: event.job.runId,
          repository: `${event.job.owner}/${event.job.repo}`,
          labels: event.job.labels,
          runnerName: event.job.runnerName,
        });
      }
      return reply.code(202).send({ accepted: true, duplicate });
    },
  );
}
