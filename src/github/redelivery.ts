/**
 * Recovery of lost webhooks. GitHub attempts a delivery once and never retries it, so an event sent while the
 * controller is down, restarting or unreachable is lost. A lost `in_progress` or `completed` is repaired by job status
 * checks, but a lost `queued` leaves a job the controller never hears of: no runner is ever created for it. GitHub
 * keeps every attempt in the App's deliveries API, so this scans it (at start and then periodically) and asks GitHub
 * to redeliver each event no attempt delivered, oldest first. A redelivery keeps the GUID (X-GitHub-Delivery) and the
 * receiver deduplicates by it, so asking for one that did arrive after all costs an API call, nothing more.
 *
 * It lists every delivery of the window, not `status=failure`: GitHub's failure filter is status codes 400-599, and
 * an attempt that got no answer at all (the controller was down) has status code 0.
 */
import type { Logger } from 'pino';
import type { GitHubClient, WebhookDelivery } from './client.js';
import { toGitHubError } from './errors.js';

export interface WebhookRedeliveryOptions {
  readonly github: Pick<GitHubClient, 'listWebhookDeliveries' | 'redeliverWebhook'>;
  readonly logger: Logger;
  readonly now?: () => number;
  /** Events worth recovering. Default: workflow_job. */
  readonly events?: readonly string[];
  /**
   * When this fleet last received a webhook (the store's newest delivery), or null. The first scan starts a little
   * before it (settle, overlap and two scan intervals: what an earlier process may not have scanned before it
   * stopped), not `lookbackMs` back, so a restart lists the deliveries of its downtime, not of the last hour.
   */
  readonly resumeFrom?: () => number | null;
  /** How far back the first scan looks at most (and when nothing was ever received). Default 1 h. */
  readonly lookbackMs?: number;
  /** A failed attempt younger than this is left for a later scan (GitHub waits 10 s for an answer). Default 15 s. */
  readonly settleMs?: number;
  /** Each scan also re-reads this much before the previous one's end, for clock skew. Default 10 s. */
  readonly overlapMs?: number;
  /** Redeliveries asked for per scan, at most; the rest wait for the next scan. Default 100. */
  readonly maxPerScan?: number;
  /** Redeliveries asked for per event by this process, at most. Default 3. */
  readonly maxAttempts?: number;
  /** Redelivery requests in flight at once. Default 4. */
  readonly concurrency?: number;
  readonly setTimeout?: (fn: () => void, ms: number) => unknown;
  readonly clearTimeout?: (handle: unknown) => void;
}

export interface RedeliveryScan {
  /** Deliveries listed in the window. */
  readonly listed: number;
  /** Events in the window that no attempt delivered (and are settled). */
  readonly lost: number;
  /** Redeliveries GitHub accepted. */
  readonly redelivered: number;
  /** Redeliveries GitHub refused or that failed. */
  readonly failed: number;
}

const delivered = (d: WebhookDelivery): boolean => d.statusCode >= 200 && d.statusCode <= 399;

export class WebhookRedelivery {
  readonly #o: WebhookRedeliveryOptions;
  readonly #now: () => number;
  readonly #log: Logger;
  /**
   * Start of the next scan's window (ms epoch, before the overlap): fixed by the first scan, then moved to what each
   * complete scan covered. Null before the first scan.
   */
  #windowStart: number | null = null;
  /** GUID -> redeliveries asked for, and when last. */
  readonly #asked = new Map<string, { count: number; at: number }>();
  #running: Promise<RedeliveryScan> | null = null;
  #timer: unknown = null;
  #intervalMs = 0;
  #stopped = false;
  #abort = new AbortController();

  constructor(options: WebhookRedeliveryOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
    this.#log = options.logger;
  }

  /** Scans now, then every `intervalMs` after the previous scan ends. */
  start(intervalMs: number): void {
    if (this.#stopped || this.#timer !== null) return;
    this.#intervalMs = intervalMs;
    const tick = (): void => {
      void this.scan()
        .catch(() => undefined)
        .finally(() => {
          if (this.#stopped) return;
          const set = this.#o.setTimeout ?? ((fn: () => void, ms: number) => setTimeout(fn, ms).unref());
          this.#timer = set(tick, intervalMs);
        });
    };
    tick();
  }

  /** Stops the schedule and aborts a scan in flight; resolves when it has ended. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer !== null) {
      (this.#o.clearTimeout ?? ((h) => clearTimeout(h as NodeJS.Timeout)))(this.#timer);
      this.#timer = null;
    }
    this.#abort.abort(new Error('stopping'));
    await this.#running?.catch(() => undefined);
  }

  /** One scan; concurrent calls share it. Rejects when the deliveries cannot be listed (logged). */
  scan(): Promise<RedeliveryScan> {
    this.#running ??= this.#scan().finally(() => {
      this.#running = null;
    });
    return this.#running;
  }

  async #scan(): Promise<RedeliveryScan> {
    const o = this.#o;
    const signal = this.#abort.signal;
    const now = this.#now();
    const settleMs = o.settleMs ?? 15_000;
    const overlapMs = o.overlapMs ?? 10_000;
    const settled = now - settleMs;
    // Fixed once: the store's last delivery moves on as redeliveries arrive, and must not drag the window along.
    this.#windowStart ??= this.#firstFrom(now, settleMs);
    const from = this.#windowStart - overlapMs;
    let deliveries: WebhookDelivery[];
    try {
      deliveries = await o.github.listWebhookDeliveries(from, signal);
    } catch (error) {
      const e = toGitHubError(error, 'GET /app/hook/deliveries', now);
      if (e.code !== 'aborted')
        this.#log.warn({ code: e.code, status: e.status }, 'listing webhook deliveries failed');
      throw e;
    }
    const events = new Set(o.events ?? ['workflow_job']);
    const attempts = new Map<string, WebhookDelivery[]>();
    for (const d of deliveries) {
      if (!events.has(d.event)) continue;
      const list = attempts.get(d.guid);
      if (list === undefined) attempts.set(d.guid, [d]);
      else list.push(d);
    }
    const maxAttempts = o.maxAttempts ?? 3;
    const lost: { guid: string; first: number; id: number }[] = [];
    for (const [guid, list] of attempts) {
      if (list.some(delivered)) continue;
      const newest = list.reduce((a, b) => (b.deliveredAt > a.deliveredAt ? b : a));
      if (newest.deliveredAt > settled) continue; // may still be on its way; a later scan looks again
      if ((this.#asked.get(guid)?.count ?? 0) >= maxAttempts) continue;
      lost.push({ guid, first: Math.min(...list.map((d) => d.deliveredAt)), id: newest.id });
    }
    // Oldest first: a job's `queued` before its `completed`, and jobs in the order GitHub queued them.
    lost.sort((a, b) => a.first - b.first || a.id - b.id);
    const batch = lost.slice(0, o.maxPerScan ?? 100);
    let redelivered = 0;
    let failed = 0;
    /** Oldest first attempt of an event GitHub would not redeliver this time: the next window must reach it. */
    let oldestRefused = Infinity;
    let next = 0;
    // A few at a time, in order: the oldest are asked for first.
    const worker = async (): Promise<void> => {
      while (next < batch.length && !signal.aborted) {
        const l = batch[next++]!;
        const asked = this.#asked.get(l.guid);
        this.#asked.set(l.guid, { count: (asked?.count ?? 0) + 1, at: now });
        try {
          await o.github.redeliverWebhook(l.id, signal);
          redelivered++;
        } catch (error) {
          failed++;
          oldestRefused = Math.min(oldestRefused, l.first);
          const e = toGitHubError(error, 'POST /app/hook/deliveries/{delivery_id}/attempts', now);
          if (e.code !== 'aborted') {
            this.#log.warn({ deliveryId: l.id, code: e.code, status: e.status }, 'redelivery refused');
          }
        }
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, o.concurrency ?? 4) }, worker));
    // A truncated batch leaves the window where it was, so the rest are found again next time; a refused
    // redelivery keeps its event in the window, to be asked for again (up to maxAttempts).
    if (batch.length === lost.length) this.#windowStart = Math.min(settled, oldestRefused);
    this.#forgetBefore(from);
    const result = { listed: deliveries.length, lost: lost.length, redelivered, failed };
    if (lost.length > 0) this.#log.info(result, 'asked GitHub to redeliver lost webhooks');
    else this.#log.debug(result, 'no lost webhooks');
    return result;
  }

  /** Start of the first scan's window: shortly before the last webhook received, never beyond the lookback. */
  #firstFrom(now: number, settleMs: number): number {
    const oldest = now - (this.#o.lookbackMs ?? 3_600_000);
    const last = this.#o.resumeFrom?.() ?? null;
    if (last === null) return oldest;
    return Math.max(oldest, Math.min(now, last) - settleMs - 2 * this.#intervalMs);
  }

  /** Events older than the window cannot come up again: their bookkeeping goes. */
  #forgetBefore(from: number): void {
    for (const [guid, asked] of this.#asked) if (asked.at < from) this.#asked.delete(guid);
  }
}
