/**
 * One error type for everything the GitHub client can fail with. `code` is stable (callers switch on it),
 * `retryable` says whether the same call may succeed later (429, rate limits, 5xx, timeouts, network, conflicts),
 * and the message never contains a token: it is built from the route template and GitHub's own message, scrubbed.
 */
import { scrubSecrets } from '../telemetry/redact.js';

export type GitHubErrorCode =
  | 'unauthorized' // 401: bad token, bad App JWT
  | 'forbidden' // 403 that is not a rate limit: missing permission
  | 'not-found' // 404
  | 'conflict' // 409: e.g. a runner name that exists
  | 'validation-failed' // 422
  | 'runner-busy' // 422 on delete: the runner is running a job
  | 'run-in-progress' // 403 on a re-run: the job's workflow run has not ended yet
  | 'rate-limited' // 429, or 403 with x-ratelimit-remaining 0 or a secondary-limit message
  | 'server-error' // 5xx
  | 'timeout' // no response within the per-attempt timeout
  | 'network' // connection refused, reset, DNS
  | 'aborted' // the caller's AbortSignal fired
  | 'http-error' // any other status
  | 'bad-response' // 2xx with a body of the wrong shape
  | 'runner-group-not-found'
  | 'installation-not-found' // the App is not installed on the scope
  | 'invalid-scope'; // e.g. a repo scope that is not owner/name

const RETRYABLE: ReadonlySet<GitHubErrorCode> = new Set([
  'rate-limited',
  'server-error',
  'timeout',
  'network',
  'conflict',
  'runner-busy',
  'run-in-progress',
]);

export interface GitHubErrorDetails {
  readonly code: GitHubErrorCode;
  readonly status?: number | null;
  /** Route template, e.g. `POST /orgs/{org}/actions/runners/generate-jitconfig`. */
  readonly route?: string | null;
  /** When GitHub said how long to wait (retry-after, x-ratelimit-reset). */
  readonly retryAfterMs?: number | null;
  readonly cause?: unknown;
}

export class GitHubError extends Error {
  override readonly name = 'GitHubError';
  readonly code: GitHubErrorCode;
  readonly status: number | null;
  readonly retryable: boolean;
  readonly route: string | null;
  readonly retryAfterMs: number | null;

  constructor(message: string, details: GitHubErrorDetails) {
    super(scrubSecrets(message), details.cause === undefined ? undefined : { cause: details.cause });
    this.code = details.code;
    this.status = details.status ?? null;
    this.retryable = RETRYABLE.has(details.code);
    this.route = details.route ?? null;
    this.retryAfterMs = details.retryAfterMs ?? null;
  }
}

/** Thrown by the transport when one attempt exceeds its timeout; surfaces as the cause of a `timeout` error. */
export class RequestTimeoutError extends Error {
  override readonly name = 'RequestTimeoutError';
}

interface RequestErrorLike {
  readonly name: string;
  readonly message: string;
  readonly status?: number;
  readonly cause?: unknown;
  readonly response?: { readonly headers?: Record<string, string | undefined>; readonly data?: unknown };
}

function isRateLimit(status: number, err: RequestErrorLike): boolean {
  if (status === 429) return true;
  if (status !== 403) return false;
  return (
    err.response?.headers?.['x-ratelimit-remaining'] === '0' ||
    /\bsecondary rate\b|rate limit/i.test(err.message)
  );
}

function retryAfterMs(err: RequestErrorLike, now: number): number | null {
  const headers = err.response?.headers ?? {};
  const retryAfter = Number(headers['retry-after']);
  if (Number.isFinite(retryAfter) && retryAfter >= 0 && headers['retry-after'] !== undefined)
    return retryAfter * 1000;
  const reset = Number(headers['x-ratelimit-reset']);
  if (headers['x-ratelimit-remaining'] === '0' && Number.isFinite(reset))
    return Math.max(0, reset * 1000 - now);
  return null;
}

function codeFor(status: number, err: RequestErrorLike, method: string): GitHubErrorCode {
  if (status === 401) return 'unauthorized';
  if (isRateLimit(status, err)) return 'rate-limited';
  if (status === 403 && method === 'POST' && /already running/i.test(err.message)) return 'run-in-progress';
  if (status === 403) return 'forbidden';
  if (status === 404) return 'not-found';
  if (status === 409) return 'conflict';
  if (status === 422)
    return method === 'DELETE' && /busy|running a job/i.test(err.message)
      ? 'runner-busy'
      : 'validation-failed';
  if (status >= 500) return 'server-error';
  return 'http-error';
}

/** Turns whatever an Octokit call threw into a GitHubError. */
export function toGitHubError(error: unknown, route: string, now: number = Date.now()): GitHubError {
  if (error instanceof GitHubError) return error;
  const err = (error ?? {}) as RequestErrorLike;
  const method = route.split(' ')[0] ?? '';
  if (err.name === 'AbortError') {
    return new GitHubError(`GitHub ${route}: aborted`, { code: 'aborted', route, cause: error });
  }
  const status = typeof err.status === 'number' ? err.status : null;
  // @octokit/request reports a failed fetch (no response at all) as status 500 without a response.
  if (status === null || (status === 500 && err.response === undefined)) {
    const timedOut = err.cause instanceof RequestTimeoutError;
    return new GitHubError(
      `GitHub ${route}: ${timedOut ? 'timed out' : 'network error'}: ${err.message ?? String(error)}`,
      {
        code: timedOut ? 'timeout' : 'network',
        route,
        cause: error,
      },
    );
  }
  const code = codeFor(status, err, method);
  return new GitHubError(`GitHub ${route}: ${status} ${err.message}`, {
    code,
    status,
    route,
    retryAfterMs: code === 'rate-limited' ? retryAfterMs(err, now) : null,
    cause: error,
  });
}
