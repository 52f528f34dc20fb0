/**
 * The control API under /_sim: workload (jobs), observation (stats, runners, jobs), fault injection, reset, the
 * webhook target, and the simulated cloud (/_sim/instances). No GitHub auth; faults never apply here.
 * Errors are `{message}` with 400 (bad input), 404 (unknown thing) or 409 (state conflict).
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { SimContext } from './context.js';
import { parseFaults } from './faults.js';
import type { FaultsInput } from './faults.js';
import type { InstanceInput, InstanceManager, InstanceRegistration } from './instances.js';
import type { Job, JobStatus } from './model.js';

export interface SimJobView {
  readonly id: number;
  readonly runId: number;
  /** 1, or the attempt of its run a re-run created it in. */
  readonly runAttempt: number;
  readonly owner: string;
  readonly repo: string;
  readonly name: string;
  readonly labels: readonly string[];
  readonly status: JobStatus;
  readonly conclusion: string | null;
  readonly runnerId: number | null;
  readonly runnerName: string | null;
  readonly durationMs: number;
  /** ms epoch */
  readonly queuedAt: number;
  readonly startedAt: number | null;
  readonly completedAt: number | null;
}

export const jobView = (job: Job): SimJobView => ({
  id: job.id,
  runId: job.runId,
  runAttempt: job.runAttempt,
  owner: job.repo.owner.login,
  repo: job.repo.name,
  name: job.name,
  labels: [...job.labels],
  status: job.status,
  conclusion: job.conclusion,
  runnerId: job.runnerId,
  runnerName: job.runnerName,
  durationMs: job.durationMs,
  queuedAt: job.queuedAt,
  startedAt: job.startedAt,
  completedAt: job.completedAt,
});

export interface JobsInput {
  owner: string;
  repo: string;
  labels: string[];
  durationMs?: number;
  count?: number;
  name?: string;
  workflowName?: string;
  conclusion?: 'success' | 'failure';
}

export class ControlError extends Error {
  readonly status: number;
  readonly code: string;
  constructor(status: number, message: string, code = 'bad_request') {
    super(message);
    this.name = 'ControlError';
    this.status = status;
    this.code = code;
  }
}

const bad = (message: string) => new ControlError(400, message);

function parseBody(raw: unknown): Record<string, unknown> {
  if (typeof raw !== 'string' || raw.trim() === '') return {};
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    throw bad('the body is not valid JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw bad('the body must be a JSON object');
  return value as Record<string, unknown>;
}

export function parseJobsInput(body: Record<string, unknown>): JobsInput {
  const { owner, repo, labels, durationMs, count, name, workflowName, conclusion } = body;
  if (typeof owner !== 'string' || owner === '') throw bad('owner must be a non-empty string');
  if (typeof repo !== 'string' || repo === '') throw bad('repo must be a non-empty string');
  if (
    !Array.isArray(labels) ||
    labels.length === 0 ||
    labels.some((l) => typeof l !== 'string' || l.trim() === '')
  ) {
    throw bad('labels must be a non-empty array of non-empty strings');
  }
  if (
    durationMs !== undefined &&
    (typeof durationMs !== 'number' || !Number.isFinite(durationMs) || durationMs < 0)
  ) {
    throw bad('durationMs must be a number >= 0');
  }
  if (
    count !== undefined &&
    (typeof count !== 'number' || !Number.isInteger(count) || count < 1 || count > 10_000)
  ) {
    throw bad('count must be an integer from 1 to 10000');
  }
  if (name !== undefined && typeof name !== 'string') throw bad('name must be a string');
  if (workflowName !== undefined && typeof workflowName !== 'string')
    throw bad('workflowName must be a string');
  if (conclusion !== undefined && conclusion !== 'success' && conclusion !== 'failure')
    throw bad('conclusion must be success or failure');
  return {
    owner,
    repo,
    labels: (labels as string[]).map((l) => l.trim()),
    ...(durationMs !== undefined ? { durationMs: durationMs as number } : {}),
    ...(count !== undefined ? { count: count as number } : {}),
    ...(name !== undefined ? { name: name as string } : {}),
    ...(workflowName !== undefined ? { workflowName: workflowName as string } : {}),
    ...(conclusion !== undefined ? { conclusion: conclusion as 'success' | 'failure' } : {}),
  };
}

/** Creates jobs through the engine (shared by the HTTP route and the library API). */
export function createJobs(ctx: SimContext, input: JobsInput): Job[] {
  const org = ctx.world.org(input.owner);
  if (!org) {
    const known = ctx.world
      .orgs()
      .map((o) => o.login)
      .join(', ');
    throw new ControlError(
      400,
      `unknown organization '${input.owner}' (the simulator has: ${known}; add one with --org)`,
    );
  }
  const repo = ctx.world.repo(input.owner, input.repo, ctx.now());
  if (!repo) throw bad(`'${input.repo}' is not a valid repository name`);
  return ctx.engine.createJobs({
    repo,
    labels: input.labels,
    durationMs: input.durationMs ?? ctx.options.defaultJobDurationMs,
    count: input.count ?? 1,
    ...(input.name !== undefined ? { name: input.name } : {}),
    ...(input.workflowName !== undefined ? { workflowName: input.workflowName } : {}),
    ...(input.conclusion !== undefined ? { outcome: input.conclusion } : {}),
  });
}

const JOB_STATUSES = new Set(['queued', 'in_progress', 'completed']);
const NAME = /^[^\s/\\\p{Cc}]{1,255}$/u;

export function parseInstanceInput(body: Record<string, unknown>): InstanceInput {
  const { name, tags, registration, bootDelayMs } = body;
  if (typeof name !== 'string' || !NAME.test(name))
    throw bad('name must be 1 to 255 characters without spaces, slashes or control characters');
  const tagRecord: Record<string, string> = {};
  if (tags !== undefined) {
    if (typeof tags !== 'object' || tags === null || Array.isArray(tags))
      throw bad('tags must be an object of strings');
    for (const [k, v] of Object.entries(tags as Record<string, unknown>)) {
      if (typeof v !== 'string') throw bad(`tag '${k}' must be a string`);
      tagRecord[k] = v;
    }
  }
  if (
    bootDelayMs !== undefined &&
    (typeof bootDelayMs !== 'number' ||
      !Number.isFinite(bootDelayMs) ||
      bootDelayMs < 0 ||
      bootDelayMs > 3_600_000)
  ) {
    throw bad('bootDelayMs must be a number of ms from 0 to 3600000');
  }
  if (typeof registration !== 'object' || registration === null || Array.isArray(registration))
    throw bad('registration must be an object');
  const r = registration as Record<string, unknown>;
  let parsed: InstanceRegistration;
  if (r.mode === 'jit') {
    if (typeof r.jitConfig !== 'string' || r.jitConfig === '')
      throw bad('registration.jitConfig must be a non-empty string');
    parsed = { mode: 'jit', jitConfig: r.jitConfig };
  } else if (r.mode === 'token') {
    if (typeof r.url !== 'string' || r.url === '') throw bad('registration.url must be a non-empty string');
    if (typeof r.token !== 'string' || r.token === '')
      throw bad('registration.token must be a non-empty string');
    if (!Array.isArray(r.labels) || r.labels.some((l) => typeof l !== 'string'))
      throw bad('registration.labels must be an array of strings');
    if (typeof r.runnerGroup !== 'string' || r.runnerGroup === '')
      throw bad('registration.runnerGroup must be a non-empty string');
    if (typeof r.ephemeral !== 'boolean') throw bad('registration.ephemeral must be a boolean');
    parsed = {
      mode: 'token',
      url: r.url,
      token: r.token,
      labels: r.labels as string[],
      runnerGroup: r.runnerGroup,
      ephemeral: r.ephemeral,
    };
  } else {
    throw bad("registration.mode must be 'jit' or 'token'");
  }
  return {
    name,
    tags: tagRecord,
    registration: parsed,
    bootDelayMs: (bootDelayMs as number | undefined) ?? 0,
  };
}

export interface SimStats {
  apiCalls: { total: number; byRoute: Record<string, number> };
  runners: { registered: number; online: number; busy: number };
  jobs: { queued: number; in_progress: number; completed: number };
  webhooks: { sent: number; failed: number; dropped: number };
  instances: number;
  /** Requests the rate limits refused (injected faults not counted). */
  rateLimit: { primaryRefusals: number; secondaryRefusals: number };
}

export function stats(ctx: SimContext, instances: InstanceManager): SimStats {
  return {
    apiCalls: { total: ctx.stats.total, byRoute: Object.fromEntries(ctx.stats.byRoute) },
    runners: ctx.runners.counts(),
    jobs: { ...ctx.engine.counts },
    webhooks: { ...ctx.webhooks.stats },
    instances: instances.size,
    rateLimit: { ...ctx.limiter.refusals },
  };
}

export function applyFaults(ctx: SimContext, change: FaultsInput): void {
  const { rateLimit, ...rest } = change;
  ctx.faults = { ...ctx.faults, ...rest };
  if (rateLimit === undefined) return;
  if (typeof rateLimit === 'number') ctx.limiter.configure({ perHour: rateLimit });
  else {
    ctx.limiter.configure({
      ...(rateLimit.limit !== undefined ? { perHour: rateLimit.limit } : {}),
      ...(rateLimit.remaining !== undefined ? { remaining: rateLimit.remaining } : {}),
      ...(rateLimit.secondaryPerMinute !== undefined
        ? { secondaryPerMinute: rateLimit.secondaryPerMinute }
        : {}),
      ...(rateLimit.status !== undefined ? { status: rateLimit.status } : {}),
    });
  }
}

function runnerView(ctx: SimContext) {
  return [...ctx.runners.registry.all()].map((r) => ({
    id: r.id,
    name: r.name,
    scope: r.scopeKey,
    status: r.status,
    busy: r.busy,
    ephemeral: r.ephemeral,
    mode: r.mode,
    labels: r.labels.map((l) => l.name),
    jobId: r.jobId,
    createdAt: r.createdAt,
  }));
}

function fail(reply: FastifyReply, error: unknown): FastifyReply {
  if (error instanceof ControlError) return reply.code(error.status).send({ message: error.message });
  return reply.code(500).send({ message: 'internal error' });
}

export function registerControlRoutes(
  app: FastifyInstance,
  ctx: SimContext,
  instances: InstanceManager,
  reset: () => Promise<void>,
): void {
  const route =
    <T>(
      handler: (
        body: Record<string, unknown>,
        params: Record<string, string>,
        query: Record<string, unknown>,
      ) => T,
    ) =>
    async (request: { body: unknown; params: unknown; query: unknown }, reply: FastifyReply) => {
      try {
        const result = await handler(
          parseBody(request.body),
          request.params as Record<string, string>,
          request.query as Record<string, unknown>,
        );
        return result;
      } catch (error) {
        return fail(reply, error);
      }
    };

  app.post('/_sim/jobs', async (request, reply) => {
    try {
      const jobs = createJobs(ctx, parseJobsInput(parseBody(request.body)));
      return reply.code(201).send({ jobs: jobs.map((j) => ({ id: j.id, runId: j.runId })) });
    } catch (error) {
      return fail(reply, error);
    }
  });

  app.get(
    '/_sim/jobs',
    route((_b, _p, query) => {
      const status = typeof query.status === 'string' ? query.status : undefined;
      if (status !== undefined && !JOB_STATUSES.has(status))
        throw bad('status must be queued, in_progress or completed');
      return { jobs: ctx.engine.list(status as JobStatus | undefined).map(jobView) };
    }),
  );

  app.get('/_sim/jobs/:id', async (request, reply) => {
    const job = ctx.engine.get(Number((request.params as { id: string }).id));
    return job ? jobView(job) : reply.code(404).send({ message: 'job not found' });
  });

  app.post('/_sim/jobs/:id/cancel', async (request, reply) => {
    const job = ctx.engine.get(Number((request.params as { id: string }).id));
    if (!job) return reply.code(404).send({ message: 'job not found' });
    if (!ctx.engine.cancel(job))
      return reply.code(409).send({ message: 'job already completed', job: jobView(job) });
    return reply.code(202).send(jobView(job));
  });

  app.get('/_sim/runners', async () => ({ runners: runnerView(ctx) }));

  app.get('/_sim/stats', async () => stats(ctx, instances));

  app.get('/_sim/scalesets', async () => ({
    scaleSets: ctx.scaleSets.sets().map((set) => ctx.scaleSets.view(set)),
  }));

  app.post('/_sim/scalesets/expire-queue-tokens', async (_request, reply) => {
    ctx.scaleSets.expireQueueTokens();
    return reply.code(204).send();
  });

  app.get('/_sim/faults', async () => ({ ...ctx.faults, rateLimit: { ...ctx.limiter.settings } }));

  app.post('/_sim/faults', async (request, reply) => {
    try {
      const parsed = parseFaults(parseBody(request.body));
      if ('error' in parsed) throw bad(parsed.error);
      applyFaults(ctx, parsed.change);
      return { ...ctx.faults, rateLimit: { ...ctx.limiter.settings } };
    } catch (error) {
      return fail(reply, error);
    }
  });

  app.post('/_sim/reset', async (_request, reply) => {
    await reset();
    return reply.code(204).send();
  });

  app.put('/_sim/webhook', async (request, reply) => {
    try {
      const body = parseBody(request.body);
      const { url, secret } = body;
      if (url !== null && (typeof url !== 'string' || !/^https?:\/\//.test(url)))
        throw bad('url must be an http(s) URL or null');
      if (secret !== undefined && (typeof secret !== 'string' || secret === ''))
        throw bad('secret must be a non-empty string');
      ctx.webhooks.configure(url as string | null, secret as string | undefined);
      return { url: ctx.webhooks.url };
    } catch (error) {
      return fail(reply, error);
    }
  });

  app.post('/_sim/instances', async (request, reply) => {
    try {
      const { instance, created } = instances.create(parseInstanceInput(parseBody(request.body)));
      return reply.code(created ? 201 : 200).send(instance);
    } catch (error) {
      return fail(reply, error);
    }
  });

  app.get('/_sim/instances', async (request) => {
    const tags: Record<string, string> = {};
    for (const [k, v] of Object.entries(request.query as Record<string, unknown>)) {
      if (k.startsWith('tag.') && k.length > 4)
        tags[k.slice(4)] = Array.isArray(v) ? String(v[0]) : String(v);
    }
    return { instances: instances.list(tags) };
  });

  app.get('/_sim/instances/:name', async (request, reply) => {
    const instance = instances.get((request.params as { name: string }).name);
    return instance ?? reply.code(404).send({ message: 'instance not found' });
  });

  app.delete('/_sim/instances/:name', async (request, reply) => {
    const deleted = instances.delete((request.params as { name: string }).name);
    return deleted ? reply.code(204).send() : reply.code(404).send({ message: 'instance not found' });
  });

  app.post('/_sim/instances/:name/kill', async (request, reply) => {
    const instance = instances.kill((request.params as { name: string }).name);
    return instance ?? reply.code(404).send({ message: 'instance not found' });
  });
}
