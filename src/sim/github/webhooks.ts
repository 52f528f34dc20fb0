/**
 * App webhook deliveries: signed like GitHub (`X-Hub-Signature-256` = HMAC-SHA256 of the raw body), sent at most
 * once (GitHub does not retry a failed delivery), recorded for the deliveries API, and redeliverable through it
 * with the same GUID. Webhook faults (drop, duplicate, delay, reorder) apply here.
 */
import { createHmac } from 'node:crypto';
import type { Logger } from 'pino';
import type { Faults } from './faults.js';
import { guid } from './ids.js';

/** `sha256=<hex HMAC-SHA256 of the body>`: the value of X-Hub-Signature-256. */
export function signPayload(secret: string, body: string | Buffer): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

export interface DeliveryRecord {
  readonly id: number;
  readonly guid: string;
  deliveredAt: number;
  readonly redelivery: boolean;
  /** seconds */
  duration: number;
  status: string;
  statusCode: number;
  readonly event: string;
  readonly action: string | null;
  readonly installationId: number | null;
  readonly repositoryId: number | null;
  readonly url: string;
  readonly requestHeaders: Record<string, string>;
  readonly body: string;
  responseHeaders: Record<string, string> | null;
  responseBody: string | null;
  /** pending until the attempt ends */
  outcome: 'pending' | 'sent' | 'failed' | 'dropped';
}

export interface WebhookEvent {
  readonly event: string;
  readonly action: string | null;
  readonly installationId: number | null;
  readonly repositoryId: number | null;
  readonly payload: unknown;
}

export interface WebhookStats {
  sent: number;
  failed: number;
  dropped: number;
}

export class WebhookDispatcher {
  readonly hookId: number;
  readonly #appId: number;
  readonly #fetch: typeof fetch;
  readonly #now: () => number;
  readonly #random: () => number;
  readonly #faults: () => Readonly<Faults>;
  readonly #concurrency: number;
  readonly #timeoutMs: number;
  readonly #max: number;
  readonly #logger: Logger | null;
  #url: string | null;
  #secret: string | null;
  #records = new Map<number, DeliveryRecord>();
  #nextId = 90_000_000_001;
  #queue: DeliveryRecord[] = [];
  #inFlight = 0;
  #timers = new Set<NodeJS.Timeout>();
  #aborts = new Set<AbortController>();
  #idleWaiters: (() => void)[] = [];
  #closed = false;
  stats: WebhookStats = { sent: 0, failed: 0, dropped: 0 };

  constructor(options: {
    appId: number;
    url: string | null;
    secret: string | null;
    fetch: typeof fetch;
    now: () => number;
    random: () => number;
    faults: () => Readonly<Faults>;
    concurrency: number;
    timeoutMs: number;
    maxDeliveries: number;
    logger: Logger | null;
  }) {
    this.hookId = 470_000_001;
    this.#appId = options.appId;
    this.#url = options.url;
    this.#secret = options.secret;
    this.#fetch = options.fetch;
    this.#now = options.now;
    this.#random = options.random;
    this.#faults = options.faults;
    this.#concurrency = Math.max(1, options.concurrency);
    this.#timeoutMs = options.timeoutMs;
    this.#max = options.maxDeliveries;
    this.#logger = options.logger;
  }

  get url(): string | null {
    return this.#url;
  }

  get secret(): string | null {
    return this.#secret;
  }

  configure(url: string | null, secret?: string | null): void {
    this.#url = url;
    if (secret !== undefined) this.#secret = secret;
  }

  /** Sends an event to the configured URL (nothing when none is set, as GitHub with no webhook URL). */
  emit(event: WebhookEvent): void {
    if (!this.#url || this.#closed) return;
    const body = JSON.stringify(event.payload);
    const faults = this.#faults();
    this.#dispatch(this.#record(event, body, guid(), false), faults);
    if (faults.webhookDuplicateRate > 0 && this.#random() < faults.webhookDuplicateRate) {
      // GitHub occasionally emits the same event twice as two deliveries; receivers dedupe on content too.
      this.#dispatch(this.#record(event, body, guid(), false), faults);
    }
  }

  /** POST /app/hook/deliveries/{id}/attempts: a new attempt with the same GUID. */
  redeliver(id: number): DeliveryRecord | undefined {
    const original = this.#records.get(id);
    if (!original || !this.#url) return undefined;
    const record = this.#record(
      {
        event: original.event,
        action: original.action,
        installationId: original.installationId,
        repositoryId: original.repositoryId,
        payload: null,
      },
      original.body,
      original.guid,
      true,
    );
    this.#dispatch(record, { ...this.#faults(), webhookDuplicateRate: 0 });
    return record;
  }

  get(id: number): DeliveryRecord | undefined {
    return this.#records.get(id);
  }

  /**
   * Newest first, like GitHub; `beforeId` continues a cursor. `status` filters by GitHub's documented ranges of
   * `status_code`: success 200-399, failure 400-599. A delivery that got no answer at all (status code 0: refused,
   * timed out) is in neither, so a receiver that was down cannot find what it missed with `status=failure`.
   */
  list(options: { limit: number; beforeId?: number; status?: 'success' | 'failure' }): DeliveryRecord[] {
    const out: DeliveryRecord[] = [];
    const all = [...this.#records.values()];
    for (let i = all.length - 1; i >= 0 && out.length < options.limit; i--) {
      const r = all[i]!;
      if (options.beforeId !== undefined && r.id >= options.beforeId) continue;
      if (options.status === 'success' && !(r.statusCode >= 200 && r.statusCode <= 399)) continue;
      if (options.status === 'failure' && !(r.statusCode >= 400 && r.statusCode <= 599)) continue;
      out.push(r);
    }
    return out;
  }

  /** Resolves once nothing is queued, delayed or in flight. */
  idle(): Promise<void> {
    if (this.#isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  clear(): void {
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    for (const a of this.#aborts) a.abort();
    this.#queue = [];
    this.#records.clear();
    this.stats = { sent: 0, failed: 0, dropped: 0 };
    this.#checkIdle();
  }

  close(): void {
    this.#closed = true;
    this.clear();
  }

  #record(event: WebhookEvent, body: string, deliveryGuid: string, redelivery: boolean): DeliveryRecord {
    const headers: Record<string, string> = {
      Accept: '*/*',
      'Content-Type': 'application/json',
      'User-Agent': 'GitHub-Hookshot/runner-fleet-sim',
      'X-GitHub-Delivery': deliveryGuid,
      'X-GitHub-Event': event.event,
      'X-GitHub-Hook-ID': String(this.hookId),
      'X-GitHub-Hook-Installation-Target-ID': String(this.#appId),
      'X-GitHub-Hook-Installation-Target-Type': 'integration',
    };
    if (this.#secret) {
      headers['X-Hub-Signature'] = `sha1=${createHmac('sha1', this.#secret).update(body).digest('hex')}`;
      headers['X-Hub-Signature-256'] = signPayload(this.#secret, body);
    }
    const record: DeliveryRecord = {
      id: this.#nextId++,
      guid: deliveryGuid,
      deliveredAt: this.#now(),
      redelivery,
      duration: 0,
      status: 'Pending',
      statusCode: 0,
      event: event.event,
      action: event.action,
      installationId: event.installationId,
      repositoryId: event.repositoryId,
      url: this.#url ?? '',
      requestHeaders: headers,
      body,
      responseHeaders: null,
      responseBody: null,
      outcome: 'pending',
    };
    this.#records.set(record.id, record);
    if (this.#records.size > this.#max) {
      const oldest = this.#records.keys().next().value;
      if (oldest !== undefined) this.#records.delete(oldest);
    }
    return record;
  }

  #dispatch(record: DeliveryRecord, faults: Readonly<Faults>): void {
    if (faults.webhookDropRate > 0 && this.#random() < faults.webhookDropRate) {
      record.status = 'Dropped by fault injection';
      record.outcome = 'dropped';
      this.stats.dropped++;
      return;
    }
    const delay = faults.webhookReorder
      ? this.#random() * Math.max(faults.webhookDelayMs, 100)
      : faults.webhookDelayMs;
    if (delay <= 0) {
      this.#enqueue(record);
      return;
    }
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      this.#enqueue(record);
    }, delay);
    this.#timers.add(timer);
  }

  #enqueue(record: DeliveryRecord): void {
    this.#queue.push(record);
    this.#pump();
  }

  #pump(): void {
    while (this.#inFlight < this.#concurrency && this.#queue.length > 0) {
      const record = this.#queue.shift()!;
      this.#inFlight++;
      void this.#send(record).finally(() => {
        this.#inFlight--;
        this.#pump();
        this.#checkIdle();
      });
    }
  }

  async #send(record: DeliveryRecord): Promise<void> {
    const started = this.#now();
    record.deliveredAt = started;
    const abort = new AbortController();
    this.#aborts.add(abort);
    const timer = setTimeout(() => abort.abort(new Error('timed out')), this.#timeoutMs);
    try {
      const response = await this.#fetch(record.url, {
        method: 'POST',
        headers: record.requestHeaders,
        body: record.body,
        signal: abort.signal,
      });
      const text = await response.text();
      record.statusCode = response.status;
      record.responseHeaders = Object.fromEntries(response.headers);
      record.responseBody = text.slice(0, 2048);
      const ok = response.ok;
      record.status = ok ? 'OK' : `Invalid HTTP Response: ${response.status}`;
      record.outcome = ok ? 'sent' : 'failed';
      if (ok) this.stats.sent++;
      else this.stats.failed++;
    } catch (error) {
      record.statusCode = 0;
      record.status = abort.signal.aborted ? 'timed out' : 'failed to connect to host';
      record.outcome = 'failed';
      this.stats.failed++;
      this.#logger?.debug({ delivery: record.guid, err: String(error) }, 'webhook delivery failed');
    } finally {
      clearTimeout(timer);
      this.#aborts.delete(abort);
      record.duration = (this.#now() - started) / 1000;
    }
  }

  #isIdle(): boolean {
    return this.#queue.length === 0 && this.#inFlight === 0 && this.#timers.size === 0;
  }

  #checkIdle(): void {
    if (!this.#isIdle()) return;
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const w of waiters) w();
  }
}
