/**
 * `POST /webhook`. Order matters:
 * 0. before a byte of the body is read, the headers are checked (`checkWebhookHeaders`): a signature of the right
 *    shape (401), an event name (400), a delivery id of sane length (400), a Content-Length within the limit (411,
 *    413), and room in the in-flight budget for a large body (503); a refused request's body is never buffered;
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

/**
 * Bounds on a signed workflow_job (documented in docs/security.md). GitHub allows at most 100 labels in `runs-on`
 * (and a scale set at most 100); a delivery id is a UUID; event names are short snake_case words.
 */
export const WEBHOOK_LIMITS = {
  maxLabels: 100,
  maxLabelLength: 256,
  /** Owner, repository, runner name, status, conclusion. */
  maxFieldLength: 256,
  maxDeliveryIdLength: 128,
  maxEventNameLength: 64,
} as const;

/**
 * Events that get their own value of the `event` label of runner_fleet_webhooks_total; any other name is counted
 * as `other`, so senders cannot grow the metric's series.
 */
export const COUNTED_EVENTS: ReadonlySet<string> = new Set([
  'workflow_job',
  'ping',
  'workflow_run',
  'check_run',
  'check_suite',
  'push',
  'pull_request',
  'installation',
  'installation_repositories',
  'repository',
  'meta',
]);

export function eventLabel(name: string): string {
  return COUNTED_EVENTS.has(name) ? name : 'other';
}

/** How long a refused request's connection stays open after the answer, so the client can read it. */
const REFUSED_LINGER_MS = 500;

const SIGNATURE_SHAPE = /^sha256=[0-9a-fA-F]{64}$/;
const EVENT_NAME = /^[a-z][a-z0-9_]*$/;
const DELIVERY_ID = /^[\x21-\x7e]+$/;
/** A UTF-16 surrogate with no partner: such a string cannot be encoded as UTF-8 or read by a strict JSON parser. */
const LONE_SURROGATE = /\p{Surrogate}/u;

export interface WebhookRouteOptions {
  /** The HMAC key, or the keys valid during a rotation (a delivery signed with any of them is accepted). */
  readonly secret: string | readonly string[];
  readonly sink: WebhookSink;
  /** When set, events go through it (group commit) instead of one sink call per request. */
  readonly batching?: BatchingSink;
  readonly onWorkflowJob?: (event: WorkflowJobEvent) => void;
  readonly metrics: FleetMetrics;
  readonly logger: Logger;
  readonly events: EventHub;
  readonly bodyLimit: number;
  /** Budget of declared bytes of large bodies received at once (see ServerLimits.webhookInFlightBytes). */
  readonly inFlightBytes: number;
  /** Bodies up to this size do not count against the budget. */
  readonly smallBodyBytes: number;
}

export interface HeaderVerdict {
  readonly status: number;
  readonly error: string;
  readonly message: string;
}

/**
 * The checks that need no body: run before the body is read, so a request refused here costs no buffering.
 * Returns null when the request may proceed.
 */
export function checkWebhookHeaders(
  headers: Readonly<Record<string, string | string[] | undefined>>,
  bodyLimit: number,
): HeaderVerdict | null {
  const one = (name: string) => {
    const value = headers[name];
    return Array.isArray(value) ? value[0] : value;
  };
  const signature = one('x-hub-signature-256');
  if (!signature) return { status: 401, error: 'unauthorized', message: 'missing X-Hub-Signature-256' };
  if (!SIGNATURE_SHAPE.test(signature)) {
    return {
      status: 401,
      error: 'unauthorized',
      message: 'X-Hub-Signature-256 is not sha256=<64 hex digits>',
    };
  }
  const event = one('x-github-event');
  if (!event) return { status: 400, error: 'bad_request', message: 'missing X-GitHub-Event' };
  if (event.length > WEBHOOK_LIMITS.maxEventNameLength || !EVENT_NAME.test(event)) {
    return {
      status: 400,
      error: 'bad_request',
      message: `X-GitHub-Event must be a snake_case name of at most ${WEBHOOK_LIMITS.maxEventNameLength} characters`,
    };
  }
  const delivery = one('x-github-delivery');
  if (
    delivery !== undefined &&
    (delivery.length > WEBHOOK_LIMITS.maxDeliveryIdLength || !DELIVERY_ID.test(delivery))
  ) {
    return {
      status: 400,
      error: 'bad_request',
      message: `X-GitHub-Delivery must be at most ${WEBHOOK_LIMITS.maxDeliveryIdLength} printable characters`,
    };
  }
  const length = one('content-length');
  if (length === undefined) {
    return { status: 411, error: 'length_required', message: 'Content-Length is required' };
  }
  if (!/^\d+$/.test(length)) return { status: 400, error: 'bad_request', message: 'invalid Content-Length' };
  if (Number(length) > bodyLimit) {
    return { status: 413, error: 'too_large', message: `body exceeds ${bodyLimit} bytes` };
  }
  return null;
}

/**
 * A verified workflow_job's fields within WEBHOOK_LIMITS and well-formed Unicode; returns the problem or null.
 * 422: the request is well formed, its content is refused.
 */
export function checkWorkflowJob(event: WorkflowJobEvent): HeaderVerdict | null {
  const refuse = (field: string, message: string): HeaderVerdict => ({
    status: 422,
    error: 'invalid_payload',
    message: `${field} ${message}`,
  });
  const { labels } = event.job;
  if (labels.length > WEBHOOK_LIMITS.maxLabels) {
    return refuse('workflow_job.labels', `has ${labels.length} labels; at most ${WEBHOOK_LIMITS.maxLabels}`);
  }
  for (const [index, label] of labels.entries()) {
    const field = `workflow_job.labels[${index}]`;
    if (label.length > WEBHOOK_LIMITS.maxLabelLength) {
      return refuse(field, `is longer than ${WEBHOOK_LIMITS.maxLabelLength} characters`);
    }
    if (LONE_SURROGATE.test(label)) return refuse(field, 'is not valid Unicode (a lone surrogate)');
  }
  const fields: [string, string | null][] = [
    ['repository.owner.login', event.job.owner],
    ['repository.name', event.job.repo],
    ['workflow_job.runner_name', event.job.runnerName],
    ['workflow_job.status', event.job.status],
    ['workflow_job.conclusion', event.job.conclusion],
  ];
  for (const [field, value] of fields) {
    if (value === null) continue;
    if (value.length > WEBHOOK_LIMITS.maxFieldLength) {
      return refuse(field, `is longer than ${WEBHOOK_LIMITS.maxFieldLength} characters`);
    }
    if (LONE_SURROGATE.test(value)) return refuse(field, 'is not valid Unicode (a lone surrogate)');
  }
  return null;
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

  // Declared bytes of the large bodies being received now; released when the response is done or aborted.
  let inFlight = 0;
  const reserved = new WeakMap<FastifyRequest, number>();
  const release = (request: FastifyRequest) => {
    const bytes = reserved.get(request);
    if (bytes === undefined) return;
    reserved.delete(request);
    inFlight -= bytes;
  };
  /** Refused before the body is read: the connection is closed rather than drained. */
  const refuse = (reply: FastifyReply, verdict: HeaderVerdict) => {
    // Shortly after the answer is out the socket is destroyed: a graceful close would first read (and discard)
    // whatever body the client keeps sending. The delay lets the client read the answer before the reset.
    const socket = reply.raw.socket;
    reply.raw.once('finish', () => setTimeout(() => socket?.destroy(), REFUSED_LINGER_MS).unref());
    return reply
      .code(verdict.status)
      .header('connection', 'close')
      .send({ error: verdict.error, message: verdict.message });
  };

  const checkHeaders = async (request: FastifyRequest, reply: FastifyReply) => {
    const verdict = checkWebhookHeaders(request.headers, options.bodyLimit);
    if (verdict) {
      count(
        UNVERIFIED,
        verdict.status === 413 ? 'too_large' : verdict.status === 401 ? 'unauthorized' : 'invalid',
      );
      return refuse(reply, verdict);
    }
    const declared = Number(header(request, 'content-length'));
    if (declared > options.smallBodyBytes) {
      if (inFlight + declared > options.inFlightBytes) {
        count(UNVERIFIED, 'unavailable');
        reply.header('retry-after', '10');
        return refuse(reply, {
          status: 503,
          error: 'busy',
          message: 'too many large webhook bodies in flight; retry later',
        });
      }
      inFlight += declared;
      reserved.set(request, declared);
      // Released however the request ends: answered, timed out, or the client went away.
      request.raw.once('close', () => release(request));
      reply.raw.once('close', () => release(request));
    }
    return undefined;
  };

  app.post(
    '/webhook',
    {
      bodyLimit: options.bodyLimit,
      onRequest: checkHeaders,
      onResponse: async (request) => release(request),
    },
    async (request: FastifyRequest, reply: FastifyReply) => {
      const signature = header(request, 'x-hub-signature-256') ?? '';
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

      // Present and well formed: checked before the body was read.
      const eventName = header(request, 'x-github-event') ?? '';
      if (eventName === 'ping') {
        count('ping', 'ping');
        return reply.code(200).send({ ok: true });
      }
      if (eventName !== 'workflow_job') {
        count(eventLabel(eventName), 'ignored');
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
      const refused = checkWorkflowJob(event);
      if (refused) {
        count(eventName, 'invalid');
        logger.warn({ deliveryId, reason: refused.message }, 'refused workflow_job payload');
        return reply.code(refused.status).send({ error: refused.error, message: refused.message });
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
