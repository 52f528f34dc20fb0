/**
 * Pacing of runner-creating GitHub calls (JIT config POSTs). GitHub refuses more than about 180 of them a minute
 * per App installation (the secondary rate limit, 403 or 429 with retry-after); a burst therefore spends that
 * budget, and this spends it on purpose rather than discovering it through refusals.
 *
 * One token bucket per budget key (GitHub host + installation or scope owner, see `budgetKey`), refilled
 * continuously. Its burst and rate never sum past the limit: whatever window GitHub counts over, no minute holds
 * more than `perMinute` grants. Waiting creates are served oldest queued job first, fair between scale sets: each
 * round serves every scale set that waits once, in the order of their oldest job. A refusal from GitHub pauses
 * the whole budget once, until its retry-after, instead of each request backing off on its own.
 */
import type { FleetConfig, Scope } from './fleet-config.js';

export interface PacingSettings {
  /** Runner-creating calls a minute the installation allows (GitHub: 180). */
  readonly perMinute: number;
}

export interface BucketShape {
  /** Grants that may go at once from a full bucket. */
  readonly burst: number;
  /** Refill, grants per ms. */
  readonly ratePerMs: number;
}

/**
 * burst + rate per minute <= perMinute - margin: a sliding minute then never holds more than the limit, with two
 * grants of slack for the time between our grant and GitHub's count. Burst 5% of the limit (at least 1). The
 * limit is at least 2 (github.createsPerMinute's minimum).
 */
export function bucketShape(perMinute: number): BucketShape {
  const limit = Math.max(2, perMinute);
  const margin = limit > 20 ? 2 : 0;
  const burst = Math.max(1, Math.floor(limit * 0.05));
  const perMin = Math.max(1, limit - burst - margin);
  return { burst, ratePerMs: perMin / 60_000 };
}

/** Budget key of a scale set's scope: the GitHub host and the installation (configured, or the scope's owner). */
export function budgetKey(config: Pick<FleetConfig, 'github'>, scope: Scope): string {
  const host = new URL(config.github.apiUrl).host.toLowerCase();
  const auth = config.github.auth;
  if ('app' in auth && auth.app.installationId !== undefined)
    return `${host}/installation/${auth.app.installationId}`;
  if ('token' in auth) return `${host}/token`;
  if ('org' in scope) return `${host}/org/${scope.org.toLowerCase()}`;
  if ('repo' in scope) return `${host}/owner/${scope.repo.split('/')[0]!.toLowerCase()}`;
  return `${host}/enterprise/${scope.enterprise.toLowerCase()}`;
}

export interface PacingWaitEvent {
  readonly key: string;
  readonly scaleSet: string;
  /** ms between asking and being granted. */
  readonly waitMs: number;
}

export interface ScaleSetPacing {
  /** Creates waiting for the budget. */
  readonly waiting: number;
  /** ms epoch the oldest waiting create was asked for, or null. */
  readonly oldestSince: number | null;
  /** ms epoch until which GitHub asked the whole budget to wait (a refusal), or null. */
  readonly pausedUntil: number | null;
  /** Budget key this scale set spends. */
  readonly key: string;
  /** The budget's limit per minute. */
  readonly perMinute: number;
}

interface Waiter {
  readonly scaleSet: string;
  /** ms epoch of the job this create serves (its queue time), for ordering. */
  readonly order: number;
  /** ms epoch when it started waiting. */
  readonly since: number;
  readonly grant: () => void;
  readonly cancel: (reason: unknown) => void;
  readonly signal: AbortSignal | undefined;
  readonly onAbort: (() => void) | undefined;
}

class Budget {
  readonly key: string;
  readonly perMinute: number;
  readonly shape: BucketShape;
  tokens: number;
  refilledAt: number;
  pausedUntil = 0;
  /** Waiting creates per scale set, each list ordered by `order`. */
  readonly queues = new Map<string, Waiter[]>();
  /** Scale sets already served in the current round. */
  readonly served = new Set<string>();
  waiting = 0;
  timer: ReturnType<typeof setTimeout> | null = null;

  constructor(key: string, perMinute: number, now: number) {
    this.key = key;
    this.perMinute = perMinute;
    this.shape = bucketShape(perMinute);
    this.tokens = this.shape.burst;
    this.refilledAt = now;
  }

  refill(now: number): void {
    if (now > this.refilledAt) {
      this.tokens = Math.min(this.shape.burst, this.tokens + (now - this.refilledAt) * this.shape.ratePerMs);
      this.refilledAt = now;
    }
  }
}

export interface PacerClock {
  readonly now: () => number;
  readonly setTimeout: (fn: () => void, ms: number) => ReturnType<typeof setTimeout>;
  readonly clearTimeout: (t: ReturnType<typeof setTimeout>) => void;
}

const realClock: PacerClock = {
  now: Date.now,
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    t.unref?.();
    return t;
  },
  clearTimeout: (t) => clearTimeout(t),
};

export class CreatePacer {
  readonly #budgets = new Map<string, Budget>();
  readonly #clock: PacerClock;
  readonly #onWait: ((e: PacingWaitEvent) => void) | undefined;

  constructor(options: { clock?: PacerClock; onWait?: (e: PacingWaitEvent) => void } = {}) {
    this.#clock = options.clock ?? realClock;
    this.#onWait = options.onWait;
  }

  #budget(key: string, perMinute: number): Budget {
    let b = this.#budgets.get(key);
    if (b === undefined) {
      b = new Budget(key, perMinute, this.#clock.now());
      this.#budgets.set(key, b);
    }
    return b;
  }

  /**
   * Resolves when the budget `key` allows one runner-creating call for `scaleSet`; `order` is the queue time of the
   * job it serves (older first). Rejects with the signal's reason when it aborts first.
   */
  acquire(
    key: string,
    perMinute: number,
    scaleSet: string,
    order: number,
    signal?: AbortSignal,
  ): Promise<void> {
    const b = this.#budget(key, perMinute);
    const now = this.#clock.now();
    b.refill(now);
    if (b.waiting === 0 && now >= b.pausedUntil && b.tokens >= 1) {
      b.tokens -= 1;
      this.#onWait?.({ key, scaleSet, waitMs: 0 });
      return Promise.resolve();
    }
    if (signal?.aborted) return Promise.reject(signal.reason as Error);
    return new Promise<void>((resolve, reject) => {
      let queue = b.queues.get(scaleSet);
      if (queue === undefined) {
        queue = [];
        b.queues.set(scaleSet, queue);
      }
      const onAbort =
        signal === undefined
          ? undefined
          : () => {
              const q = b.queues.get(scaleSet);
              const i = q?.indexOf(waiter) ?? -1;
              if (q !== undefined && i >= 0) {
                q.splice(i, 1);
                b.waiting--;
                if (q.length === 0) b.queues.delete(scaleSet);
              }
              reject(signal.reason as Error);
            };
      const waiter: Waiter = {
        scaleSet,
        order,
        since: now,
        grant: resolve,
        cancel: reject,
        signal,
        onAbort,
      };
      // Insert by order (usually at the end: jobs arrive in order).
      let i = queue.length;
      while (i > 0 && queue[i - 1]!.order > order) i--;
      queue.splice(i, 0, waiter);
      b.waiting++;
      if (onAbort !== undefined) signal!.addEventListener('abort', onAbort, { once: true });
      this.#drain(b);
    });
  }

  /**
   * GitHub refused a runner-creating call anyway: the whole budget waits `retryAfterMs` (once, however many calls
   * were refused), and the bucket starts empty after it.
   */
  pause(key: string, perMinute: number, retryAfterMs: number): void {
    const b = this.#budget(key, perMinute);
    const now = this.#clock.now();
    const until = now + Math.max(1000, retryAfterMs);
    if (until > b.pausedUntil) b.pausedUntil = until;
    b.tokens = 0;
    b.refilledAt = b.pausedUntil;
    this.#drain(b);
  }

  /** What waits, per scale set (those spending a budget that has waited or waits). */
  scaleSet(name: string): { waiting: number; oldestSince: number | null; pausedUntil: number | null } {
    let waiting = 0;
    let oldestSince: number | null = null;
    let pausedUntil: number | null = null;
    const now = this.#clock.now();
    for (const b of this.#budgets.values()) {
      const q = b.queues.get(name);
      if (q !== undefined && q.length > 0) {
        waiting += q.length;
        for (const w of q) if (oldestSince === null || w.since < oldestSince) oldestSince = w.since;
      }
      if (q !== undefined && b.pausedUntil > now) pausedUntil = Math.max(pausedUntil ?? 0, b.pausedUntil);
    }
    return { waiting, oldestSince, pausedUntil };
  }

  /** Creates waiting over all budgets. */
  get waiting(): number {
    let n = 0;
    for (const b of this.#budgets.values()) n += b.waiting;
    return n;
  }

  /** Stops timers and rejects every waiter (shutdown). */
  close(reason: unknown): void {
    for (const b of this.#budgets.values()) {
      if (b.timer !== null) this.#clock.clearTimeout(b.timer);
      b.timer = null;
      for (const q of b.queues.values()) {
        for (const w of q) {
          if (w.onAbort !== undefined) w.signal?.removeEventListener('abort', w.onAbort);
          w.cancel(reason);
        }
      }
      b.queues.clear();
      b.waiting = 0;
    }
  }

  /** The next waiter: oldest job first among the scale sets not yet served this round. */
  #next(b: Budget): Waiter[] | undefined {
    let best: Waiter[] | undefined;
    for (let pass = 0; pass < 2 && best === undefined; pass++) {
      for (const [set, q] of b.queues) {
        if (b.served.has(set)) continue;
        if (best === undefined || q[0]!.order < best[0]!.order) best = q;
      }
      if (best === undefined) b.served.clear(); // every waiting scale set served: a new round
    }
    return best;
  }

  #drain(b: Budget): void {
    const now = this.#clock.now();
    b.refill(now);
    while (b.waiting > 0 && now >= b.pausedUntil && b.tokens >= 1) {
      const q = this.#next(b)!;
      const w = q.shift()!;
      b.waiting--;
      b.served.add(w.scaleSet);
      if (q.length === 0) b.queues.delete(w.scaleSet);
      b.tokens -= 1;
      if (w.onAbort !== undefined) w.signal?.removeEventListener('abort', w.onAbort);
      this.#onWait?.({ key: b.key, scaleSet: w.scaleSet, waitMs: now - w.since });
      w.grant();
    }
    if (b.waiting === 0) b.served.clear();
    if (b.waiting > 0 && b.timer === null) {
      const at = Math.max(b.pausedUntil, now + Math.ceil((1 - b.tokens) / b.shape.ratePerMs));
      b.timer = this.#clock.setTimeout(
        () => {
          b.timer = null;
          this.#drain(b);
        },
        Math.max(1, at - now),
      );
    }
  }
}
