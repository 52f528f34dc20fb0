import { describe, expect, it } from 'vitest';
import { GitHubError, RequestTimeoutError, toGitHubError } from './errors.js';

const ROUTE = 'GET /orgs/{org}/actions/runners';
const request = {
  method: 'GET' as const,
  url: 'https://api.github.com/orgs/a/actions/runners',
  headers: { authorization: 'token ghp_abcdefghijklmnopqrstuvwxyz0123456789' },
};

/** What @octokit/request throws (its RequestError): status, request, response, and a cause when fetch failed. */
class RequestError extends Error {
  override readonly name = 'HttpError';
  readonly status: number;
  readonly request: typeof request;
  readonly response?: { status: number; url: string; headers: Record<string, string>; data: unknown };

  constructor(
    message: string,
    status: number,
    options: { request: typeof request; response?: RequestError['response'] },
  ) {
    super(message);
    this.status = status;
    this.request = options.request;
    if (options.response) this.response = options.response;
  }
}

function httpError(status: number, message = 'x', headers: Record<string, string> = {}): RequestError {
  return new RequestError(message, status, {
    request,
    response: { status, url: request.url, headers, data: { message } },
  });
}

describe('toGitHubError', () => {
  it.each<[number, string, Record<string, string>, string, boolean]>([
    [401, 'Bad credentials', {}, 'unauthorized', false],
    [403, 'Resource not accessible by integration', {}, 'forbidden', false],
    [403, 'You have exceeded a secondary rate limit', { 'retry-after': '30' }, 'rate-limited', true],
    [
      403,
      'API rate limit exceeded',
      { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': '2000' },
      'rate-limited',
      true,
    ],
    [404, 'Not Found', {}, 'not-found', false],
    [409, 'Already exists', {}, 'conflict', true],
    [422, 'Validation Failed', {}, 'validation-failed', false],
    [429, 'Too many', { 'retry-after': '2' }, 'rate-limited', true],
    [500, 'Server Error', {}, 'server-error', true],
    [503, 'Unavailable', {}, 'server-error', true],
    [418, 'teapot', {}, 'http-error', false],
  ])('%i %s -> %s', (status, message, headers, code, retryable) => {
    const e = toGitHubError(httpError(status, message, headers), ROUTE, 1_000_000);
    expect(e).toBeInstanceOf(GitHubError);
    expect(e).toMatchObject({ code, retryable, status, route: ROUTE });
    expect(e.cause).toBeInstanceOf(RequestError);
  });

  it('reads how long to wait from retry-after, or from x-ratelimit-reset', () => {
    expect(toGitHubError(httpError(429, 'x', { 'retry-after': '2' }), ROUTE).retryAfterMs).toBe(2000);
    const reset = toGitHubError(
      httpError(403, 'API rate limit exceeded', {
        'x-ratelimit-remaining': '0',
        'x-ratelimit-reset': '2000',
      }),
      ROUTE,
      1_500_000,
    );
    expect(reset.retryAfterMs).toBe(500_000);
  });

  it('tells a busy runner from other validation failures on delete', () => {
    const e = toGitHubError(
      httpError(422, 'Bad request - Runner "r1" is still running a job"'),
      'DELETE /orgs/{org}/actions/runners/{runner_id}',
    );
    expect(e).toMatchObject({ code: 'runner-busy', retryable: true });
  });

  it('classifies missing responses: timeout, network, abort', () => {
    const timeout = new RequestError('no response within 100 ms', 500, { request });
    timeout.cause = new RequestTimeoutError('no response within 100 ms');
    expect(toGitHubError(timeout, ROUTE)).toMatchObject({ code: 'timeout', retryable: true, status: null });
    expect(toGitHubError(new RequestError('ECONNREFUSED', 500, { request }), ROUTE)).toMatchObject({
      code: 'network',
      retryable: true,
    });
    const abort = Object.assign(new DOMException('aborted', 'AbortError'), { status: 500 });
    expect(toGitHubError(abort, ROUTE)).toMatchObject({ code: 'aborted', retryable: false });
  });

  it('never carries a token in its message', () => {
    const e = toGitHubError(httpError(500, 'failed for ghs_16C7e42F292c6912E7710c838347Ae178B4a'), ROUTE);
    expect(e.message).not.toContain('ghs_16C7e42F292c6912E7710c838347Ae178B4a');
    expect(e.message).toContain('[REDACTED]');
  });
});
