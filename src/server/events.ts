/**
 * Live updates for the dashboard: the server publishes accepted webhook events, the core may publish runner and
 * scale-set changes, and `GET /api/v1/stream` sends them as Server-Sent Events. Payloads must be free of secrets;
 * subscribers get plain data.
 */
export interface FleetEvent {
  readonly type: string;
  readonly data: unknown;
  /** ms epoch */
  readonly at: number;
}

export type FleetEventListener = (event: FleetEvent) => void;

export class EventHub {
  readonly #listeners = new Set<FleetEventListener>();
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  publish(type: string, data: unknown): void {
    const event = { type, data, at: this.#now() };
    for (const listener of this.#listeners) {
      try {
        listener(event);
      } catch {
        // One broken subscriber (a closed stream) must not stop the others.
      }
    }
  }

  subscribe(listener: FleetEventListener): () => void {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  get subscribers(): number {
    return this.#listeners.size;
  }
}
