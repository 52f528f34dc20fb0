/**
 * The fetch every GitHub request goes through (Octokit's `request.fetch`). Sitting below Octokit's hooks, it sees
 * every HTTP attempt, retries and installation-token requests included, so it is where calls are counted by route
 * template and status, where the last `x-ratelimit-remaining` is read, and where each attempt gets its own timeout.
 */
import { callSignal } from '../lib/async.js';
import { releaseAnswered } from '../lib/node-fetch.js';
import { RequestTimeoutError } from './errors.js';

export type FetchLike = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

/** Path parameters replaced by their names, so metrics have bounded cardinality. Applied in order. */
const ROUTE_PARAMETERS: readonly (readonly [RegExp, string])[] = [
  [/^\/orgs\/[^/]+/, '/orgs/{org}'],
  [/^\/repos\/[^/]+\/[^/]+/, '/repos/{owner}/{repo}'],
  [/^\/enterprises\/[^/]+/, '/enterprises/{enterprise}'],
  [/^\/users\/[^/]+/, '/users/{username}'],
  [/^\/app\/installations\/[^/]+/, '/app/installations/{installation_id}'],
  [/^\/app\/hook\/deliveries\/\d+/, '/app/hook/deliveries/{delivery_id}'],
  [/\/actions\/runners\/\d+/, '/actions/runners/{runner_id}'],
  [/\/actions\/runner-groups\/\d+/, '/actions/runner-groups/{runner_group_id}'],
  [/\/actions\/jobs\/\d+/, '/actions/jobs/{job_id}'],
  [/\/actions\/runs\/\d+/, '/actions/runs/{run_id}'],
];

/** `GET /orgs/{org}/actions/runners` for `GET https://api.github.com/orgs/acme/actions/runners?page=2`. */
export function routeTemplate(method: string, url: string, basePath = ''): string {
  let path = new URL(url, 'http://github.invalid').pathname;
  if (basePath && path.startsWith(basePath)) path = path.slice(basePath.length) || '/';
  for (const [pattern, replacement] of ROUTE_PARAMETERS) path = path.replace(pattern, replacement);
  return `${method.toUpperCase()} ${path}`;
}

export interface TransportOptions {
  readonly fetch: FetchLike;
  /** Path prefix of the API base URL (`/api/v3` on GHES), stripped from route templates. */
  readonly basePath: string;
  /** Per attempt, in ms. */
  readonly timeoutMs: number;
  /** Aborts every attempt in flight and every later one (the client's close()). */
  readonly signal?: AbortSignal;
  /** Called once per HTTP attempt: the status, or 'error' when no response came back. */
  readonly onCall: (route: string, status: number | 'error') => void;
  readonly onRateLimitRemaining: (remaining: number) => void;
}

export function createTransport(options: TransportOptions): FetchLike {
  return async (input, init = {}) => {
    const method = init.method ?? (input instanceof Request ? input.method : 'GET');
    const url = input instanceof Request ? input.url : String(input);
    const route = routeTemplate(method, url, options.basePath);
    // The caller's signal and the client's close are long-lived: released once the answer is in (the timeout still
    // bounds reading a streamed body).
    const call = callSignal([init.signal ?? undefined, options.signal], options.timeoutMs);
    let response: Response | undefined;
    try {
      response = await options.fetch(input, { ...init, signal: call.signal });
    } catch (error) {
      options.onCall(route, 'error');
      // The caller's abort (or close()) is an AbortError, whatever reason it was given: fetch rejects with that
      // reason, and Octokit retries any error but an AbortError. Our own timeout becomes a retryable timeout.
      if (init.signal?.aborted || options.signal?.aborted) {
        if (error instanceof Error && error.name === 'AbortError') throw error;
        throw Object.assign(new Error('the request was aborted', { cause: error }), { name: 'AbortError' });
      }
      if (call.timedOut) {
        throw new RequestTimeoutError(`no response within ${options.timeoutMs} ms`, { cause: error });
      }
      throw error;
    } finally {
      // Failed or answered: an answer whose body is still streamed keeps the timeout while it is read.
      releaseAnswered(call, response);
    }
    options.onCall(route, response.status);
    const remaining = response.headers.get('x-ratelimit-remaining');
    if (remaining !== null && remaining !== '' && Number.isFinite(Number(remaining))) {
      options.onRateLimitRemaining(Number(remaining));
    }
    return response;
  };
}
