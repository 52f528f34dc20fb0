/** The broker protocol over HTTP (fetch), used by emulated runners in any process. */
import type {
  AddAgentReply,
  AddAgentRequest,
  AgentInfo,
  BrokerTransport,
  CompleteReply,
  JobMessage,
  RenewReply,
  RunnerRegistrationReply,
  SessionReply,
  TokenReply,
} from './protocol.js';
import { BrokerCallError } from './protocol.js';

/** Extra time past the long-poll wait before the client gives up on a response. */
const POLL_GRACE_MS = 10_000;
const CALL_TIMEOUT_MS = 30_000;

const join = (base: string, path: string) => `${base.endsWith('/') ? base : `${base}/`}${path}`;

export class HttpTransport implements BrokerTransport {
  readonly #fetch: typeof fetch;

  constructor(fetchImpl: typeof fetch = globalThis.fetch) {
    this.#fetch = fetchImpl;
  }

  async runnerRegistration(
    apiUrl: string,
    registrationToken: string,
    webUrl: string,
  ): Promise<RunnerRegistrationReply> {
    return (await this.#call(join(apiUrl, 'actions/runner-registration'), {
      method: 'POST',
      auth: `RemoteAuth ${registrationToken}`,
      body: { url: webUrl, runner_event: 'register' },
    })) as RunnerRegistrationReply;
  }

  async addAgent(serverUrl: string, adminToken: string, request: AddAgentRequest): Promise<AddAgentReply> {
    return (await this.#call(join(serverUrl, 'agents'), {
      method: 'POST',
      auth: `Bearer ${adminToken}`,
      body: request,
    })) as AddAgentReply;
  }

  async exchangeToken(authorizationUrl: string, clientAssertion: string): Promise<TokenReply> {
    const form = new URLSearchParams({
      grant_type: 'client_credentials',
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      client_assertion: clientAssertion,
    });
    return (await this.#call(authorizationUrl, { method: 'POST', form })) as TokenReply;
  }

  async createSession(serverUrl: string, accessToken: string, agent: AgentInfo): Promise<SessionReply> {
    return (await this.#call(join(serverUrl, 'sessions'), {
      method: 'POST',
      auth: `Bearer ${accessToken}`,
      body: { agent },
    })) as SessionReply;
  }

  async deleteSession(serverUrl: string, accessToken: string, sessionId: string): Promise<void> {
    await this.#call(join(serverUrl, `sessions/${encodeURIComponent(sessionId)}`), {
      method: 'DELETE',
      auth: `Bearer ${accessToken}`,
    });
  }

  async getMessage(
    serverUrl: string,
    accessToken: string,
    sessionId: string,
    waitMs: number,
    signal: AbortSignal,
  ): Promise<JobMessage | null> {
    const url = join(
      serverUrl,
      `message?sessionId=${encodeURIComponent(sessionId)}&waitMs=${Math.floor(waitMs)}`,
    );
    const reply = await this.#call(url, {
      method: 'GET',
      auth: `Bearer ${accessToken}`,
      signal,
      timeoutMs: waitMs + POLL_GRACE_MS,
    });
    return (reply as JobMessage | null) ?? null;
  }

  async renewJob(
    serverUrl: string,
    accessToken: string,
    jobId: number,
    waitMs: number,
    signal: AbortSignal,
  ): Promise<RenewReply> {
    const url = join(serverUrl, `jobs/${jobId}/renew?waitMs=${Math.floor(waitMs)}`);
    return (await this.#call(url, {
      method: 'POST',
      auth: `Bearer ${accessToken}`,
      signal,
      timeoutMs: waitMs + POLL_GRACE_MS,
    })) as RenewReply;
  }

  async completeJob(
    serverUrl: string,
    accessToken: string,
    jobId: number,
    conclusion: 'success' | 'failure' | 'cancelled',
  ): Promise<CompleteReply> {
    return (await this.#call(join(serverUrl, `jobs/${jobId}/complete`), {
      method: 'POST',
      auth: `Bearer ${accessToken}`,
      body: { conclusion },
    })) as CompleteReply;
  }

  async #call(
    url: string,
    options: {
      method: string;
      auth?: string;
      body?: unknown;
      form?: URLSearchParams;
      signal?: AbortSignal;
      timeoutMs?: number;
    },
  ): Promise<unknown> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (options.auth) headers.authorization = options.auth;
    let body: string | undefined;
    if (options.form) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      body = options.form.toString();
    } else if (options.body !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(options.body);
    }
    const timeout = AbortSignal.timeout(options.timeoutMs ?? CALL_TIMEOUT_MS);
    const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
    let response: Response;
    let text: string;
    try {
      response = await this.#fetch(url, { method: options.method, headers, body, signal });
      text = await response.text();
    } catch (cause) {
      if (options.signal?.aborted) throw new BrokerCallError(0, 'aborted', 'the call was aborted', { cause });
      throw new BrokerCallError(0, 'unreachable', `cannot reach ${new URL(url).origin}`, { cause });
    }
    if (response.status === 204) return null;
    let parsed: unknown = null;
    if (text.length > 0) {
      try {
        parsed = JSON.parse(text) as unknown;
      } catch {
        parsed = null;
      }
    }
    if (!response.ok) {
      const record = (parsed ?? {}) as { message?: unknown; code?: unknown; error?: unknown };
      const code =
        typeof record.code === 'string'
          ? record.code
          : typeof record.error === 'string'
            ? record.error
            : `http_${response.status}`;
      const message = typeof record.message === 'string' ? record.message : `HTTP ${response.status}`;
      throw new BrokerCallError(response.status, code, message);
    }
    return parsed;
  }
}
