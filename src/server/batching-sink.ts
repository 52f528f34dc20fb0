/**
 * Group commit for webhooks. Every workflow_job must be durable before its 202, and a commit costs far more than
 * the event's own writes, so the webhooks that arrive together (in the same turn of the event loop, up to
 * `maxEvents`) are handed to the sink in one `acceptWorkflowJobs` call: one transaction. Each request waits for the
 * promise of its own event, which settles only after that call returned, that is after the commit.
 *
 * When a batch throws, its events are retried one by one, so one event the store refuses fails only its own request
 * (503), not the others of the batch; if the store itself is broken, each request fails as it would alone.
 */
import type { WebhookSink, WorkflowJobEvent } from '../core/ports.js';

/** A sink that can persist several events in one transaction (src/store's Store is one). */
export interface BatchWebhookSink extends WebhookSink {
  /** All or nothing; results in the order of `events`, deduplicated within the batch too. */
  acceptWorkflowJobs(events: readonly WorkflowJobEvent[]): readonly { readonly duplicate: boolean }[];
}

export function isBatchWebhookSink(sink: WebhookSink): sink is BatchWebhookSink {
  return typeof (sink as Partial<BatchWebhookSink>).acceptWorkflowJobs === 'function';
}

export interface BatchingSinkOptions {
  readonly sink: BatchWebhookSink;
  /** A batch is written at once when it holds this many events; default 256. */
  readonly maxEvents?: number;
  /** Runs the flush of a batch later; default setImmediate (after the I/O of the current turn is read). */
  readonly schedule?: (flush: () => void) => void;
}

interface Pending {
  readonly event: WorkflowJobEvent;
  resolve(result: { duplicate: boolean }): void;
  reject(error: unknown): void;
}

export const DEFAULT_BATCH_EVENTS = 256;

export class BatchingSink {
  readonly #sink: BatchWebhookSink;
  readonly #maxEvents: number;
  readonly #schedule: (flush: () => void) => void;
  #queue: Pending[] = [];
  #scheduled = false;

  constructor(options: BatchingSinkOptions) {
    this.#sink = options.sink;
    this.#maxEvents = Math.max(1, Math.trunc(options.maxEvents ?? DEFAULT_BATCH_EVENTS));
    this.#schedule = options.schedule ?? ((flush) => setImmediate(flush));
  }

  /** Events waiting for their batch to be written. */
  get pending(): number {
    return this.#queue.length;
  }

  /** Settles after the transaction holding this event committed (or failed: rejects with the store's error). */
  accept(event: WorkflowJobEvent): Promise<{ duplicate: boolean }> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ event, resolve, reject });
      if (this.#queue.length >= this.#maxEvents) this.flush();
      else if (!this.#scheduled) {
        this.#scheduled = true;
        this.#schedule(() => {
          this.#scheduled = false;
          this.flush();
        });
      }
    });
  }

  /** Writes what is queued now, in one call to the sink. */
  flush(): void {
    const batch = this.#queue;
    if (batch.length === 0) return;
    this.#queue = [];
    let results: readonly { readonly duplicate: boolean }[];
    try {
      results = this.#sink.acceptWorkflowJobs(batch.map((p) => p.event));
      if (results.length !== batch.length) {
        throw new Error(`sink answered ${results.length} results for ${batch.length} events`);
      }
    } catch (error) {
      if (batch.length === 1) batch[0]!.reject(error);
      else for (const p of batch) this.#acceptAlone(p);
      return;
    }
    for (let i = 0; i < batch.length; i++) batch[i]!.resolve({ duplicate: results[i]!.duplicate });
  }

  #acceptAlone(p: Pending): void {
    try {
      p.resolve({ duplicate: this.#sink.acceptWorkflowJob(p.event).duplicate });
    } catch (error) {
      p.reject(error);
    }
  }
}
