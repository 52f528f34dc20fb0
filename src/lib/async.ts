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
  /** The call's own timeout, when one was asked for: aborted means it timed out. */
  readonly timeout?: AbortSignal;
  /** The call is over: the sources no longer reference this signal (the timeout still bounds what remains). */
  release(): void;
}

/**
 * `AbortSignal.any([...sources, AbortSignal.timeout(timeoutMs)])` for one call, with `release()` for when the call
 * is over. In Node 20 every signal AbortSignal.any derives stays referenced by each source until that source itself
 * is collected, so deriving one per call from a long-lived signal (a client's close, the executor's shutdown) grows
 * memory without end; here a released call leaves nothing on its sources.
 */
export function callSignal(sources: readonly (AbortSignal | undefined)[], timeoutMs?: number): CallSignal {
  const controller = new AbortController();
  // One call's signal, which its sub-requests (a resync's list per scope, every page) may all wait on at once: no
  // listener count on it means a leak, and it goes when the call does.
  setMaxListeners(0, controller.signal);
  const linked = sources.filter((s): s is AbortSignal => s !== undefined);
  const timeout = timeoutMs === undefined ? undefined : AbortSignal.timeout(timeoutMs);
  const onAbort = (event: Event): void => {
    controller.abort((event.target as AbortSignal).reason);
    release();
  };
  const release = (): void => {
    for (const s of linked) s.removeEventListener('abort', onAbort);
  };
  const aborted = [...linked, ...(timeout ? [timeout] : [])].find((s) => s.aborted);
  if (aborted !== undefined) controller.abort(aborted.reason);
  else {
    for (const s of linked) s.addEventListener('abort', onAbort, { once: true });
    // A timeout signal is the call's own: it goes when the call's timer fires, whoever listens to it.
    timeout?.addEventListener('abort', onAbort, { once: true });
  }
  return { signal: controller.signal, ...(timeout ? { timeout } : {}), release };
}
