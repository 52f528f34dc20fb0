/**
 * Octokit assembly: @octokit/core with pagination, retries (5xx, network, timeouts: bounded, with backoff) and
 * throttling (429 and 403 rate limits: honours retry-after and x-ratelimit-reset, bounded so a reconcile pass is
 * never blocked for long). Installation tokens come from @octokit/auth-app, cached until shortly before expiry.
 */
import { createAppAuth } from '@octokit/auth-app';
import { Octokit } from '@octokit/core';
import type { OctokitOptions } from '@octokit/core';
import { paginateRest } from '@octokit/plugin-paginate-rest';
import { retry } from '@octokit/plugin-retry';
import { throttling } from '@octokit/plugin-throttling';
import type { ThrottlingOptions } from '@octokit/plugin-throttling';
import type { Logger } from '../telemetry/logger.js';
import type { FetchLike } from './transport.js';
import { Pacer, RetryLimiter } from './pacer.js';

// Retry wraps inside throttling, as in octokit.js: rate limits are left to throttling, everything else to retry.
export const FleetOctokit = Octokit.plugin(paginateRest, retry, throttling);
export type FleetOctokitInstance = InstanceType<typeof FleetOctokit>;

export interface OctokitFactoryOptions {
  readonly baseUrl: string;
  readonly fetch: FetchLike;
  readonly logger: Logger;
  readonly userAgent: string;
  /** Retries of 5xx, network errors and timeouts. */
  readonly retries: number;
  /** ms per second of retry-after / backoff; 1000 in production, small in tests. */
  readonly retryBaseMs: number;
  /** Rate-limit retries per request, and the longest wait (s) worth retrying after rather than failing. */
  readonly maxRateLimitRetries: number;
  readonly maxRetryAfterSeconds: number;
  readonly maxConcurrentRequests: number;
  readonly maxConcurrentWrites: number;
  readonly writeIntervalMs: number;
  readonly now: () => number;
  /** Installation tokens are refreshed this long before they expire. */
  readonly tokenRefreshMarginMs: number;
}

/**
 * Cache handed to @octokit/auth-app. auth-app's own cache keeps tokens for a fixed 59 minutes; this one reads the
 * expiry GitHub returned (the third `|` field of auth-app's cache entry) and drops the token `marginMs` before it.
 */
export class InstallationTokenCache {
  readonly #entries = new Map<string, string>();
  readonly #now: () => number;
  readonly #marginMs: number;

  constructor(now: () => number, marginMs: number) {
    this.#now = now;
    this.#marginMs = marginMs;
  }

  get(key: string): string | undefined {
    const value = this.#entries.get(key);
    if (value === undefined) return undefined;
    const expiresAt = Date.parse(value.split('|')[2] ?? '');
    if (!Number.isFinite(expiresAt) || this.#now() >= expiresAt - this.#marginMs) {
      this.#entries.delete(key);
      return undefined;
    }
    return value;
  }

  set(key: string, value: string): void {
    this.#entries.set(key, value);
  }
}

/** Routes GitHub counts against its secondary limit on runner creation. */
const RUNNER_CREATING = /\/actions\/runners\/(generate-jitconfig|registration-token)$/;

let clientIds = 0;

/** Builds Octokit instances that share one transport, one set of limiters and one token cache. */
export class OctokitFactory {
  readonly #options: OctokitFactoryOptions;
  readonly #global: Pacer;
  readonly #write: Pacer;
  readonly #id = `runner-fleet-${++clientIds}`;
  readonly tokenCache: InstallationTokenCache;

  constructor(options: OctokitFactoryOptions) {
    this.#options = options;
    this.#global = new Pacer({ maxConcurrent: options.maxConcurrentRequests, minIntervalMs: 0 });
    this.#write = new Pacer({
      maxConcurrent: options.maxConcurrentWrites,
      minIntervalMs: options.writeIntervalMs,
    });
    this.tokenCache = new InstallationTokenCache(options.now, options.tokenRefreshMarginMs);
  }

  withToken(token: string): FleetOctokitInstance {
    return new FleetOctokit({ ...this.#common(), auth: token });
  }

  /** App-level client (JWT): installation lookups. */
  forApp(appId: number, privateKey: string): FleetOctokitInstance {
    return new FleetOctokit({
      ...this.#common(),
      authStrategy: createAppAuth,
      auth: { appId, privateKey, cache: this.tokenCache },
    });
  }

  forInstallation(appId: number, privateKey: string, installationId: number): FleetOctokitInstance {
    return new FleetOctokit({
      ...this.#common(),
      authStrategy: createAppAuth,
      auth: { appId, privateKey, installationId, cache: this.tokenCache },
    });
  }

  #common(): OctokitOptions {
    const o = this.#options;
    const log = o.logger;
    const limitHandler =
      (kind: string) =>
      (
        retryAfter: number,
        options: { method?: string; url?: string },
        _octokit: unknown,
        retryCount: number,
      ) => {
        // A refused runner-creating POST is never retried here: the caller's pacing waits for the whole
        // installation once (core/pacing.ts) and queues the runner again behind older jobs.
        const creates = options.method === 'POST' && RUNNER_CREATING.test(options.url ?? '');
        const retrying =
          !creates && retryCount < o.maxRateLimitRetries && retryAfter <= o.maxRetryAfterSeconds;
        log.warn(
          { route: `${options.method ?? ''} ${options.url ?? ''}`, retryAfter, retryCount, retrying },
          `GitHub ${kind} rate limit hit`,
        );
        return retrying;
      };
    const throttle = {
      id: this.#id,
      retryAfterBaseValue: o.retryBaseMs,
      fallbackSecondaryRateRetryAfter: 60,
      onRateLimit: limitHandler('primary'),
      onSecondaryRateLimit: limitHandler('secondary'),
      // Per-client limiters instead of the plugin's process-wide groups, and a retry limiter without timer hops
      // (see pacer.ts). One per client: the plugin adds its `failed` listener to it.
      global: this.#global,
      write: this.#write,
      retryLimiter: new RetryLimiter(),
    } as unknown as ThrottlingOptions;
    return {
      baseUrl: o.baseUrl.replace(/\/+$/, ''),
      userAgent: o.userAgent,
      request: { fetch: o.fetch },
      log: {
        debug: (msg: string) => log.debug(msg),
        info: (msg: string) => log.info(msg),
        warn: (msg: string) => log.warn(msg),
        error: (msg: string) => log.error(msg),
      },
      retry: {
        retries: o.retries,
        retryAfterBaseValue: o.retryBaseMs,
        // 409 is handled by the caller (runner exists); 429 belongs to the throttling plugin.
        doNotRetry: [400, 401, 403, 404, 409, 410, 422, 429, 451],
      },
      throttle,
    };
  }
}
