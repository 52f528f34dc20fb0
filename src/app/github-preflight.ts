/**
 * What `start` checks on GitHub before anything else: the credentials authenticate, and a GitHub App holds the
 * permissions and the `workflow_job` subscription the fleet's scopes need (the same checks as `doctor`). A missing
 * one refuses the start with what is missing and how to fix it; a check GitHub could not answer (network, timeout,
 * 5xx) is only a warning, since the controller retries GitHub like any call. Each call is first retried a few times
 * on a 5xx, a 429 or a network failure, so one bad answer does not turn into a warning.
 */
import { pino } from 'pino';
import type { FleetConfig } from '../core/fleet-config.js';
import type { FetchLike } from '../github/index.js';
import { scopeKey } from '../github/index.js';
import { githubAccessChecks, githubRefusal } from './doctor-github.js';
import { githubFetch } from './github-fetch.js';

export interface GitHubPreflight {
  /** Why the controller must not start, or null. */
  readonly refusal: string | null;
  /** Checks that could not be made. */
  readonly warnings: readonly string[];
  /**
   * The App installation id of each scope the checks read (by `scopeKey`): the controller's client starts with them
   * instead of asking GitHub the same question again.
   */
  readonly installationIds: ReadonlyMap<string, number>;
}

export interface GitHubPreflightOptions {
  /** The command's environment (HTTPS_PROXY, NO_PROXY). */
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly fetch?: FetchLike;
  /** The whole check gives up after this long (then a warning); default 20 s. */
  readonly timeoutMs?: number;
}

/** Tries of one call before its failure counts (a 5xx, a 429 or no answer). */
const TRIES = 5;

/** `fetch` that tries a call again, 100 ms doubling, while GitHub answers 5xx or 429 or not at all. */
export function retryingFetch(fetch: FetchLike, tries = TRIES): FetchLike {
  return async (input, init) => {
    for (let attempt = 1; ; attempt++) {
      const last = attempt >= tries || init?.signal?.aborted === true;
      try {
        const response = await fetch(input, init);
        if (last || (response.status < 500 && response.status !== 429)) return response;
        await response.body?.cancel();
      } catch (error) {
        if (last) throw error;
      }
      await new Promise((resolve) => setTimeout(resolve, 100 * 2 ** (attempt - 1)));
    }
  };
}

export async function githubPreflight(
  config: FleetConfig,
  options: GitHubPreflightOptions,
): Promise<GitHubPreflight> {
  const transport = options.fetch ? undefined : githubFetch(config.github, options.env);
  const installationIds = new Map<string, number>();
  try {
    const lines = await githubAccessChecks(config, {
      logger: pino({ level: 'silent' }),
      signal: AbortSignal.timeout(options.timeoutMs ?? 20_000),
      fetch: retryingFetch(options.fetch ?? transport!.fetch),
      onInstallation: (scope, id) => installationIds.set(scopeKey(scope), id),
    });
    return {
      installationIds,
      refusal: githubRefusal(lines),
      warnings: lines
        .filter((l) => l.unchecked)
        .map((l) => `could not check on GitHub, starting anyway: ${l.text}`),
    };
  } finally {
    transport?.close();
  }
}
