/**
 * The GitHub client behind GitHubPort: JIT configs, registration tokens, runner listing and deletion, job status,
 * at org, repo and enterprise scope, with App or PAT auth, on github.com or GHES.
 *
 * Budget matters (one API call per ephemeral job is the floor), so everything that can be is
 * cached: installation ids per scope, installation tokens until shortly before expiry, runner group ids, and
 * registration tokens per scope (one token serves many runners). Concurrent callers share one in-flight request.
 */
import { setMaxListeners } from 'node:events';
import type { GitHubConfig, Scope } from '../core/fleet-config.js';
import type { GitHubRunner } from '../core/types.js';
import type {
  GitHubPort,
  JitConfigRequest,
  JitConfigResult,
  JobInfo,
  RegistrationToken,
  RunnerList,
} from '../core/ports.js';
import type { Logger } from '../telemetry/logger.js';
import type { FleetMetrics } from '../telemetry/metrics.js';
import { GitHubError, toGitHubError } from './errors.js';
import { OctokitFactory } from './octokit.js';
import type { FleetOctokitInstance } from './octokit.js';
import { registrationUrl, scopeKey, scopeRoute, splitRepo } from './scope.js';
import { asArray, asInteger, asObject, asString, toDelivery, toJobInfo, toRunner } from './shapes.js';
import { createTransport } from './transport.js';
import type { FetchLike } from './transport.js';

export interface GitHubClientOptions {
  readonly config: GitHubConfig;
  readonly logger: Logger;
  /** Defaults to the global fetch. */
  readonly fetch?: FetchLike;
  /** ms epoch clock for token caches. */
  readonly now?: () => number;
  /** When given, every call increments runner_fleet_github_api_calls_total and sets the rate-limit gauge. */
  readonly metrics?: FleetMetrics;
  /** Called once per HTTP attempt (retries and token requests included). */
  readonly onApiCall?: (route: string, status: number | 'error') => void;
  /** Per HTTP attempt; default 15 s. */
  readonly timeoutMs?: number;
  /** Retries of 5xx, network errors and timeouts; default 3 (waits 1 s, 4 s, 9 s). */
  readonly retries?: number;
  /** ms that one second of retry-after or backoff stands for; default 1000. Tests shrink it. */
  readonly retryBaseMs?: number;
  /**
   * Installation ids already known, by scope (`scopeKey`): start's preflight has just read each scope's installation,
   * and the client need not ask GitHub again. Others are looked up on first use.
   */
  readonly installationIds?: ReadonlyMap<string, number>;
  /** Rate-limit retries per request; default 2. */
  readonly maxRateLimitRetries?: number;
  /** A rate limit asking to wait longer than this (s) fails at once with `rate_limited`; default 60. */
  readonly maxRetryAfterSeconds?: number;
  /**
   * Requests in flight at once; default 50, half of GitHub's secondary limit of 100 concurrent requests (the other
   * half left to anything else using the same App or token). With 10, a 1,000-job burst waited in this client: the
   * controller benchmark's p99 to create went from 2.1 s to about 1 s with 50.
   */
  readonly maxConcurrentRequests?: number;
  /** POST/DELETE requests started at once (the throttling plugin's write limiter); default 5. */
  readonly maxConcurrentWrites?: number;
  /** Minimum ms between two writes; default 0. 333 keeps under GitHub's ~180 runner-creating POSTs a minute. */
  readonly writeIntervalMs?: number;
  /** Installation tokens are renewed this long before expiry; default 5 min. */
  readonly tokenRefreshMarginMs?: number;
  /** Registration tokens are renewed this long before expiry (an instance may boot for minutes); default 10 min. */
  readonly registrationTokenMarginMs?: number;
  readonly userAgent?: string;
}

export interface ApiCallCount {
  readonly total: number;
  /** By route template, e.g. `POST /orgs/{org}/actions/runners/generate-jitconfig`. */
  readonly byRoute: Readonly<Record<string, number>>;
  /** By HTTP status, or `error` for attempts with no response. */
  readonly byStatus: Readonly<Record<string, number>>;
}

/** One attempt to deliver an App webhook event, as `GET /app/hook/deliveries` lists it. */
export interface WebhookDelivery {
  readonly id: number;
  /** The event's GUID (X-GitHub-Delivery): shared by a delivery and its redeliveries. */
  readonly guid: string;
  /** ms epoch */
  readonly deliveredAt: number;
  readonly redelivery: boolean;
  /** The receiver's HTTP status; 0 when it gave no answer (refused, timed out). */
  readonly statusCode: number;
  readonly event: string;
  readonly action: string | null;
}

/** One delivery with the event GitHub sent in it, as `GET /app/hook/deliveries/{delivery_id}` returns it. */
export interface WebhookDeliveryDetail extends WebhookDelivery {
  /** The webhook's payload (`request.payload`), as sent. */
  readonly payload: unknown;
}

export interface GitHubClient extends GitHubPort {
  /** Last `x-ratelimit-remaining` GitHub sent, or null before the first response carrying it. */
  rateLimitRemaining(): number | null;
  /** HTTP attempts so far (for the demo summary and tests). */
  apiCallCount(): ApiCallCount;
  /** The runner with exactly this name, or null. */
  findRunnerByName(scope: Scope, name: string, signal?: AbortSignal): Promise<GitHubRunner | null>;
  /** True with App auth: the App's webhook deliveries can be listed and redelivered. */
  readonly canRedeliver: boolean;
  /**
   * The App webhook's deliveries delivered at or after `since` (ms epoch) and, when `newerThan` is given, with an
   * id above it; newest first (GitHub's order, by id); pages stop once they reach older ones. App auth only.
   */
  listWebhookDeliveries(since: number, signal?: AbortSignal, newerThan?: number): Promise<WebhookDelivery[]>;
  /** One delivery with its payload. App auth only. */
  getWebhookDelivery(deliveryId: number, signal?: AbortSignal): Promise<WebhookDeliveryDetail>;
  /** Asks GitHub to attempt a delivery again (same GUID). App auth only. */
  redeliverWebhook(deliveryId: number, signal?: AbortSignal): Promise<void>;
  /**
   * For shutdown: every request in flight is aborted (its caller gets `aborted` at once, even in the middle of a
   * retry's wait) and every later one fails the same way at once. Idempotent.
   */
  close(): void;
}

type Params = Record<string, unknown>;

/** Awaits a shared promise on behalf of one caller, who may give up (abort) without cancelling it for others. */
function withSignal<T>(
  promise: Promise<T>,
  signals: readonly (AbortSignal | undefined)[],
  route: string,
): Promise<T> {
  const present = signals.filter((s): s is AbortSignal => s !== undefined);
  if (present.length === 0) return promise;
  if (present.some((s) => s.aborted))
    return Promise.reject(new GitHubError(`GitHub ${route}: aborted`, { code: 'aborted', route }));
  // Listeners, removed when the promise settles, rather than AbortSignal.any: the client's close signal lives as long
  // as the client, and every signal derived from it with AbortSignal.any would stay referenced (Node 20).
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new GitHubError(`GitHub ${route}: aborted`, { code: 'aborted', route }));
    for (const s of present) s.addEventListener('abort', onAbort, { once: true });
    const detach = () => {
      for (const s of present) s.removeEventListener('abort', onAbort);
    };
    promise.then(
      (v) => {
        detach();
        resolve(v);
      },
      (e: unknown) => {
        detach();
        reject(e);
      },
    );
  });
}

/** Memoizes successful results per key; concurrent callers share the in-flight promise; failures are not kept. */
class SharedCache<T> {
  readonly #values = new Map<string, { value: T; until: number }>();
  readonly #inflight = new Map<string, Promise<T>>();

  get(key: string, now: number): T | undefined {
    const hit = this.#values.get(key);
    if (hit && now < hit.until) return hit.value;
    if (hit) this.#values.delete(key);
    return undefined;
  }

  set(key: string, value: T, until = Number.POSITIVE_INFINITY): void {
    this.#values.set(key, { value, until });
  }

  load(key: string, loader: () => Promise<{ value: T; until?: number }>): Promise<T> {
    const pending = this.#inflight.get(key);
    if (pending) return pending;
    const promise = loader()
      .then(({ value, until }) => {
        this.set(key, value, until);
        return value;
      })
      .finally(() => this.#inflight.delete(key));
    this.#inflight.set(key, promise);
    return promise;
  }
}

export function createGitHubClient(options: GitHubClientOptions): GitHubClient {
  return new Client(options);
}

class Client implements GitHubClient {
  readonly #config: GitHubConfig;
  readonly #log: Logger;
  readonly #now: () => number;
  readonly #factory: OctokitFactory;
  readonly #registrationTokenMarginMs: number;
  readonly #calls = { total: 0, byRoute: new Map<string, number>(), byStatus: new Map<string, number>() };
  #rateLimitRemaining: number | null = null;

  readonly #pat: FleetOctokitInstance | null = null;
  readonly #app: FleetOctokitInstance | null = null;
  readonly #installations = new Map<number, FleetOctokitInstance>();
  readonly #installationIds = new SharedCache<number>();
  readonly #runnerGroups = new SharedCache<number>();
  readonly #registrationTokens = new SharedCache<RegistrationToken>();
  /** Aborted by close(): every HTTP attempt and every caller's wait listen to it. */
  readonly #closed = new AbortController();

  constructor(options: GitHubClientOptions) {
    // Every call in flight listens to it (up to the client's concurrency, 50): not a leak, so no warning past 10.
    setMaxListeners(0, this.#closed.signal);
    this.#config = options.config;
    this.#log = options.logger.child({ component: 'github' });
    this.#now = options.now ?? Date.now;
    this.#registrationTokenMarginMs = options.registrationTokenMarginMs ?? 10 * 60_000;
    for (const [key, id] of options.installationIds ?? []) this.#installationIds.set(key, id);
    const metrics = options.metrics;
    const transport = createTransport({
      fetch: options.fetch ?? ((input, init) => globalThis.fetch(input, init)),
      basePath: new URL(options.config.apiUrl).pathname.replace(/\/+$/, ''),
      timeoutMs: options.timeoutMs ?? 15_000,
      signal: this.#closed.signal,
      onCall: (route, status) => {
        const s = String(status);
        this.#calls.total += 1;
        this.#calls.byRoute.set(route, (this.#calls.byRoute.get(route) ?? 0) + 1);
        this.#calls.byStatus.set(s, (this.#calls.byStatus.get(s) ?? 0) + 1);
        metrics?.githubApiCalls.inc({ route, status: s });
        options.onApiCall?.(route, status);
        this.#log.debug({ route, status }, 'GitHub API call');
      },
      onRateLimitRemaining: (remaining) => {
        this.#rateLimitRemaining = remaining;
        metrics?.githubRateLimitRemaining.set(remaining);
      },
    });
    this.#factory = new OctokitFactory({
      baseUrl: options.config.apiUrl,
      fetch: transport,
      logger: this.#log,
      userAgent: options.userAgent ?? 'runner-fleet',
      retries: options.retries ?? 3,
      retryBaseMs: options.retryBaseMs ?? 1000,
      maxRateLimitRetries: options.maxRateLimitRetries ?? 2,
      maxRetryAfterSeconds: options.maxRetryAfterSeconds ?? 60,
      maxConcurrentRequests: options.maxConcurrentRequests ?? 50,
      maxConcurrentWrites: options.maxConcurrentWrites ?? 5,
      writeIntervalMs: options.writeIntervalMs ?? 0,
      now: this.#now,
      tokenRefreshMarginMs: options.tokenRefreshMarginMs ?? 5 * 60_000,
    });
    const auth = options.config.auth;
    if ('token' in auth) this.#pat = this.#factory.withToken(auth.token);
    else this.#app = this.#factory.forApp(auth.app.id, auth.app.privateKey);
  }

  rateLimitRemaining(): number | null {
    return this.#rateLimitRemaining;
  }

  close(): void {
    // No reason of our own: fetch then fails with an AbortError, which Octokit does not retry.
    this.#closed.abort();
  }

  /** What a caller waits on: its own signal, and close(). */
  #signals(signal: AbortSignal | undefined): readonly (AbortSignal | undefined)[] {
    return [signal, this.#closed.signal];
  }

  /**
   * Pages of a paginated route, each request carrying the caller's signal (the paginator drops request options, so
   * it is handed a request function that adds it), and each awaited on the caller's behalf until close().
   */
  async *#pages(
    octokit: FleetOctokitInstance,
    route: string,
    params: Params,
    signal: AbortSignal | undefined,
  ): AsyncGenerator<{ data: unknown }> {
    const waitOn = this.#signals(signal);
    const request = Object.assign(
      // The transport adds close() to each request's own signal.
      (options: Params) => octokit.request({ ...options, request: signal ? { signal } : {} } as never),
      { endpoint: (parameters: Params) => octokit.request.endpoint(route, parameters as never) },
    );
    const paginate = octokit.paginate.iterator as unknown as (
      request: unknown,
      parameters: Params,
    ) => AsyncIterable<{ data: unknown }>;
    const iterator = paginate(request, { ...params })[Symbol.asyncIterator]();
    for (;;) {
      const next = await withSignal(iterator.next(), waitOn, route);
      if (next.done === true) return;
      yield next.value as { data: unknown };
    }
  }

  apiCallCount(): ApiCallCount {
    return {
      total: this.#calls.total,
      byRoute: Object.fromEntries(this.#calls.byRoute),
      byStatus: Object.fromEntries(this.#calls.byStatus),
    };
  }

  registrationUrl(scope: Scope): string {
    return registrationUrl(this.#config.url, scope);
  }

  get canRedeliver(): boolean {
    return this.#app !== null;
  }

  async listWebhookDeliveries(
    since: number,
    signal?: AbortSignal,
    newerThan?: number,
  ): Promise<WebhookDelivery[]> {
    const route = 'GET /app/hook/deliveries';
    const app = this.#appOnly(route);
    const out: WebhookDelivery[] = [];
    const floor = newerThan ?? -Infinity;
    try {
      // Newest first: stop paging at the first page that reaches back past `since` or down to `newerThan`.
      for await (const page of this.#pages(app, route, { per_page: 100 }, signal)) {
        let older = false;
        asArray(page.data as unknown, route, 'body').forEach((item, i) => {
          const d = toDelivery(item, route, `deliveries[${i}]`);
          if (d.deliveredAt >= since && d.id > floor) out.push(d);
          else older = true;
        });
        if (older) break;
      }
    } catch (error) {
      throw toGitHubError(error, route, this.#now());
    }
    return out;
  }

  async getWebhookDelivery(deliveryId: number, signal?: AbortSignal): Promise<WebhookDeliveryDetail> {
    const route = 'GET /app/hook/deliveries/{delivery_id}';
    const data = await this.#appRequest(route, { delivery_id: deliveryId }, signal);
    const request = asObject(asObject(data, route, 'body').request, route, 'request');
    return { ...toDelivery(data, route), payload: request.payload };
  }

  async redeliverWebhook(deliveryId: number, signal?: AbortSignal): Promise<void> {
    await this.#appRequest(
      'POST /app/hook/deliveries/{delivery_id}/attempts',
      { delivery_id: deliveryId },
      signal,
    );
  }

  /** A request as the App itself (JWT): the App's own resources, such as its webhook deliveries. */
  async #appRequest(route: string, params: Params, signal?: AbortSignal): Promise<unknown> {
    const app = this.#appOnly(route);
    try {
      const { data } = await withSignal(
        app.request(route, { ...params, request: signal ? { signal } : {} }),
        this.#signals(signal),
        route,
      );
      return data as unknown;
    } catch (error) {
      throw toGitHubError(error, route, this.#now());
    }
  }

  #appOnly(route: string): FleetOctokitInstance {
    if (this.#app === null) {
      throw new GitHubError(`GitHub ${route}: needs GitHub App authentication`, {
        code: 'unauthorized',
        route,
      });
    }
    return this.#app;
  }

  async generateJitConfig(
    scope: Scope,
    request: JitConfigRequest,
    signal?: AbortSignal,
  ): Promise<JitConfigResult> {
    const { base, params } = scopeRoute(scope);
    const runnerGroupId = await this.#runnerGroupId(scope, request.runnerGroup, signal);
    const route = `POST ${base}/actions/runners/generate-jitconfig`;
    const body: Params = {
      ...params,
      name: request.name,
      runner_group_id: runnerGroupId,
      labels: withSelfHosted(request.labels),
    };
    if (request.workFolder !== undefined) body.work_folder = request.workFolder;
    try {
      const { data } = await this.#request(scope, route, body, signal);
      const result = asObject(data, route, 'body');
      return {
        runner: toRunner(result.runner, route),
        encodedJitConfig: asString(result.encoded_jit_config, route, 'encoded_jit_config'),
      };
    } catch (error) {
      if (!(error instanceof GitHubError) || error.code !== 'conflict') throw error;
      // The name exists: most likely an earlier attempt of this very call succeeded (names are unique per runner).
      const existing = await this.findRunnerByName(scope, request.name, signal);
      if (!existing) throw error;
      this.#log.info(
        { runner: request.name, runnerId: existing.id },
        'JIT runner already registered; using it',
      );
      return { runner: existing, encodedJitConfig: '' };
    }
  }

  async registrationToken(scope: Scope, signal?: AbortSignal): Promise<RegistrationToken> {
    const key = scopeKey(scope);
    const cached = this.#registrationTokens.get(key, this.#now());
    if (cached) return cached;
    const { base, params } = scopeRoute(scope);
    const route = `POST ${base}/actions/runners/registration-token`;
    const shared = this.#registrationTokens.load(key, async () => {
      const { data } = await this.#request(scope, route, { ...params });
      const body = asObject(data, route, 'body');
      const expiresAt = Date.parse(asString(body.expires_at, route, 'expires_at'));
      if (!Number.isFinite(expiresAt))
        throw new GitHubError(`GitHub ${route}: expires_at is not a date`, { code: 'bad-response', route });
      const value = { token: asString(body.token, route, 'token'), expiresAt };
      return { value, until: expiresAt - this.#registrationTokenMarginMs };
    });
    return withSignal(shared, this.#signals(signal), route);
  }

  async listRunners(scope: Scope, namePrefix: string, signal?: AbortSignal): Promise<RunnerList> {
    const all = await this.#listAllRunners(scope, {}, signal);
    return runnerList(
      all.filter((r) => r.name.startsWith(namePrefix)),
      all.pages,
    );
  }

  async findRunnerByName(scope: Scope, name: string, signal?: AbortSignal): Promise<GitHubRunner | null> {
    // GitHub's `name` filter is an exact match: one call in the common case.
    const filtered = await this.#listAllRunners(scope, { name }, signal);
    const hit = filtered.find((r) => r.name === name);
    if (hit) return hit;
    // A server that ignores the filter returns the first pages of everything; look through all of them.
    if (filtered.length === 0) return null;
    return (await this.#listAllRunners(scope, {}, signal)).find((r) => r.name === name) ?? null;
  }

  async getRunner(scope: Scope, runnerId: number, signal?: AbortSignal): Promise<GitHubRunner | null> {
    const { base, params } = scopeRoute(scope);
    const route = `GET ${base}/actions/runners/{runner_id}`;
    try {
      const { data } = await this.#request(scope, route, { ...params, runner_id: runnerId }, signal);
      return toRunner(data, route);
    } catch (error) {
      if (error instanceof GitHubError && error.code === 'not-found') return null;
      throw error;
    }
  }

  async deleteRunner(scope: Scope, runnerId: number, signal?: AbortSignal): Promise<void> {
    const { base, params } = scopeRoute(scope);
    const route = `DELETE ${base}/actions/runners/{runner_id}`;
    try {
      await this.#request(scope, route, { ...params, runner_id: runnerId }, signal);
    } catch (error) {
      if (error instanceof GitHubError && error.code === 'not-found') return;
      throw error;
    }
  }

  async getJob(owner: string, repo: string, jobId: number, signal?: AbortSignal): Promise<JobInfo | null> {
    const route = 'GET /repos/{owner}/{repo}/actions/jobs/{job_id}';
    const scope: Scope = { repo: `${owner}/${repo}` };
    try {
      const { data } = await this.#request(scope, route, { owner, repo, job_id: jobId }, signal);
      return toJobInfo(data, route);
    } catch (error) {
      if (error instanceof GitHubError && error.code === 'not-found') return null;
      throw error;
    }
  }

  async rerunJob(owner: string, repo: string, jobId: number, signal?: AbortSignal): Promise<void> {
    const route = 'POST /repos/{owner}/{repo}/actions/jobs/{job_id}/rerun';
    const scope: Scope = { repo: `${owner}/${repo}` };
    await this.#request(scope, route, { owner, repo, job_id: jobId }, signal);
  }

  async #listAllRunners(scope: Scope, filter: Params, signal?: AbortSignal): Promise<RunnerList> {
    const { base, params } = scopeRoute(scope);
    const route = `GET ${base}/actions/runners`;
    const pages = { count: 0 };
    const items = await this.#paginate(scope, route, { ...params, ...filter, per_page: 100 }, signal, pages);
    return runnerList(
      items.map((r, i) => toRunner(r, route, `runners[${i}]`)),
      pages.count,
    );
  }

  /**
   * Repo scope always uses the default group (id 1), and so does an org's `Default` group (GitHub gives it id 1 in
   * every organization, and the name cannot be taken by another group): no lookup, one call fewer per start. Other
   * org groups and enterprise groups are looked up by name, cached.
   */
  async #runnerGroupId(scope: Scope, name: string, signal?: AbortSignal): Promise<number> {
    const { base, params, kind } = scopeRoute(scope);
    if (kind === 'repo' || (kind === 'org' && name.toLowerCase() === 'default')) return 1;
    const key = `${scopeKey(scope)}#${name.toLowerCase()}`;
    const cached = this.#runnerGroups.get(key, this.#now());
    if (cached !== undefined) return cached;
    const route = `GET ${base}/actions/runner-groups`;
    const shared = this.#runnerGroups.load(key, async () => {
      const groups = await this.#paginate(scope, route, { ...params, per_page: 100 });
      const named = groups.map((g, i) => {
        const o = asObject(g, route, `runner_groups[${i}]`);
        return {
          id: asInteger(o.id, route, `runner_groups[${i}].id`),
          name: asString(o.name, route, `runner_groups[${i}].name`),
        };
      });
      // GitHub treats group names case-insensitively; prefer an exact match.
      const group =
        named.find((g) => g.name === name) ?? named.find((g) => g.name.toLowerCase() === name.toLowerCase());
      if (!group) {
        throw new GitHubError(`runner group "${name}" not found in ${scopeKey(scope)}`, {
          code: 'runner-group-not-found',
          route,
        });
      }
      return { value: group.id };
    });
    return withSignal(shared, this.#signals(signal), route);
  }

  async #installationId(scope: Scope): Promise<number> {
    const auth = this.#config.auth;
    if (!('app' in auth)) throw new Error('installation ids exist only with App auth');
    if (auth.app.installationId !== undefined) return auth.app.installationId;
    const key = scopeKey(scope);
    const cached = this.#installationIds.get(key, this.#now());
    if (cached !== undefined) return cached;
    // A repository of an org the App is installed on shares the org's installation: no extra lookup.
    if ('repo' in scope) {
      const orgCached = this.#installationIds.get(
        scopeKey({ org: splitRepo(scope.repo).owner }),
        this.#now(),
      );
      if (orgCached !== undefined) return orgCached;
    }
    const { base, params } = scopeRoute(scope);
    const route = `GET ${base}/installation`;
    return this.#installationIds.load(key, async () => {
      try {
        const { data } = await this.#app!.request(route, { ...params });
        return { value: asInteger(asObject(data, route, 'body').id, route, 'id') };
      } catch (error) {
        const e = toGitHubError(error, route, this.#now());
        if (e.code === 'not-found') {
          throw new GitHubError(`the GitHub App is not installed on ${key}`, {
            code: 'installation-not-found',
            status: 404,
            route,
            cause: e,
          });
        }
        throw e;
      }
    });
  }

  async #octokitFor(scope: Scope): Promise<FleetOctokitInstance> {
    if (this.#pat) return this.#pat;
    const auth = this.#config.auth;
    if (!('app' in auth)) throw new Error('unreachable: no PAT and no App');
    const id = await this.#installationId(scope);
    let octokit = this.#installations.get(id);
    if (!octokit) {
      octokit = this.#factory.forInstallation(auth.app.id, auth.app.privateKey, id);
      this.#installations.set(id, octokit);
    }
    return octokit;
  }

  async #request(
    scope: Scope,
    route: string,
    params: Params,
    signal?: AbortSignal,
  ): Promise<{ data: unknown }> {
    try {
      const waitOn = this.#signals(signal);
      const octokit = await withSignal(this.#octokitFor(scope), waitOn, route);
      const response = await withSignal(
        octokit.request(route, { ...params, request: signal ? { signal } : {} }),
        waitOn,
        route,
      );
      return { data: response.data as unknown };
    } catch (error) {
      throw toGitHubError(error, route, this.#now());
    }
  }

  async #paginate(
    scope: Scope,
    route: string,
    params: Params,
    signal?: AbortSignal,
    pages?: { count: number },
  ): Promise<unknown[]> {
    try {
      const octokit = await withSignal(this.#octokitFor(scope), this.#signals(signal), route);
      const items: unknown[] = [];
      for await (const page of this.#pages(octokit, route, params, signal)) {
        if (pages !== undefined) pages.count++;
        items.push(...asArray(page.data as unknown, route, 'body'));
      }
      return items;
    } catch (error) {
      throw toGitHubError(error, route, this.#now());
    }
  }
}

/** JIT runners get exactly the labels sent; `self-hosted` is sent explicitly so jobs asking for it match. */
function withSelfHosted(labels: readonly string[]): string[] {
  return labels.some((l) => l.toLowerCase() === 'self-hosted') ? [...labels] : ['self-hosted', ...labels];
}

/** A runner array that also says how many pages it took; `pages` is not enumerable, so the array compares as one. */
function runnerList(runners: GitHubRunner[], pages: number | undefined): RunnerList {
  return Object.defineProperty(runners, 'pages', { value: pages, enumerable: false });
}
