/**
 * The GitHub half of `runner-fleet doctor`: the credentials authenticate, a GitHub App holds the permissions each
 * scope needs, and every scope's runners can be listed (the call the controller makes on every resync).
 *
 * Messages carry GitHub's status and message, never a credential (describeRequestError).
 */
import type { Logger } from 'pino';
import type { FleetConfig, Scope } from '../config/types.js';
import type { FetchLike } from '../github/index.js';
import { createGitHubClient, scopeKey } from '../github/index.js';
import { appOctokit, describeRequestError as failure, tokenOctokit } from '../github/app-octokit.js';

export interface CheckLine {
  readonly ok: boolean;
  readonly text: string;
}

type Level = 'read' | 'write' | 'admin';
const RANK: Record<string, number> = { read: 1, write: 2, admin: 3 };

/** What a GitHub App installation must grant for runners of each scope kind (DESIGN.md section 9). */
export const APP_PERMISSIONS: Readonly<Record<'org' | 'repo', Readonly<Record<string, Level>>>> = {
  org: { organization_self_hosted_runners: 'write', actions: 'read' },
  repo: { administration: 'write', actions: 'read' },
};

/**
 * What a scope's installation must grant: APP_PERMISSIONS, and `actions: write` when a scale set of the scope re-runs
 * interrupted jobs (POST /repos/{owner}/{repo}/actions/jobs/{job_id}/rerun).
 */
export function neededPermissions(
  config: Pick<FleetConfig, 'scaleSets'>,
  scope: Scope,
): Readonly<Record<string, Level>> {
  const base = APP_PERMISSIONS['org' in scope ? 'org' : 'repo'];
  const key = scopeKey(scope);
  const reruns = config.scaleSets.some((s) => s.rerunInterruptedJobs === true && scopeKey(s.scope) === key);
  return reruns ? { ...base, actions: 'write' } : base;
}

function describe(scope: Scope): string {
  if ('org' in scope) return `organization ${scope.org}`;
  if ('repo' in scope) return `repository ${scope.repo}`;
  return `enterprise ${scope.enterprise}`;
}

/** Missing or weaker-than-needed permissions, as `name: need write, has read`. */
export function missingPermissions(
  granted: Readonly<Record<string, string>> | undefined,
  needed: Readonly<Record<string, Level>>,
): string[] {
  const out: string[] = [];
  for (const [name, level] of Object.entries(needed)) {
    const has = granted?.[name];
    if ((RANK[has ?? ''] ?? 0) < RANK[level]!) out.push(`${name}: needs ${level}, has ${has ?? 'none'}`);
  }
  return out;
}

function uniqueScopes(config: Pick<FleetConfig, 'scaleSets'>): Scope[] {
  const seen = new Map<string, Scope>();
  for (const s of config.scaleSets) if (!seen.has(scopeKey(s.scope))) seen.set(scopeKey(s.scope), s.scope);
  return [...seen.values()];
}

export interface GitHubCheckOptions {
  readonly fetch?: FetchLike;
  readonly logger: Logger;
  readonly signal?: AbortSignal;
}

async function appChecks(
  config: FleetConfig,
  app: { readonly id: number },
  options: GitHubCheckOptions,
): Promise<{ lines: CheckLine[]; authenticated: boolean }> {
  const octokit = appOctokit(config.github, options.fetch, options.signal)!;
  const lines: CheckLine[] = [];
  try {
    const { data } = await octokit.request('GET /app');
    lines.push({ ok: true, text: `GitHub App ${data?.slug ?? app.id} (id ${app.id}) authenticates` });
  } catch (error) {
    lines.push({
      ok: false,
      text: `GitHub App id ${app.id} does not authenticate (GET /app: ${failure(error)}); check the App id and private key`,
    });
    return { lines, authenticated: false };
  }
  for (const scope of uniqueScopes(config)) {
    // The configuration refuses enterprise scopes with App authentication (GitHub Apps cannot manage them).
    if ('enterprise' in scope) continue;
    try {
      const { data } =
        'org' in scope
          ? await octokit.request('GET /orgs/{org}/installation', { org: scope.org })
          : await octokit.request('GET /repos/{owner}/{repo}/installation', {
              owner: scope.repo.split('/')[0] ?? '',
              repo: scope.repo.split('/')[1] ?? '',
            });
      const needed = neededPermissions(config, scope);
      const missing = missingPermissions(data.permissions as Record<string, string>, needed);
      const wanted = Object.entries(needed)
        .map(([n, l]) => `${n}: ${l}`)
        .join(', ');
      lines.push(
        missing.length === 0
          ? { ok: true, text: `${describe(scope)}: App installation ${data.id} grants ${wanted}` }
          : {
              ok: false,
              text: `${describe(scope)}: App installation ${data.id} lacks permissions (${missing.join('; ')})`,
            },
      );
    } catch (error) {
      lines.push({
        ok: false,
        text: `${describe(scope)}: the App is not installed there or cannot be seen (${failure(error)})`,
      });
    }
  }
  return { lines, authenticated: true };
}

const ENTERPRISE_SCOPES = ['manage_runners:enterprise', 'admin:enterprise'];

async function tokenChecks(
  config: FleetConfig,
  options: GitHubCheckOptions,
): Promise<{ lines: CheckLine[]; authenticated: boolean }> {
  const octokit = tokenOctokit(config.github, options.fetch, options.signal)!;
  let scopes: string[] | undefined;
  try {
    // Free of rate limit, and answers 401 for a presented but invalid token.
    const response = await octokit.request('GET /rate_limit');
    const header = response.headers['x-oauth-scopes'];
    if (typeof header === 'string') scopes = header.split(',').map((s) => s.trim());
  } catch (error) {
    return {
      lines: [{ ok: false, text: `the personal access token does not authenticate (${failure(error)})` }],
      authenticated: false,
    };
  }
  const lines: CheckLine[] = [
    {
      ok: true,
      text: `personal access token authenticates${scopes ? ` (classic, scopes: ${scopes.join(', ') || 'none'})` : ''}`,
    },
  ];
  for (const scope of uniqueScopes(config)) {
    if (!('enterprise' in scope) || scopes === undefined) continue;
    if (!scopes.some((s) => ENTERPRISE_SCOPES.includes(s))) {
      lines.push({
        ok: false,
        text: `${describe(scope)}: the token needs the manage_runners:enterprise scope`,
      });
    }
  }
  return { lines, authenticated: true };
}

/** One line per check, in order: authentication, permissions per scope, runners listable per scope. */
export async function githubChecks(config: FleetConfig, options: GitHubCheckOptions): Promise<CheckLine[]> {
  const auth = config.github.auth;
  const { lines, authenticated } =
    'app' in auth ? await appChecks(config, auth.app, options) : await tokenChecks(config, options);
  if (!authenticated) return lines;
  const github = createGitHubClient({
    config: config.github,
    logger: options.logger,
    retries: 0,
    maxRateLimitRetries: 0,
    timeoutMs: 15_000,
    ...(options.fetch ? { fetch: options.fetch } : {}),
  });
  for (const scope of uniqueScopes(config)) {
    try {
      const runners = await github.listRunners(scope, '', options.signal);
      lines.push({
        ok: true,
        text: `${describe(scope)}: runners can be listed (${runners.length} registered)`,
      });
    } catch (error) {
      const e = error as { status?: number | null; code?: string; message?: string };
      lines.push({
        ok: false,
        text: `${describe(scope)}: listing runners failed (${e.status ?? e.code ?? 'error'}: ${e.message ?? ''})`,
      });
    }
  }
  return lines;
}
