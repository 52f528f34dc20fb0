/**
 * The Actions service's runner scale set API, as actions/scaleset and actions-runner-controller call it. A client
 * trades a registration token for the service URL and an admin token (`POST {api}/actions/runner-registration`,
 * `RemoteAuth`, served by the broker routes), then calls `{service}/_apis/runtime/...?api-version=6.0-preview` with
 * `Bearer <admin token>`; the message queue and acquirejobs take the session's queue token instead. The service URL
 * is the broker's (`/_runner/`), where the simulator's runners already talk to "the Actions service".
 * Errors carry the service's shape: `{message, typeName, typeKey, errorCode, eventId}`.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { SimContext } from './context.js';
import { encodeJitConfig, runnerFiles } from './jit-config.js';
import type { ScopeRef } from './model.js';
import { scopeKey } from './model.js';
import { countCall } from './rest.js';
import type { ScaleSetService, SimScaleSet } from './scale-sets.js';

const API_VERSION = '6.0-preview';
const BASE = '/_runner/_apis/runtime';
const AGENTS = '/_runner/_apis/distributedtask/pools/0/agents';

class ServiceError extends Error {
  readonly status: number;
  readonly typeKey: string;
  constructor(status: number, typeKey: string, message: string) {
    super(message);
    this.status = status;
    this.typeKey = typeKey;
  }
  body(): Record<string, unknown> {
    return {
      $id: '1',
      innerException: null,
      message: this.message,
      typeName: `GitHub.DistributedTask.WebApi.${this.typeKey}, GitHub.DistributedTask.WebApi`,
      typeKey: this.typeKey,
      errorCode: 0,
      eventId: 3000,
    };
  }
}

const bad = (message: string) => new ServiceError(400, 'ArgumentException', message);

function parse(raw: unknown): unknown {
  if (typeof raw !== 'string' || raw.trim() === '') return {};
  try {
    return JSON.parse(raw) as unknown;
  } catch {
    throw bad('The request body is not valid JSON.');
  }
}

function bearer(request: FastifyRequest): string {
  const m = /^bearer\s+(\S+)$/i.exec(request.headers.authorization ?? '');
  return m?.[1] ?? '';
}

function intParam(value: unknown, what: string): number {
  const n = typeof value === 'string' && /^\d{1,15}$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n)) throw bad(`${what} must be an integer.`);
  return n;
}

type Handler = (request: FastifyRequest, reply: FastifyReply) => unknown;

export function registerActionsService(
  app: FastifyInstance,
  ctx: SimContext,
  service: ScaleSetService,
): void {
  service.acquireUrl = (set) =>
    `${ctx.broker.urls.broker}_apis/runtime/runnerscalesets/${set.id}/acquirejobs?api-version=${API_VERSION}`;

  const statsOf = (set: SimScaleSet) => service.statistics(set);
  const setJson = (set: SimScaleSet) => ({
    id: set.id,
    name: set.name,
    runnerGroupId: set.group.id,
    runnerGroupName: set.group.name,
    labels: set.labels,
    runnerSetting: { ephemeral: true, disableUpdate: set.disableUpdate },
    createdOn: new Date(set.createdAt).toISOString(),
    runnerJitConfigUrl: `${ctx.broker.urls.broker}_apis/runtime/runnerscalesets/${set.id}/generatejitconfig`,
    statistics: statsOf(set),
  });
  const sessionJson = (set: SimScaleSet) => {
    const s = set.session!;
    return {
      sessionId: s.id,
      ownerName: s.ownerName,
      runnerScaleSet: setJson(set),
      messageQueueUrl: `${ctx.broker.urls.broker}_apis/runtime/runnerscalesets/${set.id}/messages?sessionId=${s.id}`,
      messageQueueAccessToken: s.queueToken,
      statistics: statsOf(set),
    };
  };

  /** Admin-token routes: api-version required, the token's scope bounds what is visible. */
  const admin =
    (
      template: string,
      fn: (scope: ScopeRef, request: FastifyRequest, reply: FastifyReply) => unknown,
    ): Handler =>
    async (request, reply) => {
      countCall(ctx, `${request.method} {actions}${template}`);
      try {
        const query = request.query as Record<string, string | undefined>;
        const scope = ctx.broker.adminScope(bearer(request));
        if (!scope)
          return reply.code(401).send({ message: 'The admin token is missing, invalid or expired.' });
        if (query['api-version'] !== API_VERSION)
          throw bad(`api-version must be ${API_VERSION} (got ${String(query['api-version'])}).`);
        return await fn(scope, request, reply);
      } catch (error) {
        if (error instanceof ServiceError) return reply.code(error.status).send(error.body());
        throw error;
      }
    };

  const setOf = (scope: ScopeRef, request: FastifyRequest): SimScaleSet => {
    const id = intParam((request.params as { id?: string }).id, 'runnerScaleSetId');
    const set = service.get(scope, id);
    if (!set)
      throw new ServiceError(404, 'RunnerScaleSetNotFoundException', `Runner scale set ${id} was not found.`);
    return set;
  };

  const groupsOf = (scope: ScopeRef) =>
    ctx.world.groups().filter((g) => scope.kind !== 'repo' || g.isDefault);

  const groups = admin('/_apis/runtime/runnergroups/', (scope, request) => {
    const name = (request.query as Record<string, string | undefined>).groupName;
    const all = groupsOf(scope).filter(
      (g) => name === undefined || g.name.toLowerCase() === name.toLowerCase(),
    );
    return {
      count: all.length,
      value: all.map((g) => ({ id: g.id, name: g.name, size: 0, isDefaultGroup: g.isDefault })),
    };
  });
  app.get(`${BASE}/runnergroups/`, groups);
  app.get(`${BASE}/runnergroups`, groups);

  app.get(
    `${BASE}/runnerscalesets`,
    admin('/_apis/runtime/runnerscalesets', (scope, request) => {
      const q = request.query as Record<string, string | undefined>;
      const groupId = q.runnerGroupId === undefined ? undefined : intParam(q.runnerGroupId, 'runnerGroupId');
      const sets = service.list(scope, groupId, q.name);
      return { count: sets.length, value: sets.map(setJson) };
    }),
  );

  const readSetBody = (scope: ScopeRef, raw: unknown, partial: boolean) => {
    const body = parse(raw);
    if (typeof body !== 'object' || body === null || Array.isArray(body))
      throw bad('The body must be a runner scale set.');
    const b = body as Record<string, unknown>;
    const name = b.name;
    if (
      !(partial && name === undefined) &&
      (typeof name !== 'string' || name.trim() === '' || name.length > 45)
    )
      throw bad('name must be a string of 1 to 45 characters.');
    const groupId = b.runnerGroupId;
    let group = undefined;
    if (!(partial && groupId === undefined)) {
      if (typeof groupId !== 'number' || !Number.isSafeInteger(groupId))
        throw bad('runnerGroupId is required.');
      group = groupsOf(scope).find((g) => g.id === groupId);
      if (!group)
        throw new ServiceError(404, 'RunnerGroupNotFoundException', `Runner group ${groupId} not found.`);
    }
    let labels: string[] | undefined;
    if (b.labels !== undefined) {
      if (!Array.isArray(b.labels)) throw bad('labels must be an array.');
      labels = b.labels.map((l: unknown) => {
        const n = typeof l === 'object' && l !== null ? (l as { name?: unknown }).name : undefined;
        if (typeof n !== 'string' || n.trim() === '' || n.length > 256) throw bad('each label needs a name.');
        return n.trim();
      });
    }
    const setting = (b.runnerSetting ?? b.RunnerSetting) as { disableUpdate?: unknown } | undefined;
    return {
      name: typeof name === 'string' ? name.trim() : undefined,
      group,
      labels,
      disableUpdate: setting?.disableUpdate === true,
    };
  };

  app.post(
    `${BASE}/runnerscalesets`,
    admin('/_apis/runtime/runnerscalesets', (scope, request) => {
      const input = readSetBody(scope, request.body, false);
      if (service.list(scope, undefined, input.name).length > 0)
        throw new ServiceError(
          409,
          'RunnerScaleSetExistsException',
          `A runner scale set named ${input.name} already exists.`,
        );
      const set = service.create({
        scope,
        name: input.name!,
        group: input.group!,
        labels: input.labels ?? [],
        disableUpdate: input.disableUpdate,
      });
      return setJson(set);
    }),
  );

  app.get(
    `${BASE}/runnerscalesets/:id`,
    admin('/_apis/runtime/runnerscalesets/{id}', (scope, request) => setJson(setOf(scope, request))),
  );

  app.patch(
    `${BASE}/runnerscalesets/:id`,
    admin('/_apis/runtime/runnerscalesets/{id}', (scope, request) => {
      const set = setOf(scope, request);
      const input = readSetBody(scope, request.body, true);
      if (input.name !== undefined) set.name = input.name;
      if (input.group) set.group = input.group;
      if (input.labels) service.setLabels(set, input.labels);
      return setJson(set);
    }),
  );

  app.delete(
    `${BASE}/runnerscalesets/:id`,
    admin('/_apis/runtime/runnerscalesets/{id}', (scope, request, reply) => {
      service.delete(setOf(scope, request));
      return reply.code(204).send();
    }),
  );

  app.post(
    `${BASE}/runnerscalesets/:id/generatejitconfig`,
    admin('/_apis/runtime/runnerscalesets/{id}/generatejitconfig', async (scope, request) => {
      const set = setOf(scope, request);
      const body = parse(request.body) as Record<string, unknown>;
      const name = typeof body.name === 'string' ? body.name.trim() : '';
      if (name === '' || name.length > 64) throw bad('name must be a string of 1 to 64 characters.');
      const jitKey = await ctx.jitKey;
      let runner;
      try {
        runner = ctx.runners.create({
          scope,
          name,
          group: set.group,
          labels: set.labels.map((l) => l.name),
          readOnlyLabels: ['self-hosted'],
          ephemeral: true,
          mode: 'jit',
          publicKey: jitKey.publicKey,
        });
      } catch {
        throw new ServiceError(409, 'AgentExistsException', `A runner named ${name} already exists.`);
      }
      service.addRunner(set, runner);
      const files = runnerFiles(
        runner,
        { web: ctx.urls.web, broker: ctx.broker.urls.broker, tokenUrl: ctx.broker.urls.token },
        jitKey.params,
      );
      if (typeof body.workFolder === 'string' && body.workFolder.length > 0)
        files.runner.workFolder = body.workFolder;
      const encodedJITConfig = encodeJitConfig(files);
      service.recordSecret(encodedJITConfig);
      return { runner: { id: runner.id, name: runner.name, runnerScaleSetId: set.id }, encodedJITConfig };
    }),
  );

  // --- sessions -----------------------------------------------------------------------------------------------

  app.post(
    `${BASE}/runnerscalesets/:id/sessions`,
    admin('/_apis/runtime/runnerscalesets/{id}/sessions', (scope, request) => {
      const set = setOf(scope, request);
      const body = parse(request.body) as Record<string, unknown>;
      const owner = typeof body.ownerName === 'string' && body.ownerName !== '' ? body.ownerName : 'unknown';
      const live = service.liveSession(set);
      let conflictOwner = live?.ownerName;
      if (!live && ctx.faults.sessionConflicts > 0) {
        ctx.faults = { ...ctx.faults, sessionConflicts: ctx.faults.sessionConflicts - 1 };
        conflictOwner = 'stale-listener';
      }
      if (conflictOwner !== undefined) {
        service.recordConflict(set, owner, conflictOwner);
        throw new ServiceError(
          409,
          'RunnerScaleSetSessionConflictException',
          `The runner scale set ${set.name} already has an active session for owner ${conflictOwner}.`,
        );
      }
      service.openSession(set, owner);
      return sessionJson(set);
    }),
  );

  const sessionOf = (set: SimScaleSet, request: FastifyRequest) => {
    const sid = (request.params as { sid?: string }).sid;
    const session = service.liveSession(set);
    if (!session || session.id !== sid)
      throw new ServiceError(
        404,
        'RunnerScaleSetSessionNotFoundException',
        `Session ${String(sid)} was not found.`,
      );
    return session;
  };

  app.patch(
    `${BASE}/runnerscalesets/:id/sessions/:sid`,
    admin('/_apis/runtime/runnerscalesets/{id}/sessions/{sessionId}', (scope, request) => {
      const set = setOf(scope, request);
      service.refreshSession(set, sessionOf(set, request));
      return sessionJson(set);
    }),
  );

  app.delete(
    `${BASE}/runnerscalesets/:id/sessions/:sid`,
    admin('/_apis/runtime/runnerscalesets/{id}/sessions/{sessionId}', (scope, request, reply) => {
      const set = setOf(scope, request);
      sessionOf(set, request);
      service.deleteSession(set);
      return reply.code(204).send();
    }),
  );

  // --- message queue (queue token) ----------------------------------------------------------------------------

  /** The queue token's session for scale set `id`; null after a 401 was sent. */
  const queueAuth = (request: FastifyRequest, reply: FastifyReply) => {
    const id = Number((request.params as { id?: string }).id);
    const found = service.checkQueueToken(bearer(request));
    const injected =
      ctx.faults.queueUnauthorizedRate > 0 && ctx.options.random() < ctx.faults.queueUnauthorizedRate;
    if (!found || found.set.id !== id || injected) {
      void reply.code(401).send({ message: 'The message queue token is invalid or expired.' });
      return null;
    }
    found.session.lastSeenAt = ctx.now();
    return found;
  };

  app.get(`${BASE}/runnerscalesets/:id/messages`, async (request, reply) => {
    countCall(ctx, 'GET {actions}/_apis/runtime/runnerscalesets/{id}/messages');
    const found = queueAuth(request, reply);
    if (!found) return reply;
    const { set, session } = found;
    const q = request.query as Record<string, string | undefined>;
    const last = q.lastMessageId === undefined ? 0 : Number(q.lastMessageId);
    const capacity = request.headers['x-scalesetmaxcapacity'];
    if (typeof capacity === 'string') {
      const n = Number(capacity);
      if (!Number.isInteger(n) || n < 0)
        return reply.code(400).send(bad('X-ScaleSetMaxCapacity must be a non-negative integer.').body());
      set.maxCapacity = n;
    }
    if (!Number.isSafeInteger(last) || last < 0)
      return reply.code(400).send(bad('lastMessageId must be an integer.').body());

    const dropped = ctx.faults.queueDropRate > 0 && ctx.options.random() < ctx.faults.queueDropRate;
    session.polls++;
    try {
      const message = await new Promise<ReturnType<ScaleSetService['nextMessage']> | 'drop'>((resolve) => {
        let timer: NodeJS.Timeout | undefined;
        const done = (value: ReturnType<ScaleSetService['nextMessage']> | 'drop') => {
          set.waiters.delete(check);
          if (timer) clearTimeout(timer);
          request.raw.off('close', onClose);
          resolve(value);
        };
        const check = () => {
          if (set.session !== session) return done(undefined);
          const m = service.nextMessage(set, session, last);
          if (m) done(m);
        };
        const onClose = () => done(undefined);
        request.raw.on('close', onClose);
        if (dropped) {
          timer = setTimeout(() => done('drop'), 20);
          return;
        }
        timer = setTimeout(() => done(undefined), ctx.options.scaleSetPollTimeoutMs);
        timer.unref();
        set.waiters.add(check);
        check();
      });
      if (message === 'drop') {
        request.raw.socket?.destroy();
        return reply;
      }
      if (!message || reply.raw.destroyed) return reply.code(202).send();
      return reply.code(200).send({
        messageId: message.id,
        messageType: 'RunnerScaleSetJobMessages',
        body: JSON.stringify(message.items),
        statistics: statsOf(set),
      });
    } finally {
      session.polls--;
      session.lastSeenAt = ctx.now();
    }
  });

  app.delete(`${BASE}/runnerscalesets/:id/messages/:mid`, async (request, reply) => {
    countCall(ctx, 'DELETE {actions}/_apis/runtime/runnerscalesets/{id}/messages/{messageId}');
    const found = queueAuth(request, reply);
    if (!found) return reply;
    const mid = Number((request.params as { mid?: string }).mid);
    service.acknowledge(found.set, mid);
    return reply.code(204).send();
  });

  app.post(`${BASE}/runnerscalesets/:id/acquirejobs`, async (request, reply) => {
    countCall(ctx, 'POST {actions}/_apis/runtime/runnerscalesets/{id}/acquirejobs');
    const found = queueAuth(request, reply);
    if (!found) return reply;
    let ids: unknown;
    try {
      ids = parse(request.body);
    } catch (error) {
      return reply.code(400).send((error as ServiceError).body());
    }
    if (!Array.isArray(ids) || !ids.every((i) => Number.isSafeInteger(i)))
      return reply.code(400).send(bad('The body must be an array of runner request ids.').body());
    const acquired = service.acquire(found.set, ids as number[]);
    return reply.code(200).send({ count: acquired.length, value: acquired });
  });

  // --- runners of the service (agents) ------------------------------------------------------------------------

  const agentJson = (id: number) => {
    const runner = ctx.runners.registry.get(id)!;
    return {
      id: runner.id,
      name: runner.name,
      version: runner.version ?? '',
      enabled: true,
      status: runner.status === 'online' ? 'online' : 'offline',
      ephemeral: runner.ephemeral,
      runnerScaleSetId: service.setOfRunner(runner.id)?.id ?? 0,
      labels: runner.labels.map((l) => ({ name: l.name, type: 'System' })),
    };
  };

  app.get(
    AGENTS,
    admin('/_apis/distributedtask/pools/0/agents', (scope, request) => {
      const name = (request.query as Record<string, string | undefined>).agentName;
      if (name === undefined) throw bad('agentName is required.');
      const runner = ctx.runners.registry.byName(scopeKey(scope), name);
      return runner ? { count: 1, value: [agentJson(runner.id)] } : { count: 0, value: [] };
    }),
  );

  const agentOf = (scope: ScopeRef, request: FastifyRequest) => {
    const id = intParam((request.params as { aid?: string }).aid, 'agentId');
    const runner = ctx.runners.registry.getInScope(scopeKey(scope), id);
    if (!runner) throw new ServiceError(404, 'AgentNotFoundException', `Runner ${id} was not found.`);
    return runner;
  };

  app.get(
    `${AGENTS}/:aid`,
    admin('/_apis/distributedtask/pools/0/agents/{id}', (scope, request) =>
      agentJson(agentOf(scope, request).id),
    ),
  );

  app.delete(
    `${AGENTS}/:aid`,
    admin('/_apis/distributedtask/pools/0/agents/{id}', (scope, request, reply) => {
      const runner = agentOf(scope, request);
      if (runner.busy)
        throw new ServiceError(
          400,
          'JobStillRunningException',
          `Runner ${runner.name} is still running a job.`,
        );
      ctx.runners.remove(runner);
      return reply.code(204).send();
    }),
  );
}
