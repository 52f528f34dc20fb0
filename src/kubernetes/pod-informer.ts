/**
 * A small LIST + WATCH cache of the pods in one namespace that match a label selector, keeping only a projection
 * of each pod (a few hundred bytes instead of the whole object), so 2,000 watched pods cost little memory.
 *
 * - LIST in pages, then WATCH from the list's resourceVersion with bookmarks; a watch that ends normally (server
 *   timeout) is resumed from the last resourceVersion seen, without a new LIST.
 * - 410 Gone (the resourceVersion was compacted away) triggers a fresh LIST; the cache is replaced and the
 *   difference is delivered as added / modified / deleted events, so no change is lost.
 * - Any other error restarts the LIST + WATCH after a capped, jittered exponential backoff.
 */
import type { KubeConfig, V1Pod } from '@kubernetes/client-node';
import { CoreV1Api, Watch } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { describeApiError, isGone, statusCodeOf, withSignal } from './api.js';
import { sleepUnlessAborted } from '../lib/async.js';

export type InformerEventType = 'added' | 'modified' | 'deleted';

export interface InformerEvent<T> {
  readonly type: InformerEventType;
  readonly object: T;
}

export interface PodInformerOptions<T> {
  readonly kubeConfig: KubeConfig;
  readonly namespace: string;
  readonly labelSelector: string;
  /** Keeps what matters of a pod. Receives plain JSON from watches and client objects from lists. */
  readonly project: (pod: V1Pod) => T;
  /** Whether two projections differ (default: JSON comparison); equal updates are not delivered. */
  readonly equals?: (a: T, b: T) => boolean;
  readonly logger?: Logger;
  /** Items per LIST page (default 500). */
  readonly pageSize?: number;
  /** Server-side watch timeout, randomised up to twice this (default 300 s). */
  readonly watchTimeoutSeconds?: number;
  /** Backoff after errors: first delay and cap (default 500 ms, 30 s). */
  readonly backoff?: { readonly initialMs: number; readonly maxMs: number };
  readonly sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
}

export interface InformerStats {
  lists: number;
  watches: number;
  relistsAfterGone: number;
  errors: number;
}

class GoneError extends Error {
  readonly statusCode = 410;
}

export class PodInformer<T> {
  readonly #o: PodInformerOptions<T>;
  readonly #core: CoreV1Api;
  readonly #watch: Watch;
  readonly #cache = new Map<string, T>();
  readonly #listeners = new Set<(event: InformerEvent<T>) => void>();
  readonly #stop = new AbortController();
  readonly #sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  #resourceVersion = '';
  #synced = false;
  #syncWaiters: Array<() => void> = [];
  #loop: Promise<void> | undefined;
  /** Ends the current watch at once, even before the server has answered (the request is aborted when it does). */
  #endWatch: (() => void) | undefined;
  #interruptPending = false;
  #resumeFrom: string | undefined;
  readonly stats: InformerStats = { lists: 0, watches: 0, relistsAfterGone: 0, errors: 0 };

  constructor(options: PodInformerOptions<T>) {
    this.#o = options;
    this.#core = options.kubeConfig.makeApiClient(CoreV1Api);
    this.#watch = new Watch(options.kubeConfig);
    this.#sleep = options.sleep ?? sleepUnlessAborted;
  }

  get namespace(): string {
    return this.#o.namespace;
  }

  get synced(): boolean {
    return this.#synced;
  }

  get resourceVersion(): string {
    return this.#resourceVersion;
  }

  /** Starts the LIST + WATCH loop (once). */
  start(): void {
    this.#loop ??= this.#run();
  }

  /** Resolves once the first LIST has filled the cache; rejects if `signal` aborts first. */
  waitForSync(signal?: AbortSignal): Promise<void> {
    this.start();
    if (this.#synced) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const onAbort = () => reject(signal?.reason ?? new Error('aborted'));
      if (signal?.aborted) return onAbort();
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#syncWaiters.push(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      });
    });
  }

  get(name: string): T | undefined {
    return this.#cache.get(name);
  }

  list(): T[] {
    return [...this.#cache.values()];
  }

  get size(): number {
    return this.#cache.size;
  }

  subscribe(listener: (event: InformerEvent<T>) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Ends the current watch as if the server had closed it (the informer resumes): an aid for tests. */
  interruptWatch(): void {
    if (this.#endWatch) this.#endWatch();
    else this.#interruptPending = true;
  }

  /**
   * Resumes watching from `resourceVersion` as if it were the last one seen: with a compacted one the server
   * answers 410 Gone and the informer must relist. An aid for tests of that path.
   */
  resumeFrom(resourceVersion: string): void {
    this.#resumeFrom = resourceVersion;
    this.interruptWatch();
  }

  async stop(): Promise<void> {
    this.#stop.abort();
    this.#endWatch?.();
    await this.#loop;
  }

  #emit(type: InformerEventType, object: T): void {
    for (const listener of this.#listeners) {
      try {
        listener({ type, object });
      } catch (error) {
        this.#o.logger?.error({ err: error }, 'pod informer listener failed');
      }
    }
  }

  #equals(a: T, b: T): boolean {
    return this.#o.equals ? this.#o.equals(a, b) : JSON.stringify(a) === JSON.stringify(b);
  }

  #upsert(name: string, next: T): void {
    const prev = this.#cache.get(name);
    this.#cache.set(name, next);
    if (prev === undefined) this.#emit('added', next);
    else if (!this.#equals(prev, next)) this.#emit('modified', next);
  }

  #remove(name: string, last: T): void {
    this.#cache.delete(name);
    this.#emit('deleted', last);
  }

  async #list(): Promise<void> {
    this.stats.lists++;
    const seen = new Map<string, T>();
    let continueToken: string | undefined;
    let resourceVersion = '';
    do {
      const page = await this.#core.listNamespacedPod(
        {
          namespace: this.#o.namespace,
          labelSelector: this.#o.labelSelector,
          limit: this.#o.pageSize ?? 500,
          ...(continueToken ? { _continue: continueToken } : {}),
        },
        withSignal(this.#stop.signal),
      );
      for (const pod of page.items) {
        const name = pod.metadata?.name;
        if (name) seen.set(name, this.#o.project(pod));
      }
      continueToken = page.metadata?._continue || undefined;
      resourceVersion = page.metadata?.resourceVersion ?? resourceVersion;
    } while (continueToken);
    // Replace the cache and deliver the difference, so a relist after 410 reports what happened meanwhile.
    for (const [name, last] of this.#cache) if (!seen.has(name)) this.#remove(name, last);
    for (const [name, next] of seen) this.#upsert(name, next);
    this.#resourceVersion = resourceVersion;
    if (!this.#synced) {
      this.#synced = true;
      for (const waiter of this.#syncWaiters.splice(0)) waiter();
    }
  }

  /** One WATCH; resolves when it ends normally, rejects on an error (GoneError for 410). */
  #watchOnce(): Promise<void> {
    this.stats.watches++;
    const base = this.#o.watchTimeoutSeconds ?? 300;
    if (this.#resumeFrom !== undefined) {
      this.#resourceVersion = this.#resumeFrom;
      this.#resumeFrom = undefined;
    }
    if (this.#interruptPending) {
      this.#interruptPending = false;
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      let controller: AbortController | undefined;
      const finish = (error?: unknown) => {
        if (settled) return;
        settled = true;
        this.#endWatch = undefined;
        controller?.abort();
        if (error) reject(error);
        else resolve();
      };
      this.#endWatch = () => finish();
      this.#watch
        .watch(
          `/api/v1/namespaces/${encodeURIComponent(this.#o.namespace)}/pods`,
          {
            labelSelector: this.#o.labelSelector,
            resourceVersion: this.#resourceVersion,
            allowWatchBookmarks: true,
            timeoutSeconds: Math.floor(base + Math.random() * base),
          },
          (phase: string, object: V1Pod & { code?: number; kind?: string }) => {
            if (settled) return;
            const rv = object?.metadata?.resourceVersion;
            switch (phase) {
              case 'ADDED':
              case 'MODIFIED': {
                const name = object.metadata?.name;
                if (name) this.#upsert(name, this.#o.project(object));
                break;
              }
              case 'DELETED': {
                const name = object.metadata?.name;
                if (name && this.#cache.has(name)) this.#remove(name, this.#o.project(object));
                break;
              }
              case 'BOOKMARK':
                break;
              case 'ERROR': {
                const reason = (object as { reason?: string }).reason;
                finish(
                  object?.code === 410
                    ? new GoneError('watch: resourceVersion too old')
                    : new Error(`watch error: ${JSON.stringify({ code: object?.code, reason })}`),
                );
                return;
              }
            }
            if (rv) this.#resourceVersion = rv;
          },
          (error: unknown) => finish(error ?? undefined),
        )
        .then(
          (c) => {
            controller = c;
            // Ended before the server answered (interrupted, stopped or failed): drop the connection now.
            if (settled || this.#stop.signal.aborted) c.abort();
          },
          (error: unknown) => finish(error),
        );
    });
  }

  async #run(): Promise<void> {
    const backoff = this.#o.backoff ?? { initialMs: 500, maxMs: 30_000 };
    let delay = backoff.initialMs;
    let needList = true;
    while (!this.#stop.signal.aborted) {
      try {
        if (needList) {
          await this.#list();
          needList = false;
        }
        const started = Date.now();
        await this.#watchOnce();
        // A watch that stayed up a while proves the connection healthy again.
        if (Date.now() - started > 10_000) delay = backoff.initialMs;
        continue;
      } catch (error) {
        if (this.#stop.signal.aborted) break;
        if (error instanceof GoneError || isGone(error)) {
          this.stats.relistsAfterGone++;
          this.#o.logger?.info({ namespace: this.#o.namespace }, 'pod watch expired (410 Gone); relisting');
          needList = true;
          continue;
        }
        this.stats.errors++;
        this.#o.logger?.warn(
          {
            namespace: this.#o.namespace,
            status: statusCodeOf(error),
            error: describeApiError(error),
            retryInMs: delay,
          },
          'pod list/watch failed; retrying',
        );
        needList = true;
        await this.#sleep(delay * (0.8 + Math.random() * 0.4), this.#stop.signal);
        delay = Math.min(backoff.maxMs, delay * 2);
      }
    }
  }
}
