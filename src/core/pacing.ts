/**
 * Pacing of runner-creating GitHub calls (JIT config POSTs). GitHub refuses more than about 180 of them a minute
 * per App installation (the secondary rate limit, 403 or 429 with retry-after), counted over a sliding minute of the
 * calls' arrival; a burst therefore spends that budget, and this spends it on purpose rather than discovering it
 * through refusals.
 *
 * One window per budget key (GitHub host + installation or scope owner, see `budgetKey`). Each granted call takes a
 * place in it from its grant until a minute after the call completes (answered, failed or refused alike; a grant
 * whose call was never made frees its place at once). A call reaches GitHub after its grant and before it
 * completes, so every call GitHub counts in any minute of arrivals still holds its place at that minute's end: the
 * window holding at most `perMinute - margin` places, no minute of arrivals at GitHub holds more. A burst up to half
 * the window goes at once; the rest of the window refills over half a minute, so a scale set that starts asking while
 * another one's backlog waits finds places within seconds rather than after the minute. The burst refills only
 * while the window has room: once it was full, creates go at most at that rate as places free, not in clumps (a
 * clump of runners online at once outruns their jobs' webhooks, which GitHub sends one after another).
 *
 * Waiting creates are served oldest queued job first, fair between scale sets: each round serves every scale set
 * that waits once, in the order of their oldest job. A refusal from GitHub pauses the whole budget once, until its
 * retry-after, instead of each request backing off on its own.
 */
import type { FleetConfig, Scope } from './fleet-config.js';

export interface PacingSettings {
  /** Runner-creating calls a minute the installation allows (GitHub: 180). */
  readonly perMinute: number;
}

/** How long a completed call keeps its place: GitHub's window, a minute. */
export const WINDOW_MS = 60_000;

export interface WindowShape {
  /** Places in the window: calls granted, in flight, or completed less than a minute ago. */
  readonly capacity: number;
  /** Grants that may go at once from a rested budget. */
  readonly burst: number;
  /** Refill of that burst, grants per ms (the whole window in half a minute). */
  readonly ratePerMs: number;
}

/**
 * The window holds the limit less 2 (slack for a call GitHub counts twice, such as a retried 5xx), at least 2: the
 * limit is at least 2 (github.createsPerMinute's minimum). Half of it may go at once, and it refills in half a
 * minute: twice the rate the window sustains, so places that free together (a burst's, a minute after it) are all
 * used again within the minute, at a few a second rather than at once.
 */
export function windowShape(perMinute: number): WindowShape {
  const limit = Math.max(2, perMinute);
  const margin = limit > 20 ? 2 : 0;
  const capacity = limit - margin;
  const burst = Math.max(1, Math.floor(capacity / 2));
  return { capacity, burst, ratePerMs: capacity / (WINDOW_MS / 2) };
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

/**
 * One granted runner-creating call. Tell the pacer how it ended: `done()` once the call has completed (answered,
 * failed, refused or aborted: it may have reached GitHub), which keeps its place for a minute from then, or
 * `unused()` when no call was made under it, which frees the place at once. Only the first of the two counts.
 */
export interface PacingGrant {
  done(): void;
  unused(): void;
}

interface Waiter {
  readonly scaleSet: string;
  /** ms epoch of the job this create serves (its queue time), for ordering. */
  readonly order: number;
  /** ms epoch when it started waiting. */
  readonly since: number;
  readonly grant: (g: PacingGrant) => void;
  readonly cancel: (reason: unknown) => void;
  readonly signal: AbortSignal | undefined;
  readonly onAbort: (() => void) | undefined;
}

class Budget {
  readonly key: string;
  readonly perMinute: number;
  readonly shape: WindowShape;
  /** Grants whose call has not completed yet. */
  inFlight = 0;
  /** When the places of completed calls free (ms epoch), oldest first; `head` is the first still held. */
  frees: number[] = [];
  head = 0;
  /** The burst: grants that may go at once, refilled continuously. */
  tokens: number;
  refilledAt: number;
  pausedUntil = 0;
  /** Waiting creates per scale set, each list ordered by `order`. */
  readonly queues = new Map<string, Waiter[]>();
  /** Scale sets already served in the current round. */
  readonly served = new Set<string>();
  waiting = 0;
  timer: ReturnType<typeof setTimeout> | null = null;
  /** When the timer fires (ms epoch). */
  timerAt = 0;

  constructor(key: string, perMinute: number, now: number) {
    this.key = key;
    this.perMinute = perMinute;
    this.shape = windowShape(perMinute);
    this.tokens = this.shape.burst;
    this.refilledAt = now;
  }

  refill(now: number): void {
    if (now > this.refilledAt) {
      // The burst refills only while the window has room (`held` still counts places freed since the last refill),
      // and to one grant while it is full: when a clump of earlier calls frees its places at once, creates resume
      // at the rate, not in a clump.
      const accrued = this.tokens + (now - this.refilledAt) * this.shape.ratePerMs;
      this.tokens =
        this.held < this.shape.capacity
          ? Math.min(this.shape.burst, accrued)
          : Math.max(this.tokens, Math.min(1, accrued));
      this.refilledAt = now;
    }
    while (this.head < this.frees.length && this.frees[this.head]! <= now) this.head++;
    if (this.head > 1024 && this.head * 2 > this.frees.length) {
      this.frees = this.frees.slice(this.head);
      this.head = 0;
    }
  }

  /** Places taken: in flight, or completed less than a minute ago (after `refill`). */
  get held(): number {
    return this.inFlight + this.frees.length - this.head;
  }

  canGrant(now: number): boolean {
    return now >= this.pausedUntil && this.tokens >= 1 && this.held < this.shape.capacity;
  }

  /** When a grant may next go (after `refill`), or null when only a completing call frees a place. */
  nextAt(now: number): number | null {
    let at = Math.max(now, this.pausedUntil);
    if (this.tokens < 1) at = Math.max(at, now + Math.ceil((1 - this.tokens) / this.shape.ratePerMs));
    if (this.held >= this.shape.capacity) {
      // Places free as completed calls age out; with every place in flight, a completion frees none for a minute.
      const i = this.head + (this.held - this.shape.capacity);
      if (i >= this.frees.length) return null;
      at = Math.max(at, this.frees[i]!);
    }
    return at;
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

  /** Takes a place in `b` and returns the grant that gives it back. */
  #take(b: Budget): PacingGrant {
    b.tokens -= 1;
    b.inFlight++;
    let settled = false;
    const settle = (used: boolean) => {
      if (settled) return;
      settled = true;
      b.inFlight--;
      // Completion times only grow, so `frees` stays ordered.
      if (used) b.frees.push(this.#clock.now() + WINDOW_MS);
      else b.tokens = Math.min(b.shape.burst, b.tokens + 1);
      if (b.waiting > 0) this.#drain(b);
    };
    return { done: () => settle(true), unused: () => settle(false) };
  }

  /**
   * Resolves when the budget `key` allows one runner-creating call for `scaleSet`; `order` is the queue time of the
   * job it serves (older first). The grant must be settled (`done` or `unused`). Rejects with the signal's reason
   * when it aborts first.
   */
  acquire(
    key: string,
    perMinute: number,
    scaleSet: string,
    order: number,
    signal?: AbortSignal,
  ): Promise<PacingGrant> {
    const b = this.#budget(key, perMinute);
    const now = this.#clock.now();
    b.refill(now);
    if (b.waiting === 0 && b.canGrant(now)) {
      this.#onWait?.({ key, scaleSet, waitMs: 0 });
      return Promise.resolve(this.#take(b));
    }
    if (signal?.aborted) return Promise.reject(signal.reason as Error);
    return new Promise<PacingGrant>((resolve, reject) => {
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
   * were refused), and its burst starts empty after it.
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
    while (b.waiting > 0 && b.canGrant(now)) {
      const q = this.#next(b)!;
      const w = q.shift()!;
      b.waiting--;
      b.served.add(w.scaleSet);
      if (q.length === 0) b.queues.delete(w.scaleSet);
      if (w.onAbort !== undefined) w.signal?.removeEventListener('abort', w.onAbort);
      this.#onWait?.({ key: b.key, scaleSet: w.scaleSet, waitMs: now - w.since });
      w.grant(this.#take(b));
    }
    if (b.waiting === 0) b.served.clear();
    const at = b.waiting > 0 ? b.nextAt(now) : null;
    if (b.timer !== null && (at === null || b.timerAt > at)) {
      this.#clock.clearTimeout(b.timer);
      b.timer = null;
    }
    if (at !== null && b.timer === null) {
      b.timerAt = Math.max(at, now + 1);
      b.timer = this.#clock.setTimeout(() => {
        b.timer = null;
        this.#drain(b);
      }, b.timerAt - now);
    }
  }
}
