/** A bounded-concurrency task pool: at most `limit` tasks run at once, the rest wait in FIFO order. */
export class Pool {
  readonly #limit: number;
  #running = 0;
  readonly #queue: (() => void)[] = [];
  #idleWaiters: (() => void)[] = [];

  constructor(limit: number) {
    if (!Number.isInteger(limit) || limit < 1)
      throw new RangeError(`pool limit must be a positive integer, got ${limit}`);
    this.#limit = limit;
  }

  /** Tasks queued or running. */
  get size(): number {
    return this.#running + this.#queue.length;
  }

  run<T>(task: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const start = (): void => {
        this.#running++;
        let p: Promise<T>;
        try {
          p = task();
        } catch (err) {
          p = Promise.reject(err as Error);
        }
        p.then(resolve, reject).finally(() => {
          this.#running--;
          const next = this.#queue.shift();
          if (next !== undefined) next();
          else if (this.#running === 0) this.#notifyIdle();
        });
      };
      if (this.#running < this.#limit) start();
      else this.#queue.push(start);
    });
  }

  idle(): Promise<void> {
    if (this.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  #notifyIdle(): void {
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const w of waiters) w();
  }
}
