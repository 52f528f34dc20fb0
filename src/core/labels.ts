/**
 * Routing: a job goes to a scale set that GitHub would let take it and whose labels cover the job's.
 * - Scope first, as GitHub enforces it: an organization's runners serve only that organization's repositories, a
 *   repository's runners only that repository (owner and name compared case-insensitively, as GitHub does). An
 *   enterprise's runners may serve any organization of the enterprise; which organizations belong to it is not in a
 *   `workflow_job` payload, so enterprise scale sets are candidates for every job.
 * - Labels: the scale set's labels plus the implicit `self-hosted` contain every label of the job, compared
 *   case-insensitively.
 * Several matches: highest priority, then fewest extra labels, then name. No match: unroutable (null), which the
 * caller records and shows, never drops.
 */
import type { ScaleSetConfig, Scope } from './fleet-config.js';

export const IMPLICIT_LABEL = 'self-hosted';

/** Lower-cased, trimmed, de-duplicated, sorted: the canonical form used for matching and as the cache key. */
export function normalizeLabels(labels: readonly string[]): string[] {
  const set = new Set<string>();
  for (const label of labels) {
    const l = label.trim().toLowerCase();
    if (l.length > 0) set.add(l);
  }
  return [...set].sort();
}

/** What routing reads of a job. */
export interface RoutableJob {
  readonly labels: readonly string[];
  /** Repository owner (organization or user login). */
  readonly owner: string;
  /** Repository name, without the owner. */
  readonly repo: string;
}

interface Candidate {
  readonly name: string;
  readonly priority: number;
  readonly labels: ReadonlySet<string>;
  /** Lower-cased owner (org scope) or owner/name (repo scope); null for enterprise scope (any owner). */
  readonly owner: string | null;
  readonly repo: string | null;
}

/** Bounds memory when jobs bring many distinct label sets; routing stays correct after a clear. */
const DEFAULT_CACHE_LIMIT = 10_000;

function scopeOf(scope: Scope): { owner: string | null; repo: string | null } {
  if ('org' in scope) return { owner: scope.org.toLowerCase(), repo: null };
  if ('repo' in scope) return { owner: null, repo: scope.repo.toLowerCase() };
  return { owner: null, repo: null };
}

export class LabelRouter {
  readonly #candidates: readonly Candidate[];
  readonly #cache = new Map<string, string | null>();
  readonly #cacheLimit: number;

  constructor(
    scaleSets: readonly Pick<ScaleSetConfig, 'name' | 'labels' | 'priority' | 'scope'>[],
    cacheLimit = DEFAULT_CACHE_LIMIT,
  ) {
    // Sorted once in preference order, so the first match wins: priority desc, size asc (fewest extra labels: every
    // match contains all job labels, so fewer labels means fewer extras), then name.
    this.#candidates = scaleSets
      .map((s) => ({
        name: s.name,
        priority: s.priority,
        labels: new Set([...normalizeLabels(s.labels), IMPLICIT_LABEL]),
        ...scopeOf(s.scope),
      }))
      .sort(
        (a, b) =>
          b.priority - a.priority ||
          a.labels.size - b.labels.size ||
          (a.name < b.name ? -1 : a.name > b.name ? 1 : 0),
      );
    this.#cacheLimit = cacheLimit;
  }

  /** The scale set that serves this job, or null when none does. */
  route(job: RoutableJob): string | null {
    const normalized = normalizeLabels(job.labels);
    const owner = job.owner.toLowerCase();
    const repo = `${owner}/${job.repo.toLowerCase()}`;
    const key = `${repo}\n${normalized.join('\n')}`;
    const cached = this.#cache.get(key);
    if (cached !== undefined) return cached;
    let result: string | null = null;
    for (const c of this.#candidates) {
      if (inScope(c, owner, repo) && covers(c.labels, normalized)) {
        result = c.name;
        break;
      }
    }
    if (this.#cache.size >= this.#cacheLimit) this.#cache.clear();
    this.#cache.set(key, result);
    return result;
  }

  /** Every scale set that would serve the job, in preference order (for diagnostics and docs). */
  matches(job: RoutableJob): string[] {
    const normalized = normalizeLabels(job.labels);
    const owner = job.owner.toLowerCase();
    const repo = `${owner}/${job.repo.toLowerCase()}`;
    return this.#candidates
      .filter((c) => inScope(c, owner, repo) && covers(c.labels, normalized))
      .map((c) => c.name);
  }
}

function inScope(c: Candidate, owner: string, repo: string): boolean {
  if (c.owner !== null) return c.owner === owner;
  if (c.repo !== null) return c.repo === repo;
  return true;
}

function covers(have: ReadonlySet<string>, want: readonly string[]): boolean {
  for (const l of want) if (!have.has(l)) return false;
  return true;
}
