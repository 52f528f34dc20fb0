/**
 * A client of GitHub's Actions service for runner scale sets: the protocol of actions/scaleset and
 * actions-runner-controller's listener, which lets a controller learn of jobs with no inbound connection.
 *
 * - Admin connection: a registration token of the scope (from the REST client, cached there) is traded at
 *   `POST {api}/actions/runner-registration` (`Authorization: RemoteAuth <token>`, `{url, runner_event: "register"}`)
 *   for the service URL and an admin JWT, which is traded again 60 s before its `exp`, and at once after a 401.
 * - Service calls: `{service}_apis/...?api-version=6.0-preview` with `Bearer <admin JWT>`.
 * - Message queue and acquirejobs: `Bearer <messageQueueAccessToken>` of the session; a 401 there means the queue
 *   token expired (QueueUnauthorizedError: refresh the session).
 *
 * No token reaches an error message or a log line: errors name the call and the status only.
 */
import type { Scope } from '../core/fleet-config.js';
import type { JitConfigResult, RegistrationToken } from '../core/ports.js';
import { callSignal } from '../lib/async.js';
import { releaseAnswered } from '../lib/node-fetch.js';
import { registrationUrl } from './scope.js';
import type { FetchLike } from './transport.js';

const API_VERSION = '6.0-preview';
const REFRESH_MARGIN_MS = 60_000;

export interface ScaleSetStatistics {
  readonly totalAvailableJobs: number;
  readonly totalAcquiredJobs: number;
  readonly totalAssignedJobs: number;
  readonly totalRunningJobs: number;
  readonly totalRegisteredRunners: number;
  readonly totalBusyRunners: number;
  readonly totalIdleRunners: number;
}

export interface ScaleSetSession {
  readonly sessionId: string;
  readonly ownerName: string;
  readonly messageQueueUrl: string;
  /** Secret: never log it. */
  readonly messageQueueAccessToken: string;
  readonly statistics: ScaleSetStatistics | null;
}

export type JobMessageType = 'JobAvailable' | 'JobAssigned' | 'JobStarted' | 'JobCompleted';

/** One item of a RunnerScaleSetJobMessages body. */
export interface JobMessage {
  readonly messageType: JobMessageType | string;
  readonly runnerRequestId: number;
  readonly repositoryName: string;
  readonly ownerName: string;
  readonly jobId: string;
  readonly workflowRunId: number;
  readonly requestLabels: readonly string[];
  readonly queueTime: string | null;
  readonly runnerAssignTime: string | null;
  readonly finishTime: string | null;
  readonly runnerId?: number;
  readonly runnerName?: string;
  readonly result?: string;
}

export interface ScaleSetMessage {
  readonly messageId: number;
  readonly messageType: string;
  readonly statistics: ScaleSetStatistics | null;
  readonly items: readonly JobMessage[];
}

/** A failed call of the Actions service: the call, the status, the service's exception type when it sent one. */
export class ActionsServiceError extends Error {
  readonly status: number;
  readonly typeKey: string | null;
  constructor(call: string, status: number, typeKey: string | null, detail?: string) {
    super(
      `Actions service ${call}: ${status === 0 ? 'no response' : `HTTP ${status}`}` +
        `${typeKey ? ` ${typeKey}` : ''}${detail ? `: ${detail}` : ''}`,
    );
    this.name = 'ActionsServiceError';
    this.status = status;
    this.typeKey = typeKey;
  }
}

/** 409 RunnerScaleSetSessionConflictException: another session of the scale set is live (a stale one, often). */
export class SessionConflictError extends ActionsServiceError {}

/** 401 from the message queue: the queue token expired or the session ended; refresh (or reopen) the session. */
export class QueueUnauthorizedError extends ActionsServiceError {}

export interface ActionsServiceOptions {
  /** The web URL of GitHub (https://github.com or the GHES URL). */
  readonly webUrl: string;
  /** The REST root (https://api.github.com, <ghes>/api/v3). */
  readonly apiUrl: string;
  readonly scope: Scope;
  /** A registration token of the scope (the REST client caches them). */
  readonly registrationToken: (signal?: AbortSignal) => Promise<RegistrationToken>;
  readonly fetch: FetchLike;
  readonly now?: () => number;
  /** Per-call timeout of ordinary calls; default 30 s. Long polls get `pollTimeoutMs`. */
  readonly timeoutMs?: number;
  /** Timeout of a message long poll (the service holds one about 50 s); default 70 s. */
  readonly pollTimeoutMs?: number;
  /** Called for every HTTP attempt with its route template and status ("error" without a response). */
  readonly onCall?: (route: string, status: string) => void;
}

interface Admin {
  readonly url: string;
  /** Secret. */
  readonly token: string;
  readonly expiresAt: number;
}

/** `exp` of a JWT (ms epoch), or null when the token is not a readable JWT. */
export function jwtExpiry(token: string): number | null {
  const payload = token.split('.')[1];
  if (payload === undefined) return null;
  try {
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { exp?: unknown };
    return typeof claims.exp === 'number' && Number.isFinite(claims.exp) ? claims.exp * 1000 : null;
  } catch {
    return null;
  }
}

const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);

function statisticsOf(raw: unknown): ScaleSetStatistics | null {
  if (typeof raw !== 'object' || raw === null) return null;
  const s = raw as Record<string, unknown>;
  return {
    totalAvailableJobs: num(s.totalAvailableJobs),
    totalAcquiredJobs: num(s.totalAcquiredJobs),
    totalAssignedJobs: num(s.totalAssignedJobs),
    totalRunningJobs: num(s.totalRunningJobs),
    totalRegisteredRunners: num(s.totalRegisteredRunners),
    totalBusyRunners: num(s.totalBusyRunners),
    totalIdleRunners: num(s.totalIdleRunners),
  };
}

export class ActionsServiceClient {
  readonly #o: ActionsServiceOptions;
  readonly #now: () => number;
  #admin: Admin | null = null;
  #connecting: Promise<Admin> | null = null;

  constructor(options: ActionsServiceOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
  }

  /** The admin connection, traded anew when it is within 60 s of its expiry (or was refused). */
  async #connection(signal?: AbortSignal): Promise<Admin> {
    const admin = this.#admin;
    if (admin && admin.expiresAt - REFRESH_MARGIN_MS > this.#now()) return admin;
    this.#connecting ??= this.#connect(signal).finally(() => (this.#connecting = null));
    return this.#connecting;
  }

  async #connect(signal?: AbortSignal): Promise<Admin> {
    const registration = await this.#o.registrationToken(signal);
    const call = 'POST /actions/runner-registration';
    const response = await this.#fetch(
      call,
      `${this.#o.apiUrl.replace(/\/$/, '')}/actions/runner-registration`,
      {
        method: 'POST',
        headers: {
          authorization: `RemoteAuth ${registration.token}`,
          'content-type': 'application/json',
          accept: 'application/json',
        },
        body: JSON.stringify({
          url: registrationUrl(this.#o.webUrl, this.#o.scope),
          runner_event: 'register',
        }),
      },
      signal,
    );
    const body = await this.#json(call, response, [200, 201]);
    const url = typeof body.url === 'string' ? body.url : '';
    const token = typeof body.token === 'string' ? body.token : '';
    if (url === '' || token === '')
      throw new ActionsServiceError(call, response.status, null, 'no url or token');
    // Without a readable `exp`, trade it again after five minutes.
    const expiresAt = jwtExpiry(token) ?? this.#now() + 5 * 60_000;
    this.#admin = { url: url.endsWith('/') ? url : `${url}/`, token, expiresAt };
    return this.#admin;
  }

  /**
   * One request, aborted by the caller's `signal` or after `timeoutMs`. The caller's signal (a listener's, alive as
   * long as it runs) is released once the answer is in; the timeout still bounds reading the body.
   */
  async #fetch(
    route: string,
    url: string,
    init: Omit<RequestInit, 'signal'>,
    signal: AbortSignal | undefined,
    timeoutMs = this.#o.timeoutMs ?? 30_000,
  ): Promise<Response> {
    const call = callSignal([signal], timeoutMs);
    let response: Response | undefined;
    try {
      response = await this.#o.fetch(url, { ...init, signal: call.signal });
      this.#o.onCall?.(route, String(response.status));
      return response;
    } catch (error) {
      this.#o.onCall?.(route, 'error');
      if (call.signal.aborted) throw error;
      throw new ActionsServiceError(route.replace(/^\{actions\} /, ''), 0, null, (error as Error).message);
    } finally {
      // Failed or answered: an answer whose body is still streamed keeps the timeout while it is read.
      releaseAnswered(call, response);
    }
  }

  /** A call on the message queue, with the session's queue token; its 401 means the token expired. */
  async #queueFetch(
    call: string,
    url: string,
    session: ScaleSetSession,
    init: { method?: string; headers: Record<string, string>; body?: string },
    signal: AbortSignal | undefined,
    timeoutMs?: number,
  ): Promise<Response> {
    const response = await this.#fetch(
      `{actions} ${call}`,
      url,
      { ...init, headers: { authorization: `Bearer ${session.messageQueueAccessToken}`, ...init.headers } },
      signal,
      timeoutMs,
    );
    if (response.status === 401) {
      await response.body?.cancel();
      throw new QueueUnauthorizedError(call, 401, null);
    }
    return response;
  }

  async #json(call: string, response: Response, ok: readonly number[]): Promise<Record<string, unknown>> {
    const text = await response.text();
    let body: unknown;
    try {
      body = text ? JSON.parse(text) : null;
    } catch {
      body = null;
    }
    if (!ok.includes(response.status)) {
      const b = (body ?? {}) as { typeKey?: unknown; message?: unknown };
      const typeKey = typeof b.typeKey === 'string' ? b.typeKey : null;
      const message = typeof b.message === 'string' ? b.message.slice(0, 300) : undefined;
      const Kind =
        response.status === 409 && typeKey === 'RunnerScaleSetSessionConflictException'
          ? SessionConflictError
          : ActionsServiceError;
      throw new Kind(call, response.status, typeKey, message);
    }
    return (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
  }

  /** An admin call; a 401 trades the admin token again and tries once more. */
  async #service(
    method: string,
    template: string,
    path: string,
    body: unknown,
    ok: readonly number[],
    signal?: AbortSignal,
  ): Promise<Record<string, unknown>> {
    const call = `${method} ${template}`;
    for (let attempt = 0; ; attempt++) {
      const admin = await this.#connection(signal);
      const url = new URL(path, admin.url);
      url.searchParams.set('api-version', API_VERSION);
      const response = await this.#fetch(
        `{actions} ${call}`,
        url.toString(),
        {
          method,
          headers: {
            authorization: `Bearer ${admin.token}`,
            'content-type': 'application/json',
            accept: 'application/json',
          },
          ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        },
        signal,
      );
      if (response.status === 401 && attempt === 0) {
        await response.body?.cancel();
        this.#admin = null;
        continue;
      }
      return this.#json(call, response, ok);
    }
  }

  /** The runner group's id by name (case-insensitive). */
  async runnerGroupId(name: string, signal?: AbortSignal): Promise<number> {
    const body = await this.#service(
      'GET',
      '_apis/runtime/runnergroups/',
      `_apis/runtime/runnergroups/?groupName=${encodeURIComponent(name)}`,
      undefined,
      [200],
      signal,
    );
    const groups = Array.isArray(body.value) ? (body.value as { id?: unknown; name?: unknown }[]) : [];
    const group = groups.find(
      (g) => typeof g.name === 'string' && g.name.toLowerCase() === name.toLowerCase(),
    );
    if (!group || typeof group.id !== 'number')
      throw new ActionsServiceError(
        'GET _apis/runtime/runnergroups/',
        404,
        null,
        `no runner group named ${name}`,
      );
    return group.id;
  }

  /**
   * The scale set of this name in the runner group, created when missing; its labels are brought in line with
   * `labels` when they differ. Returns its id.
   */
  async findOrCreateScaleSet(
    input: { name: string; runnerGroup: string; labels: readonly string[] },
    signal?: AbortSignal,
  ): Promise<number> {
    const groupId = await this.runnerGroupId(input.runnerGroup, signal);
    const labels = input.labels.map((name) => ({ name, type: 'System' }));
    const found = await this.#service(
      'GET',
      '_apis/runtime/runnerscalesets',
      `_apis/runtime/runnerscalesets?runnerGroupId=${groupId}&name=${encodeURIComponent(input.name)}`,
      undefined,
      [200],
      signal,
    );
    const existing = (Array.isArray(found.value) ? found.value : [])[0] as
      { id?: unknown; labels?: { name?: unknown }[] } | undefined;
    if (existing && typeof existing.id === 'number') {
      const have = (existing.labels ?? []).map((l) => String(l.name).toLowerCase()).sort();
      const want = input.labels.map((l) => l.toLowerCase()).sort();
      if (have.join('\n') !== want.join('\n')) {
        await this.#service(
          'PATCH',
          '_apis/runtime/runnerscalesets/{id}',
          `_apis/runtime/runnerscalesets/${existing.id}`,
          { labels },
          [200],
          signal,
        );
      }
      return existing.id;
    }
    const created = await this.#service(
      'POST',
      '_apis/runtime/runnerscalesets',
      '_apis/runtime/runnerscalesets',
      { name: input.name, runnerGroupId: groupId, labels, runnerSetting: { disableUpdate: true } },
      [200, 201],
      signal,
    );
    if (typeof created.id !== 'number')
      throw new ActionsServiceError('POST _apis/runtime/runnerscalesets', 200, null, 'no id in the answer');
    return created.id;
  }

  /** Opens the scale set's message session; SessionConflictError while another one lives. */
  async createSession(scaleSetId: number, ownerName: string, signal?: AbortSignal): Promise<ScaleSetSession> {
    const body = await this.#service(
      'POST',
      '_apis/runtime/runnerscalesets/{id}/sessions',
      `_apis/runtime/runnerscalesets/${scaleSetId}/sessions`,
      { ownerName },
      [200, 201],
      signal,
    );
    return sessionOf(body);
  }

  /** A new queue token for the session (after a 401 from the queue). */
  async refreshSession(
    scaleSetId: number,
    sessionId: string,
    signal?: AbortSignal,
  ): Promise<ScaleSetSession> {
    const body = await this.#service(
      'PATCH',
      '_apis/runtime/runnerscalesets/{id}/sessions/{sessionId}',
      `_apis/runtime/runnerscalesets/${scaleSetId}/sessions/${encodeURIComponent(sessionId)}`,
      undefined,
      [200],
      signal,
    );
    return sessionOf(body);
  }

  async deleteSession(scaleSetId: number, sessionId: string, signal?: AbortSignal): Promise<void> {
    await this.#service(
      'DELETE',
      '_apis/runtime/runnerscalesets/{id}/sessions/{sessionId}',
      `_apis/runtime/runnerscalesets/${scaleSetId}/sessions/${encodeURIComponent(sessionId)}`,
      undefined,
      [204, 404],
      signal,
    );
  }

  /** The next message (null: 202, nothing within the long poll). QueueUnauthorizedError on 401. */
  async getMessage(
    session: ScaleSetSession,
    lastMessageId: number,
    maxCapacity: number,
    signal?: AbortSignal,
  ): Promise<ScaleSetMessage | null> {
    const call = 'GET {messageQueueUrl}';
    const url = new URL(session.messageQueueUrl);
    if (lastMessageId > 0) url.searchParams.set('lastMessageId', String(lastMessageId));
    const response = await this.#queueFetch(
      call,
      url.toString(),
      session,
      {
        headers: {
          accept: `application/json; api-version=${API_VERSION}`,
          'x-scalesetmaxcapacity': String(Math.max(0, Math.floor(maxCapacity))),
        },
      },
      signal,
      this.#o.pollTimeoutMs ?? 70_000,
    );
    if (response.status === 202) {
      await response.body?.cancel();
      return null;
    }
    const body = await this.#json(call, response, [200]);
    let items: JobMessage[] = [];
    if (typeof body.body === 'string' && body.body !== '') {
      try {
        const parsed = JSON.parse(body.body) as unknown;
        if (Array.isArray(parsed)) items = parsed as JobMessage[];
      } catch {
        throw new ActionsServiceError(call, 200, null, 'the message body is not JSON');
      }
    }
    if (typeof body.messageId !== 'number') throw new ActionsServiceError(call, 200, null, 'no messageId');
    return {
      messageId: body.messageId,
      messageType: typeof body.messageType === 'string' ? body.messageType : '',
      statistics: statisticsOf(body.statistics),
      items,
    };
  }

  /** The acknowledgement: the message is not delivered again. */
  async deleteMessage(session: ScaleSetSession, messageId: number, signal?: AbortSignal): Promise<void> {
    const call = 'DELETE {messageQueueUrl}/{messageId}';
    const url = new URL(session.messageQueueUrl);
    url.pathname = `${url.pathname.replace(/\/$/, '')}/${messageId}`;
    const response = await this.#queueFetch(
      call,
      url.toString(),
      session,
      { method: 'DELETE', headers: { 'content-type': 'application/json' } },
      signal,
    );
    await this.#json(call, response, [200, 204, 404]);
  }

  /** Acquires offered jobs (needed where the service offers them first, as GHES does); returns those acquired. */
  async acquireJobs(
    session: ScaleSetSession,
    scaleSetId: number,
    requestIds: readonly number[],
    signal?: AbortSignal,
  ): Promise<number[]> {
    const call = 'POST _apis/runtime/runnerscalesets/{id}/acquirejobs';
    const admin = await this.#connection(signal);
    const url = new URL(`_apis/runtime/runnerscalesets/${scaleSetId}/acquirejobs`, admin.url);
    url.searchParams.set('api-version', API_VERSION);
    const response = await this.#queueFetch(
      call,
      url.toString(),
      session,
      { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(requestIds) },
      signal,
    );
    const body = await this.#json(call, response, [200]);
    return Array.isArray(body.value) ? body.value.filter((v): v is number => typeof v === 'number') : [];
  }

  /** A JIT config from the scale set: an ephemeral runner with the scale set's labels in its group. */
  async generateJitConfig(
    scaleSetId: number,
    name: string,
    workFolder: string | undefined,
    signal?: AbortSignal,
  ): Promise<JitConfigResult> {
    const body = await this.#service(
      'POST',
      '_apis/runtime/runnerscalesets/{id}/generatejitconfig',
      `_apis/runtime/runnerscalesets/${scaleSetId}/generatejitconfig`,
      { name, workFolder: workFolder ?? '_work' },
      [200, 201],
      signal,
    );
    const runner = (body.runner ?? {}) as { id?: unknown; name?: unknown };
    const config = body.encodedJITConfig;
    if (typeof runner.id !== 'number' || typeof config !== 'string' || config === '')
      throw new ActionsServiceError('POST generatejitconfig', 200, null, 'no runner or config in the answer');
    return {
      runner: {
        id: runner.id,
        name: typeof runner.name === 'string' ? runner.name : name,
        os: 'linux',
        status: 'offline',
        busy: false,
        labels: [],
      },
      encodedJitConfig: config,
    };
  }
}

function sessionOf(body: Record<string, unknown>): ScaleSetSession {
  const sessionId = body.sessionId;
  const url = body.messageQueueUrl;
  const token = body.messageQueueAccessToken;
  if (typeof sessionId !== 'string' || typeof url !== 'string' || typeof token !== 'string')
    throw new ActionsServiceError('session', 200, null, 'the session lacks an id, queue URL or queue token');
  return {
    sessionId,
    ownerName: typeof body.ownerName === 'string' ? body.ownerName : '',
    messageQueueUrl: url,
    messageQueueAccessToken: token,
    statistics: statisticsOf(body.statistics),
  };
}
