/**
 * Direct GitHub REST clients for `doctor`'s permission checks, which the controller's GitHub client does not cover:
 * App-level calls (GET /app, an installation's permissions) and a token's own check. Built here, in the CLI, like
 * every other client. The controller itself (webhook deliveries included) uses only its GitHub client.
 */
import { createAppAuth } from '@octokit/auth-app';
import { Octokit } from '@octokit/core';
import type { GitHubConfig } from '../core/fleet-config.js';
import type { FetchLike } from '../github/index.js';

function requestOptions(fetch: FetchLike | undefined, signal: AbortSignal | undefined) {
  return { ...(fetch ? { fetch } : {}), ...(signal ? { signal } : {}) };
}

/** An App-authenticated (JWT) client, or null when the fleet authenticates with a token. */
export function appOctokit(github: GitHubConfig, fetch?: FetchLike, signal?: AbortSignal): Octokit | null {
  const auth = github.auth;
  if (!('app' in auth)) return null;
  return new Octokit({
    baseUrl: github.apiUrl,
    authStrategy: createAppAuth,
    auth: { appId: auth.app.id, privateKey: auth.app.privateKey },
    request: requestOptions(fetch, signal),
  });
}

/** A client with the fleet's personal access token, or null for App authentication. */
export function tokenOctokit(github: GitHubConfig, fetch?: FetchLike, signal?: AbortSignal): Octokit | null {
  const auth = github.auth;
  if (!('token' in auth)) return null;
  return new Octokit({ baseUrl: github.apiUrl, auth: auth.token, request: requestOptions(fetch, signal) });
}

/** status and GitHub's message of a failed octokit request; nothing else of it (the request holds credentials). */
export function describeRequestError(error: unknown): string {
  const e = error as { status?: unknown; response?: { data?: unknown } };
  const data = e.response?.data as { message?: unknown } | undefined;
  const message = typeof data?.message === 'string' ? data.message : undefined;
  if (typeof e.status === 'number' && e.status > 0) return `${e.status}${message ? ` ${message}` : ''}`;
  const cause = (error as { cause?: { code?: unknown } }).cause;
  return typeof cause?.code === 'string' ? cause.code : (error as Error).name || 'request failed';
}
