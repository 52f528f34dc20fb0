/**
 * `GET /api/v1/scale-sets`, `/runners`, `/jobs`, `/events` and `/stream` (Server-Sent Events). Every JSON response
 * goes through a schema listing its fields: anything else a record carries (a JIT config, a token) is not
 * serialized.
 */
import { scrubSecrets } from '../telemetry/redact.js';
import type { FastifyInstance } from 'fastify';
import { RUNNER_STATES } from '../core/types.js';
import type { JobStatus, RunnerState } from '../core/types.js';
import type { EventHub } from './events.js';
import type { EventQuery, JobQuery, ReadModel, RunnerQuery } from './read-model.js';
import { openSse } from './sse.js';

const JOB_STATUSES: readonly JobStatus[] = ['queued', 'in_progress', 'completed'];
export const MAX_LIST_LIMIT = 5000;
export const DEFAULT_EVENT_LIMIT = 200;

const integer = { type: 'integer' } as const;
const string = { type: 'string' } as const;
const nullableInteger = { type: ['integer', 'null'] } as const;
const nullableString = { type: ['string', 'null'] } as const;
const stringArray = { type: 'array', items: string } as const;

const scaleSetSchema = {
  type: 'object',
  properties: {
    name: string,
    scope: { type: 'object', properties: { org: string, repo: string, enterprise: string } },
    runnerGroup: string,
    labels: stringArray,
    minIdle: integer,
    max: integer,
    ephemeral: { type: 'boolean' },
    registration: string,
    priority: integer,
    provider: string,
    runners: { type: 'object', properties: Object.fromEntries(RUNNER_STATES.map((s) => [s, integer])) },
    activeRunners: integer,
    queuedJobs: integer,
    inProgressJobs: integer,
    oldestQueuedMs: nullableInteger,
    backoff: {
      type: 'object',
      properties: {
        failures: integer,
        until: nullableInteger,
        lastFailure: nullableString,
        lastFailureAt: nullableInteger,
      },
    },
    githubListedAt: nullableInteger,
    instancesListedAt: nullableInteger,
    lastReconcileAt: nullableInteger,
    pacing: {
      type: 'object',
      properties: {
        waiting: integer,
        oldestWaitMs: nullableInteger,
        pausedUntil: nullableInteger,
        perMinute: integer,
      },
    },
  },
} as const;

const runnerSchema = {
  type: 'object',
  properties: {
    name: string,
    scaleSet: string,
    state: string,
    reason: nullableString,
    githubId: nullableInteger,
    createdAt: integer,
    ageMs: integer,
    stateChangedAt: integer,
    stateAgeMs: integer,
    instance: {
      type: ['object', 'null'],
      properties: { state: string, providerId: string, message: string },
    },
    github: { type: ['object', 'null'], properties: { status: string, busy: { type: 'boolean' } } },
    job: { type: ['object', 'null'], properties: { id: integer, status: string } },
  },
} as const;

const jobSchema = {
  type: 'object',
  properties: {
    id: integer,
    runId: integer,
    owner: string,
    repo: string,
    labels: stringArray,
    status: string,
    conclusion: nullableString,
    scaleSet: nullableString,
    unroutable: { type: 'boolean' },
    runnerName: nullableString,
    queuedAt: integer,
    startedAt: nullableInteger,
    completedAt: nullableInteger,
    waitMs: integer,
  },
} as const;

const eventSchema = {
  type: 'object',
  properties: {
    id: integer,
    at: integer,
    kind: string,
    scaleSet: nullableString,
    runner: nullableString,
    jobId: nullableInteger,
    event: string,
    reason: nullableString,
  },
} as const;

const errorSchema = { type: 'object', properties: { error: string, message: string } } as const;

function list(key: string, item: object) {
  return {
    200: { type: 'object', properties: { [key]: { type: 'array', items: item } } },
    '4xx': errorSchema,
  };
}

class QueryError extends Error {}

/** What `GET /api/v1` lists. */
export const API_ROUTES: readonly { readonly path: string; readonly description: string }[] = [
  { path: '/api/v1/scale-sets', description: 'Scale sets with runner counts, queue and backoff.' },
  { path: '/api/v1/runners', description: 'Runners; filters: scaleSet, state.' },
  { path: '/api/v1/jobs', description: 'Jobs; filters: status, scaleSet, unroutable=true, completedLimit.' },
  {
    path: '/api/v1/events',
    description: 'Runner and job events; filters: scaleSet, runner, jobId, afterId, limit.',
  },
  { path: '/api/v1/stream', description: 'Live updates as Server-Sent Events.' },
];

function positiveInteger(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new QueryError(`${name} must be a non-negative integer`);
  return Math.min(n, MAX_LIST_LIMIT);
}

export interface ApiRouteOptions {
  readonly readModel: ReadModel;
  readonly events: EventHub;
  readonly heartbeatMs?: number;
}

export async function apiRoutes(app: FastifyInstance, options: ApiRouteOptions): Promise<void> {
  const { readModel } = options;

  // Free-text fields (a runner's failure reason, a scale set's last failure) come from error messages far away;
  // scrub token-shaped values out of every JSON answer as a last line of defence.
  app.addHook('onSend', async (_request, _reply, payload) =>
    typeof payload === 'string' ? scrubSecrets(payload) : payload,
  );

  app.setErrorHandler((error, _request, reply) => {
    if (error instanceof QueryError)
      return reply.code(400).send({ error: 'bad_request', message: error.message });
    throw error;
  });

  const index = {
    routes: API_ROUTES.map((route) => ({ method: 'GET', ...route })),
  };
  app.get('/api/v1', async () => index);
  app.get('/api/v1/', async () => index);

  app.get('/api/v1/scale-sets', { schema: { response: list('scaleSets', scaleSetSchema) } }, async () => ({
    scaleSets: await readModel.scaleSets(),
  }));

  app.get<{ Querystring: { scaleSet?: string; state?: string } }>(
    '/api/v1/runners',
    { schema: { response: list('runners', runnerSchema) } },
    async (request) => {
      const { scaleSet, state } = request.query;
      if (state !== undefined && !RUNNER_STATES.includes(state as RunnerState)) {
        throw new QueryError(`state must be one of ${RUNNER_STATES.join(', ')}`);
      }
      const query: RunnerQuery = {
        ...(scaleSet ? { scaleSet } : {}),
        ...(state ? { state: state as RunnerState } : {}),
      };
      return { runners: await readModel.runners(query) };
    },
  );

  app.get<{
    Querystring: { status?: string; scaleSet?: string; unroutable?: string; completedLimit?: string };
  }>('/api/v1/jobs', { schema: { response: list('jobs', jobSchema) } }, async (request) => {
    const { status, scaleSet, unroutable, completedLimit } = request.query;
    if (status !== undefined && !JOB_STATUSES.includes(status as JobStatus)) {
      throw new QueryError(`status must be one of ${JOB_STATUSES.join(', ')}`);
    }
    const limit = positiveInteger(completedLimit, 'completedLimit');
    const query: JobQuery = {
      ...(status ? { status: status as JobStatus } : {}),
      ...(unroutable === 'true' ? { scaleSet: null } : scaleSet ? { scaleSet } : {}),
      ...(limit !== undefined ? { completedLimit: limit } : {}),
    };
    return { jobs: await readModel.jobs(query) };
  });

  app.get<{
    Querystring: { scaleSet?: string; runner?: string; jobId?: string; afterId?: string; limit?: string };
  }>('/api/v1/events', { schema: { response: list('events', eventSchema) } }, async (request, reply) => {
    if (!readModel.events)
      return reply.code(404).send({ error: 'not-found', message: 'events are not available' });
    const { scaleSet, runner, jobId, afterId, limit } = request.query;
    const job = positiveInteger(jobId, 'jobId');
    const after = positiveInteger(afterId, 'afterId');
    const query: EventQuery = {
      limit: positiveInteger(limit, 'limit') ?? DEFAULT_EVENT_LIMIT,
      ...(scaleSet ? { scaleSet } : {}),
      ...(runner ? { runner } : {}),
      ...(job !== undefined ? { jobId: job } : {}),
      ...(after !== undefined ? { afterId: after } : {}),
    };
    return { events: await readModel.events(query) };
  });

  app.get('/api/v1/stream', async (request, reply) => {
    let unsubscribe = (): void => undefined;
    const stream = openSse(request, reply, {
      ...(options.heartbeatMs !== undefined ? { heartbeatMs: options.heartbeatMs } : {}),
      onClose: () => unsubscribe(),
    });
    unsubscribe = options.events.subscribe((event) =>
      stream.send(event.type, { ...asRecord(event.data), at: event.at }),
    );
  });
}

function asRecord(data: unknown): Record<string, unknown> {
  return typeof data === 'object' && data !== null && !Array.isArray(data)
    ? (data as Record<string, unknown>)
    : { value: data };
}
