/**
 * The GitHub half of `runner-fleet doctor`, and the check `start` makes before anything else: the credentials
 * authenticate, a GitHub App holds the permissions each scope needs and subscribes to `workflow_job` (the App and
 * each installation), and (doctor only) every scope's runners can be listed (the call the controller makes on every
 * resync). Each failure names what is missing and how to fix it.
 *
 * Messages carry GitHub's status and message, never a credential (describeRequestError).
 */
import type { Logger } from 'pino';
import type { FleetConfig, Scope } from '../core/fleet-config.js';
import type { FetchLike } from '../github/index.js';
import { createGitHubClient, scopeKey } from '../github/index.js';
import { appOctokit, describeRequestError as failure, tokenOctokit } from '../github/app-octokit.js';

export interface CheckLine {
  readonly ok: boolean;
  readonly text: string;
  /** How to fix a failed check. */
  readonly fix?: string;
  /** The check could not be made (network, timeout, 5xx, rate limit): nothing is known to be wrong. */
  readonly unchecked?: boolean;
}

type Level = 'read' | 'write' | 'admin';
const RANK: Record<string, number> = { read: 1, write: 2, admin: 3 };

/** What a GitHub App installation must grant for runners of each scope kind (docs/security.md, GitHub permissions). */
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

/** Webhook events the App must subscribe to: the controller learns of queued jobs from `workflow_job`. */
export const APP_EVENTS: readonly string[] = ['workflow_job'];

/** Where each permission is in the App's settings page (Permissions & events). */
const PERMISSION_SETTINGS: Readonly<Record<string, string>> = {
  organization_self_hosted_runners: 'Organization permissions > Self-hosted runners',
  administration: 'Repository permissions > Administration',
  actions: 'Repository permissions > Actions',
};

const LEVEL_NAMES: Readonly<Record<Level, string>> = {
  read: 'Read-only',
  write: 'Read and write',
  admin: 'Admin',
};

interface AppPage {
  readonly slug: string;
  readonly ownerLogin?: string;
  readonly ownerType?: string;
}

/** The App's "Permissions & events" settings page. */
function appSettingsUrl(webUrl: string, app: AppPage): string {
  const base = webUrl.replace(/\/+$/, '');
  return app.ownerType === 'Organization' && app.ownerLogin
    ? `${base}/organizations/${app.ownerLogin}/settings/apps/${app.slug}/permissions`
    : `${base}/settings/apps/${app.slug}/permissions`;
}

/** Where an installation's owner reviews and accepts the App's new permissions and events. */
function installationSettingsUrl(
  webUrl: string,
  account: { login?: string; type?: string },
  id: number,
): string {
  const base = webUrl.replace(/\/+$/, '');
  return account.type === 'Organization' && account.login
    ? `${base}/organizations/${account.login}/settings/installations/${id}`
    : `${base}/settings/installations/${id}`;
}

/** GitHub gave no definite answer: a network failure, a timeout, a 5xx or a rate limit. */
function transient(error: unknown): boolean {
  const status = (error as { status?: unknown }).status;
  if (typeof status !== 'number' || status <= 0) return true;
  if (status >= 500 || status === 429) return true;
  const headers = (error as { response?: { headers?: Record<string, string> } }).response?.headers;
  return status === 403 && headers?.['x-ratelimit-remaining'] === '0';
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
  /** Told each scope's App installation id as the checks read it (start hands them to the controller's client). */
  readonly onInstallation?: (scope: Scope, id: number) => void;
}

async function appChecks(
  config: FleetConfig,
  app: { readonly id: number },
  options: GitHubCheckOptions,
): Promise<{ lines: CheckLine[]; authenticated: boolean }> {
  const octokit = appOctokit(config.github, options.fetch, options.signal)!;
  const lines: CheckLine[] = [];
  let page: AppPage;
  try {
    const { data } = await octokit.request('GET /app');
    const owner = (data?.owner ?? {}) as { login?: string; type?: string };
    page = {
      slug: data?.slug ?? String(app.id),
      ...(owner.login !== undefined ? { ownerLogin: owner.login } : {}),
      ...(owner.type !== undefined ? { ownerType: owner.type } : {}),
    };
    lines.push({ ok: true, text: `GitHub App ${data?.slug ?? app.id} (id ${app.id}) authenticates` });
    const events: readonly string[] = data?.events ?? [];
    const missing = APP_EVENTS.filter((e) => !events.includes(e));
    if (missing.length > 0) {
      lines.push({
        ok: false,
        text: `GitHub App ${page.slug} does not subscribe to the ${missing.join(', ')} event`,
        fix:
          `in the App's settings (${appSettingsUrl(config.github.url, page)}), Subscribe to events: tick ` +
          `"Workflow job", save, then accept the change in each installation`,
      });
    }
  } catch (error) {
    lines.push({
      ok: false,
      text: `GitHub App id ${app.id} does not authenticate (GET /app: ${failure(error)}); check the App id and private key`,
      ...(transient(error) ? { unchecked: true } : {}),
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
      if (typeof data.id === 'number') options.onInstallation?.(scope, data.id);
      const needed = neededPermissions(config, scope);
      const granted = data.permissions as Record<string, string>;
      const missing = missingPermissions(granted, needed);
      const wanted = Object.entries(needed)
        .map(([n, l]) => `${n}: ${l}`)
        .join(', ');
      const account = (data.account ?? {}) as { login?: string; type?: string };
      const accept = installationSettingsUrl(config.github.url, account, data.id);
      if (missing.length === 0) {
        lines.push({ ok: true, text: `${describe(scope)}: App installation ${data.id} grants ${wanted}` });
      } else {
        const settings = Object.entries(needed)
          .filter(([name, level]) => (RANK[granted?.[name] ?? ''] ?? 0) < RANK[level]!)
          .map(([name, level]) => `${PERMISSION_SETTINGS[name] ?? name}: ${LEVEL_NAMES[level]}`)
          .join('; ');
        lines.push({
          ok: false,
          text: `${describe(scope)}: App installation ${data.id} lacks permissions (${missing.join('; ')})`,
          fix:
            `in the App's settings (${appSettingsUrl(config.github.url, page)}) set ${settings}, save, then ` +
            `accept the new permissions at ${accept}`,
        });
      }
      const events: readonly string[] = data.events ?? [];
      const missingEvents = APP_EVENTS.filter((e) => !events.includes(e));
      if (missingEvents.length > 0) {
        lines.push({
          ok: false,
          text: `${describe(scope)}: App installation ${data.id} does not receive the ${missingEvents.join(', ')} event`,
          fix:
            `subscribe the App to "Workflow job" (${appSettingsUrl(config.github.url, page)}) and accept the ` +
            `change at ${accept}`,
        });
      }
    } catch (error) {
      lines.push({
        ok: false,
        text: `${describe(scope)}: the App is not installed there or cannot be seen (${failure(error)})`,
        ...(transient(error)
          ? { unchecked: true }
          : {
              fix:
                `install the App on ${'org' in scope ? `the organization ${scope.org}` : `the repository ${scope.repo}`} ` +
                `(${config.github.url.replace(/\/+$/, '')}/apps/${page.slug}/installations/new)`,
            }),
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
      lines: [
        {
          ok: false,
          text: `the personal access token does not authenticate (${failure(error)})`,
          ...(transient(error) ? { unchecked: true } : {}),
        },
      ],
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
        fix: 'create a classic personal access token with the manage_runners:enterprise scope',
      });
    }
  }
  return { lines, authenticated: true };
}

/**
 * What `start` checks before anything else: authentication, and an App's permissions and events per scope. One line
 * per check, in order.
 */
export async function githubAccessChecks(
  config: FleetConfig,
  options: GitHubCheckOptions,
): Promise<CheckLine[]> {
  const auth = config.github.auth;
  if ('app' in auth) {
    // Each installation says all start needs (it authenticates the App, and carries the permissions and events the
    // installation accepted); the App's own page is read only to explain a failure, with the full checks.
    const fast = await installationsGrantAll(config, options);
    if (fast !== null) return fast;
  }
  const { lines } =
    'app' in auth ? await appChecks(config, auth.app, options) : await tokenChecks(config, options);
  return lines;
}

/**
 * One call per scope: every installation grants the permissions and receives the events its scope needs. Null when
 * anything is missing or could not be read (or there is no scope to read): the full checks then say what and why.
 */
async function installationsGrantAll(
  config: FleetConfig,
  options: GitHubCheckOptions,
): Promise<CheckLine[] | null> {
  const scopes = uniqueScopes(config);
  // (the configuration refuses enterprise scopes with App authentication)
  if (scopes.length === 0 || scopes.some((s) => 'enterprise' in s)) return null;
  const octokit = appOctokit(config.github, options.fetch, options.signal)!;
  const lines: CheckLine[] = [];
  const found: [Scope, number][] = [];
  for (const scope of scopes) {
    if ('enterprise' in scope) return null;
    let data: { id?: unknown; permissions?: unknown; events?: unknown };
    try {
      ({ data } =
        'org' in scope
          ? await octokit.request('GET /orgs/{org}/installation', { org: scope.org })
          : await octokit.request('GET /repos/{owner}/{repo}/installation', {
              owner: scope.repo.split('/')[0] ?? '',
              repo: scope.repo.split('/')[1] ?? '',
            }));
    } catch {
      return null;
    }
    const needed = neededPermissions(config, scope);
    const events = Array.isArray(data.events) ? (data.events as unknown[]) : [];
    if (
      typeof data.id !== 'number' ||
      missingPermissions(data.permissions as Record<string, string> | undefined, needed).length > 0 ||
      APP_EVENTS.some((e) => !events.includes(e))
    ) {
      return null;
    }
    const wanted = Object.entries(needed)
      .map(([n, l]) => `${n}: ${l}`)
      .join(', ');
    lines.push({ ok: true, text: `${describe(scope)}: App installation ${data.id} grants ${wanted}` });
    found.push([scope, data.id]);
  }
  for (const [scope, id] of found) options.onInstallation?.(scope, id);
  return lines;
}

/**
 * Why `start` must not run with these check results (each failure with its fix), or null. Checks GitHub could not
 * answer (network, 5xx) are no reason to refuse: the controller retries GitHub like any call.
 */
export function githubRefusal(lines: readonly CheckLine[]): string | null {
  const failed = lines.filter((l) => !l.ok && !l.unchecked);
  if (failed.length === 0) return null;
  return [
    'the GitHub credentials cannot run this fleet:',
    ...failed.flatMap((l) => [`  - ${l.text}`, ...(l.fix ? [`    fix: ${l.fix}`] : [])]),
    '`runner-fleet doctor --config <file>` runs these checks (and more) without starting.',
  ].join('\n');
}

/** One line per check, in order: authentication, permissions and events per scope, runners listable per scope. */
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
