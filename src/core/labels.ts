/**
 * Label routing (DESIGN.md section 2): a job goes to a scale set whose labels, plus the implicit `self-hosted`,
 * contain every label of the job, compared case-insensitively. Several matches: highest priority, then fewest extra
 * labels, then name. No match: unroutable (null), which the caller records and shows, never drops.
 */
import type { ScaleSetConfig } from '../config/types.js';

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

interface Candidate {
  readonly name: string;
  readonly priority: number;
  readonly labels: ReadonlySet<string>;
}

/** Bounds memory when jobs bring many distinct label sets; routing stays correct after a clear. */
const DEFAULT_CACHE_LIMIT = 10_000;

export class LabelRouter {
  readonly #candidates: readonly Candidate[];
  readonly #cache = new Map<string, string | null>();
  readonly #cacheLimit: number;

  constructor(
    scaleSets: readonly Pick<ScaleSetConfig, 'name' | 'labels' | 'priority'>[],
    cacheLimit = DEFAULT_CACHE_LIMIT,
  ) {
    // Sorted once in preference order, so the first match wins: priority desc, size asc (fewest extra labels: every
    // match contains all job labels, so fewer labels means fewer extras), then name.
    this.#candidates = scaleSets
      .map((s) => ({
        name: s.name,
        priority: s.priority,
        labels: new Set([...normalizeLabels(s.labels), IMPLICIT_LABEL]),
      }))
      .sort(
        (a, b) =>
          b.priority - a.priority ||
          a.labels.size - b.labels.size ||
          (a.name < b.name ? -1 : a.name > b.name ? 1 : 0),
      );
    this.#cacheLimit = cacheLimit;
  }

  /** The scale set that serves a job with these labels, or null when none does. */
  route(jobLabels: readonly string[]): string | null {
    const normalized = normalizeLabels(jobLabels);
    const key = normalized.join('\n');
    const cached = this.#cache.get(key);
    if (cached !== undefined) return cached;
    const result = this.#match(normalized);
    if (this.#cache.size >= this.#cacheLimit) this.#cache.clear();
    this.#cache.set(key, result);
    return result;
  }

  /** Every scale set whose labels cover the job's, in preference order (for diagnostics and docs). */
  matches(jobLabels: readonly string[]): string[] {
    const normalized = normalizeLabels(jobLabels);
    return this.#candidates.filter((c) => covers(c.labels, normalized)).map((c) => c.name);
  }

  #match(normalized: readonly string[]): string | null {
    for (const c of this.#candidates) if (covers(c.labels, normalized)) return c.name;
    return null;
  }
}

function covers(have: ReadonlySet<string>, want: readonly string[]): boolean {
  for (const l of want) if (!have.has(l)) return false;
  return true;
}
