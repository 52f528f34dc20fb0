/**
 * `GET /api/v1/scale-sets`, `/api/v1/runners`, `/api/v1/jobs` and `/api/v1/events` (SSE). Every response goes
 * through a schema listing its fields: anything else a record carries (a JIT config, a token) is not serialized.
 */
import type { FastifyInstance } from 'fastify';
import { RUNNER_STATES } from '../core/types.js';
import type { RunnerState, JobStatus } from '../core/types.js';
import type { EventHub } from './events.js';
import type { JobQuery, ReadModel, RunnerQuery } from './read-model.js';
import { openSse } from './sse.js';

const JOB_STATUSES: readonly JobStatus[] = ['queued', 'in_progress', 'completed'];
export const DEFAULT_JOB_LIMIT = 500;
export const MAX_JOB_LIMIT = 5000;

const nullableInteger = { type: ['integer', 'null'] } as const;
const nullableString = { type: ['string', 'null'] } as const;
const stringArray = { type: 'array', items: { type: 'string' } } as const;

const scopeSchema = {
  type: 'object',
  properties: { org: { type: 'string' }, repo: { type: 'string' }, enterprise: { type: 'string' } },
} as const;

const scaleSetSchema = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    scope: scopeSchema,
    runnerGroup: { type: 'string' },
    labels: stringArray,
    minIdle: { type: 'integer' },
    max: { type: 'integer' },
    ephemeral: { type: 'boolean' },
    registration: { type: 'string' },
    priority: { type: 'integer' },
    provider: { type: 'string' },
    runners: {
      type: 'object',
      properties: Object.fromEntries(RUNNER_STATES.map((s) => [s, { type: 'integer' }])),
    },
    pendingJobs: { type: 'integer' },
    lastReconcileAt: nullableInteger,
    lastError: nullableString,
  },
} as const;

const runnerSchema = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    scaleSet: { type: 'string' },
    state: { type: 'string' },
    githubId: nullableInteger,
    instance: nullableString,
    provider: { type: 'string' },
    jobId: nullableInteger,
    createdAt: { type: 'integer' },
    updatedAt: { type: 'integer' },
    failureReason: nullableString,
  },
} as const;

const jobSchema = {
  type: 'object',
  properties: {
    id: { type: 'integer' },
    runId: { type: 'integer' },
    owner: { type: 'string' },
    repo: { type: 'string' },
    labels: stringArray,
    status: { type: 'string' },
    conclusion: nullableString,
    scaleSet: nullableString,
    runnerName: nullableString,
    queuedAt: { type: 'integer' },
    startedAt: nullableInteger,
    completedAt: nullableInteger,
  },
} as const;

const errorSchema = {
  type: 'object',
  properties: { error: { type: 'string' }, message: { type: 'string' } },
} as const;

function list(key: string, item: object) {
  return {
    200: { type: 'object', properties: { [key]: { type: 'array', items: item } } },
    400: errorSchema,
    401: errorSchema,
  };
}

function badRequest(message: string) {
  return { error: 'bad_request', message };
}

export interface ApiRouteOptions {
  readonly readModel: ReadModel;
  readonly events: EventHub;
  readonly heartbeatMs?: number;
}

export async function apiRoutes(app: FastifyInstance, options: ApiRouteOptions): Promise<void> {
  const { readModel } = options;

  app.get('/api/v1/scale-sets', { schema: { response: list('scaleSets', scaleSetSchema) } }, async () => ({
    scaleSets: await readModel.scaleSets(),
  }));

  app.get<{ Querystring: { scaleSet?: string; state?: string } }>(
    '/api/v1/runners',
    { schema: { response: list('runners', runnerSchema) } },
    async (request, reply) => {
      const { scaleSet, state } = request.query;
      if (state !== undefined && !RUNNER_STATES.includes(state as RunnerState)) {
        return reply.code(400).send(badRequest(`state must be one of ${RUNNER_STATES.join(', ')}`));
      }
      const query: RunnerQuery = {
        ...(scaleSet ? { scaleSet } : {}),
        ...(state ? { state: state as RunnerState } : {}),
      };
      return { runners: await readModel.runners(query) };
    },
  );

  app.get<{ Querystring: { status?: string; scaleSet?: string; unroutable?: string; limit?: string } }>(
    '/api/v1/jobs',
    { schema: { response: list('jobs', jobSchema) } },
    async (request, reply) => {
      const { status, scaleSet, unroutable, limit } = request.query;
      if (status !== undefined && !JOB_STATUSES.includes(status as JobStatus)) {
        return reply.code(400).send(badRequest(`status must be one of ${JOB_STATUSES.join(', ')}`));
      }
      const parsedLimit = limit === undefined ? DEFAULT_JOB_LIMIT : Number(limit);
      if (!Number.isInteger(parsedLimit) || parsedLimit < 1) {
        return reply.code(400).send(badRequest('limit must be a positive integer'));
      }
      const query: JobQuery = {
        limit: Math.min(parsedLimit, MAX_JOB_LIMIT),
        ...(status ? { status: status as JobStatus } : {}),
        ...(scaleSet ? { scaleSet } : {}),
        ...(unroutable === 'true' ? { unroutable: true } : {}),
      };
      return { jobs: await readModel.jobs(query) };
    },
  );

  app.get('/api/v1/events', async (request, reply) => {
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
