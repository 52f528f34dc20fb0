/** Scope helpers: the REST path prefix, a cache key, and the web URL runners register against. */
import type { Scope } from '../core/fleet-config.js';
import { GitHubError } from './errors.js';

export interface ScopeRoute {
  /** Route template prefix, e.g. `/orgs/{org}`. */
  readonly base: '/orgs/{org}' | '/repos/{owner}/{repo}' | '/enterprises/{enterprise}';
  readonly params: Readonly<Record<string, string>>;
  readonly kind: 'org' | 'repo' | 'enterprise';
}

export function splitRepo(repo: string): { owner: string; repo: string } {
  const parts = repo.split('/');
  if (parts.length !== 2 || !parts[0] || !parts[1]) {
    throw new GitHubError(`repository scope must be owner/name, got "${repo}"`, { code: 'invalid-scope' });
  }
  return { owner: parts[0], repo: parts[1] };
}

export function scopeRoute(scope: Scope): ScopeRoute {
  if ('org' in scope) return { base: '/orgs/{org}', params: { org: scope.org }, kind: 'org' };
  if ('repo' in scope) return { base: '/repos/{owner}/{repo}', params: splitRepo(scope.repo), kind: 'repo' };
  return { base: '/enterprises/{enterprise}', params: { enterprise: scope.enterprise }, kind: 'enterprise' };
}

export function scopeKey(scope: Scope): string {
  if ('org' in scope) return `org:${scope.org.toLowerCase()}`;
  if ('repo' in scope) return `repo:${scope.repo.toLowerCase()}`;
  return `enterprise:${scope.enterprise.toLowerCase()}`;
}

/** https://github.com/ORG, https://github.com/OWNER/REPO, https://github.com/enterprises/E (GHES: its own URL). */
export function registrationUrl(webUrl: string, scope: Scope): string {
  const base = webUrl.replace(/\/+$/, '');
  if ('org' in scope) return `${base}/${scope.org}`;
  if ('repo' in scope) {
    const { owner, repo } = splitRepo(scope.repo);
    return `${base}/${owner}/${repo}`;
  }
  return `${base}/enterprises/${scope.enterprise}`;
}
