/**
 * GitHub's REST rate limits. Primary: a budget per hour per identity (installation, PAT, App JWT, or client address
 * for anonymous calls), reported on every response in `x-ratelimit-*`. Secondary: runner-creating POSTs per
 * minute and concurrent requests per identity, refused with 403 + `retry-after` and the "secondary rate limit"
 * message that octokit's throttling plugin recognises.
 */
import type { Identity } from './auth.js';
import { DOCS, GitHubError } from './errors.js';

const HOUR_MS = 3_600_000;
const MINUTE_MS = 60_000;
const ANONYMOUS_LIMIT = 60;

export interface RateLimitSettings {
  perHour: number;
  status: 403 | 429;
  secondaryPerMinute: number;
  maxConcurrent: number;
}

export interface Bucket {
  readonly key: string;
  limit: number;
  used: number;
  /** ms epoch when the window resets. */
  resetAt: number;
  /** Times of recent runner-creating POSTs (ms), oldest first. */
  creates: number[];
  inFlight: number;
  /** Identity label used in the refusal message, e.g. `installation ID 40000001`. */
  readonly who: string;
}

export function bucketKey(identity: Identity): { key: string; who: string; anonymous: boolean } {
  switch (identity.kind) {
    case 'installation':
      return {
        key: `installation:${identity.installation.id}`,
        who: `installation ID ${identity.installation.id}`,
        anonymous: false,
      };
    case 'pat':
      return { key: 'pat', who: 'user ID 1', anonymous: false };
    case 'app':
      return { key: 'app', who: 'app', anonymous: false };
    case 'anonymous':
      return { key: `ip:${identity.ip}`, who: identity.ip, anonymous: true };
  }
}

/** Requests refused by the limits (not by injected faults), since start or the last reset. */
export interface RefusalCounts {
  /** Hourly budget spent. */
  primaryRefusals: number;
  /** Runner-creating POSTs over the per-minute limit, or requests over the concurrency limit. */
  secondaryRefusals: number;
}

export class RateLimiter {
  readonly settings: RateLimitSettings;
  readonly refusals: RefusalCounts = { primaryRefusals: 0, secondaryRefusals: 0 };
  #buckets = new Map<string, Bucket>();
  /** A `remaining` set through faults also applies to identities that have not called yet. */
  #pendingRemaining: number | null = null;
  readonly #now: () => number;

  constructor(settings: RateLimitSettings, now: () => number) {
    this.settings = { ...settings };
    this.#now = now;
  }

  bucket(identity: Identity): Bucket {
    const { key, who, anonymous } = bucketKey(identity);
    const now = this.#now();
    let bucket = this.#buckets.get(key);
    if (!bucket) {
      const limit = anonymous ? ANONYMOUS_LIMIT : this.settings.perHour;
      const used =
        !anonymous && this.#pendingRemaining !== null ? Math.max(0, limit - this.#pendingRemaining) : 0;
      bucket = { key, limit, used, resetAt: now + HOUR_MS, creates: [], inFlight: 0, who };
      this.#buckets.set(key, bucket);
    } else if (now >= bucket.resetAt) {
      bucket.used = 0;
      bucket.resetAt = now + HOUR_MS;
      bucket.limit = anonymous ? ANONYMOUS_LIMIT : this.settings.perHour;
    }
    return bucket;
  }

  /** Counts one request against the primary limit; throws when the budget is spent. */
  consume(bucket: Bucket): void {
    if (bucket.used >= bucket.limit) {
      this.refusals.primaryRefusals++;
      throw new GitHubError(
        this.settings.status,
        `API rate limit exceeded for ${bucket.who}. If you reach out to GitHub Support for help, please include the request ID.`,
        {
          documentationUrl: DOCS.rateLimit,
          headers: { 'retry-after': String(this.secondsToReset(bucket)) },
          code: 'rate-limited',
        },
      );
    }
    bucket.used++;
  }

  /** Secondary limit on runner-creating POSTs (sliding minute). */
  consumeCreate(bucket: Bucket): void {
    const now = this.#now();
    const creates = bucket.creates;
    let drop = 0;
    while (drop < creates.length && creates[drop]! <= now - MINUTE_MS) drop++;
    if (drop > 0) creates.splice(0, drop);
    if (creates.length >= this.settings.secondaryPerMinute) {
      const retryAfter = Math.max(1, Math.ceil((creates[0]! + MINUTE_MS - now) / 1000));
      this.refusals.secondaryRefusals++;
      throw secondaryLimit(retryAfter);
    }
    creates.push(now);
  }

  /** Secondary limit on concurrency; returns the release function. */
  enter(bucket: Bucket): () => void {
    if (bucket.inFlight >= this.settings.maxConcurrent) {
      this.refusals.secondaryRefusals++;
      throw secondaryLimit(1);
    }
    bucket.inFlight++;
    let released = false;
    return () => {
      if (!released) {
        released = true;
        bucket.inFlight--;
      }
    };
  }

  secondsToReset(bucket: Bucket): number {
    return Math.max(0, Math.ceil((bucket.resetAt - this.#now()) / 1000));
  }

  headers(bucket: Bucket): Record<string, string> {
    return {
      'x-ratelimit-limit': String(bucket.limit),
      'x-ratelimit-remaining': String(Math.max(0, bucket.limit - bucket.used)),
      'x-ratelimit-used': String(bucket.used),
      'x-ratelimit-reset': String(Math.floor(bucket.resetAt / 1000)),
      'x-ratelimit-resource': 'core',
    };
  }

  /** Changes the hourly limit (and optionally what is left) of every identity, e.g. from POST /_sim/faults. */
  configure(change: {
    perHour?: number;
    remaining?: number;
    secondaryPerMinute?: number;
    status?: 403 | 429;
  }): void {
    if (change.perHour !== undefined) this.settings.perHour = change.perHour;
    if (change.secondaryPerMinute !== undefined) this.settings.secondaryPerMinute = change.secondaryPerMinute;
    if (change.status !== undefined) this.settings.status = change.status;
    for (const bucket of this.#buckets.values()) {
      if (bucket.key.startsWith('ip:')) continue;
      if (change.perHour !== undefined) bucket.limit = change.perHour;
      if (change.remaining !== undefined) bucket.used = Math.max(0, bucket.limit - change.remaining);
    }
    if (change.remaining !== undefined) this.#pendingRemaining = change.remaining;
  }

  reset(settings: RateLimitSettings): void {
    Object.assign(this.settings, settings);
    this.#buckets.clear();
    this.#pendingRemaining = null;
    this.refusals.primaryRefusals = 0;
    this.refusals.secondaryRefusals = 0;
  }
}

export function secondaryLimit(retryAfterSeconds: number): GitHubError {
  return new GitHubError(
    403,
    'You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If you reach out to GitHub Support for help, please include the request ID.',
    {
      documentationUrl: DOCS.secondaryRateLimit,
      headers: { 'retry-after': String(retryAfterSeconds) },
      code: 'secondary-rate-limited',
    },
  );
}
