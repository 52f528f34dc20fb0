/**
 * Small async helpers with no dependencies, for any folder (docs/adrs/0001-layout-additions.md).
 */
import { setMaxListeners } from 'node:events';

/** Waits `ms`, or less if `signal` aborts first; never rejects, so a loop can sleep and then check its signal. */
export function sleepUnlessAborted(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** `items.map(fn)` with at most `limit` calls in flight; results in the order of `items`. */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await fn(items[index] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/** The signal of one call (callSignal): aborted when a source or the call's own timeout aborts. */
export interface CallSignal {
  readonly signal: AbortSignal;
  /** The call's own timeout fired (the signal's reason is then a TimeoutError, as AbortSignal.timeout's). */
  readonly timedOut: boolean;
  /** The call is over: the sources no longer reference this signal, and its timer is cleared. */
  release(): void;
  /**
   * The call's answer is in but its body may still be on its way: the sources no longer reference this signal,
   * and the timer stays to bound the rest (it holds the call until it fires).
   */
  releaseSources(): void;
}

/**
 * `AbortSignal.any([...sources, AbortSignal.timeout(timeoutMs)])` for one call, with `release()` for when the call
 * is over. In Node 20 every signal AbortSignal.any derives stays referenced by each source until that source itself
 * is collected, so deriving one per call from a long-lived signal (a client's close, the executor's shutdown) grows
 * memory without end; and a listened-to AbortSignal.timeout stays pending, holding what listens, until it fires.
 * Here a released call leaves nothing behind: its listeners are off its sources and its timer is cleared.
 */
export function callSignal(sources: readonly (AbortSignal | undefined)[], timeoutMs?: number): CallSignal {
  const controller = new AbortController();
  // One call's signal, which its sub-requests (a resync's list per scope, every page) may all wait on at once: no
  // listener count on it means a leak, and it goes when the call does.
  setMaxListeners(0, controller.signal);
  const linked = sources.filter((s): s is AbortSignal => s !== undefined);
  let timer: NodeJS.Timeout | undefined;
  let timedOut = false;
  const releaseSources = (): void => {
    for (const s of linked) s.removeEventListener('abort', onAbort);
  };
  const release = (): void => {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    releaseSources();
  };
  const onAbort = (event: Event): void => {
    controller.abort((event.target as AbortSignal).reason);
    release();
  };
  const aborted = linked.find((s) => s.aborted);
  if (aborted !== undefined) controller.abort(aborted.reason);
  else {
    for (const s of linked) s.addEventListener('abort', onAbort, { once: true });
    if (timeoutMs !== undefined) {
      timer = setTimeout(() => {
        timedOut = true;
        controller.abort(new DOMException('The operation was aborted due to timeout', 'TimeoutError'));
        release();
      }, timeoutMs);
      // As AbortSignal.timeout's: a pending call's timer does not keep the process alive.
      timer.unref();
    }
  }
  return {
    signal: controller.signal,
    get timedOut() {
      return timedOut;
    },
    release,
    releaseSources,
  };
}
