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
 *
 * Each delivery is read about once. GitHub lists deliveries newest first, by id, 100 a page; a scan pages only down
 * to the newest delivery below which an earlier scan found everything settled (delivered, redelivered, or given up
 * on), so a burst of webhooks is read once and not again by each later scan whose time window still covers it. The
 * time window (settle and overlap before the previous scan's end) remains the outer bound: for the first scan, and
 * for whatever an earlier scan left open (attempts still in flight, refused or capped redeliveries).
 *
 * While webhooks are arriving and the previous scan found nothing lost and no recent attempt answered with an error,
 * a scheduled scan may rest once (`restScans`): the next one still pages down to the same point (below any attempt
 * still unsettled), so nothing is skipped, only found at most one interval later.
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
  /**
   * Scheduled scans skipped in a row at most while webhooks are arriving (the store received one since the previous
   * scan began, `resumeFrom`) and the previous scan found nothing lost and no recent attempt answered with an error.
   * Default 1: while healthy, every other one.
   */
  readonly restScans?: number;
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
  /**
   * Id of the newest delivery such that every one listed at or below it, back to the window's start, was found
   * settled by a scan: later scans page down to it, not further. Null before the first scan.
   */
  #caughtUpTo: number | null = null;
  /** When the previous scan began, and whether it found nothing wrong (nothing lost, no error answered). */
  #previous: { at: number; clean: boolean } | null = null;
  /** Scheduled scans skipped in a row. */
  #rested = 0;
  /** GUID -> redeliveries asked for, when last, and when its first attempt seen was. */
  readonly #asked = new Map<string, { count: number; at: number; first: number }>();
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
    const set = this.#o.setTimeout ?? ((fn: () => void, ms: number) => setTimeout(fn, ms).unref());
    const tick = (): void => {
      if (this.#stopped) return;
      if (this.#mayRest()) {
        this.#rested++;
        this.#timer = set(tick, intervalMs);
        return;
      }
      this.#rested = 0;
      void this.scan()
        .catch(() => undefined)
        .finally(() => {
          if (this.#stopped) return;
          this.#timer = set(tick, intervalMs);
        });
    };
    tick();
  }

  /** A scheduled scan may rest: webhooks arrive, the previous scan found nothing wrong, it has not rested enough. */
  #mayRest(): boolean {
    const previous = this.#previous;
    if (previous === null || !previous.clean || this.#rested >= (this.#o.restScans ?? 1)) return false;
    const last = this.#o.resumeFrom?.() ?? null;
    return last !== null && last >= previous.at;
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
    const caughtUpTo = this.#caughtUpTo;
    let deliveries: WebhookDelivery[];
    try {
      deliveries = await o.github.listWebhookDeliveries(from, signal, caughtUpTo ?? undefined);
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
    const lost: { guid: string; first: number; id: number; lowest: number }[] = [];
    /** Lowest id of an attempt this scan leaves open: the next scan must page down to it. */
    let open = Infinity;
    /** A recent attempt was answered with an error: the next scheduled scan does not rest. */
    let refusedRecently = false;
    for (const [guid, list] of attempts) {
      if (list.some(delivered)) continue;
      const newest = list.reduce((a, b) => (b.deliveredAt > a.deliveredAt ? b : a));
      const lowest = Math.min(...list.map((d) => d.id));
      if (newest.deliveredAt > settled) {
        open = Math.min(open, lowest); // may still be on its way; a later scan looks again
        if (list.some((d) => d.statusCode !== 0)) refusedRecently = true;
        continue;
      }
      const asked = this.#asked.get(guid);
      if ((asked?.count ?? 0) >= maxAttempts) continue;
      // (an earlier attempt may lie below the point this scan paged down to; the first one seen counts)
      const first = Math.min(asked?.first ?? Infinity, ...list.map((d) => d.deliveredAt));
      lost.push({ guid, first, id: newest.id, lowest });
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
        this.#asked.set(l.guid, { count: (asked?.count ?? 0) + 1, at: now, first: l.first });
        try {
          await o.github.redeliverWebhook(l.id, signal);
          redelivered++;
        } catch (error) {
          failed++;
          oldestRefused = Math.min(oldestRefused, l.first);
          open = Math.min(open, l.lowest);
          const e = toGitHubError(error, 'POST /app/hook/deliveries/{delivery_id}/attempts', now);
          if (e.code !== 'aborted') {
            this.#log.warn({ deliveryId: l.id, code: e.code, status: e.status }, 'redelivery refused');
          }
        }
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, o.concurrency ?? 4) }, worker));
    // Those a truncated batch did not reach, and those asked for in a scan that was aborted, stay open too.
    for (const l of lost.slice(signal.aborted ? 0 : batch.length)) open = Math.min(open, l.lowest);
    // A truncated batch leaves the window where it was, so the rest are found again next time; a refused
    // redelivery keeps its event in the window, to be asked for again (up to maxAttempts).
    if (batch.length === lost.length) this.#windowStart = Math.min(settled, oldestRefused);
    // Everything listed below the lowest open attempt is settled: later scans page down to there, no further.
    for (const d of deliveries) {
      if (d.id < open && d.id > (this.#caughtUpTo ?? -Infinity)) this.#caughtUpTo = d.id;
    }
    // An attempt with no answer yet is usually in flight while webhooks arrive: the next scan pages down to it
    // whether this one rests or not. A loss, or an error answered, is a reason not to rest.
    this.#previous = { at: now, clean: lost.length === 0 && !refusedRecently };
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
