/**
 * A small concurrency and spacing limiter with the shape @octokit/plugin-throttling expects of its limiter groups
 * (`group.key(id).schedule(options, fn, ...args)`). The plugin's built-in groups are module-wide singletons that
 * space every write one second apart; a runner fleet creating hundreds of JIT runners in a burst needs its own,
 * per-client, configurable limits instead. Retries (weight 0) bypass the queue, as they do in the plugin.
 */

interface JobOptions {
  readonly priority?: number;
  readonly weight?: number;
}

type Task = () => void;

export interface PacerOptions {
  readonly maxConcurrent: number;
  /** Minimum ms between two starts; 0 for none. */
  readonly minIntervalMs: number;
}

export class Pacer {
  readonly #maxConcurrent: number;
  readonly #minIntervalMs: number;
  readonly #queue: Task[] = [];
  #running = 0;
  #lastStart = 0;
  #timer: NodeJS.Timeout | null = null;

  constructor(options: PacerOptions) {
    this.#maxConcurrent = Math.max(1, options.maxConcurrent);
    this.#minIntervalMs = Math.max(0, options.minIntervalMs);
  }

  /** The plugin keys limiters by client id; this pacer already belongs to one client. */
  key(_id?: string): this {
    return this;
  }

  schedule<T>(...args: unknown[]): Promise<T> {
    const options: JobOptions = typeof args[0] === 'function' ? {} : ((args.shift() as JobOptions) ?? {});
    const fn = args.shift() as (...a: unknown[]) => T | Promise<T>;
    if (options.weight === 0) return Promise.resolve().then(() => fn(...args));
    return new Promise<T>((resolve, reject) => {
      this.#queue.push(() => {
        this.#running += 1;
        this.#lastStart = Date.now();
        Promise.resolve()
          .then(() => fn(...args))
          .then(resolve, reject)
          .finally(() => {
            this.#running -= 1;
            this.#drain();
          });
      });
      this.#drain();
    });
  }

  get pending(): number {
    return this.#queue.length;
  }

  #drain(): void {
    while (this.#queue.length > 0 && this.#running < this.#maxConcurrent) {
      const wait = this.#lastStart + this.#minIntervalMs - Date.now();
      if (this.#minIntervalMs > 0 && wait > 0) {
        if (!this.#timer) {
          this.#timer = setTimeout(() => {
            this.#timer = null;
            this.#drain();
          }, wait);
        }
        return;
      }
      this.#queue.shift()?.();
    }
  }
}

type FailedListener = (
  error: unknown,
  info: { readonly args: unknown[]; readonly options: JobOptions; readonly retryCount: number },
) => unknown;

/**
 * The throttling plugin runs every request through a `retryLimiter` and retries after rate limits by answering that
 * limiter's `failed` event with a wait in ms (Bottleneck's protocol). Its default, a Bottleneck with no limits,
 * still hops through about four zero-delay timers per request: 4.5 ms before every GitHub call, a third of a JIT
 * runner's whole create latency. This one runs the job at once and keeps the protocol: on a failure it asks the
 * `failed` listeners, waits what the first one answers (then runs the job again, retryCount + 1) or rethrows.
 */
export class RetryLimiter {
  readonly #listeners: FailedListener[] = [];
  readonly #sleep: (ms: number) => Promise<void>;

  constructor(sleep: (ms: number) => Promise<void> = (ms) => new Promise((r) => setTimeout(r, ms))) {
    this.#sleep = sleep;
  }

  on(event: string, listener: FailedListener): void {
    if (event === 'failed') this.#listeners.push(listener);
  }

  async schedule<T>(...args: unknown[]): Promise<T> {
    const options: JobOptions = typeof args[0] === 'function' ? {} : ((args.shift() as JobOptions) ?? {});
    const fn = args.shift() as (...a: unknown[]) => T | Promise<T>;
    for (let retryCount = 0; ; retryCount++) {
      try {
        return await fn(...args);
      } catch (error) {
        const answers = await Promise.all(
          this.#listeners.map(async (l) => {
            try {
              return await l(error, { args, options, retryCount });
            } catch {
              return undefined;
            }
          }),
        );
        const wait = answers.find((a) => a !== undefined && a !== null);
        if (wait === undefined) throw error;
        await this.#sleep(Math.max(0, Math.trunc(Number(wait)) || 0));
      }
    }
  }
}
