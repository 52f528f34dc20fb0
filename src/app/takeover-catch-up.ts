/**
 * What a replica learns when it becomes the leader, before it acts.
 *
 * Every replica keeps its own store (the Helm chart gives each pod an emptyDir), and webhooks reach only the ready
 * replica, the leader. A new leader therefore starts with an empty or stale store: jobs whose `queued` webhook the
 * previous leader received, but which it had not served when it died (waiting for capacity, backing off), would be
 * unknown to it and never get a runner. GitHub keeps every delivery of the App's webhook, payload included, so the
 * new leader reads the workflow_job deliveries of the lookback window and feeds each event to its store in the order
 * GitHub sent them, before its reconciler starts: the store ends up as if it had received them itself. Deliveries
 * it already has (same GUID, or same job and action) are duplicates and change nothing.
 *
 * This is done before the reconciler runs, not by asking GitHub to redeliver: redeliveries would go to the webhook
 * URL (the Service, which routes only to a ready replica) and could arrive in any order, and a `queued` that
 * overtakes its job's `completed` would buy a finished job a runner.
 *
 * Cost: one GET per event in the window (three per job: queued, in_progress, completed), once per takeover. They go
 * through the controller's GitHub client, so they are counted, paced and retried like every other call.
 */
import type { Logger } from 'pino';
import type { WebhookSink } from '../core/ports.js';
import type { GitHubClient, WebhookDelivery } from '../github/index.js';
import { parseWorkflowJobEvent } from '../github/index.js';
import type { Controller } from './compose.js';
import { mapLimit } from '../lib/async.js';

export interface CatchUpOptions {
  readonly github: Pick<GitHubClient, 'listWebhookDeliveries' | 'getWebhookDelivery'>;
  readonly sink: WebhookSink;
  readonly logger: Logger;
  /** How far back to read. Default 1 h. */
  readonly lookbackMs?: number;
  /** Payloads fetched at once. Default 8. */
  readonly concurrency?: number;
  readonly now?: () => number;
  readonly signal?: AbortSignal;
}

export interface CatchUpResult {
  /** workflow_job events (distinct GUIDs) in the window. */
  readonly events: number;
  /** Recorded as new by the store. */
  readonly recorded: number;
  readonly duplicates: number;
  /** Payloads that could not be read or parsed. */
  readonly failed: number;
}

/** One entry per event: its first attempt (the order GitHub sent events in). */
function firstAttempts(deliveries: readonly WebhookDelivery[]): WebhookDelivery[] {
  const first = new Map<string, WebhookDelivery>();
  for (const d of deliveries) {
    if (d.event !== 'workflow_job') continue;
    const seen = first.get(d.guid);
    if (
      seen === undefined ||
      d.deliveredAt < seen.deliveredAt ||
      (d.deliveredAt === seen.deliveredAt && d.id < seen.id)
    )
      first.set(d.guid, d);
  }
  return [...first.values()].sort((a, b) => a.deliveredAt - b.deliveredAt || a.id - b.id);
}

/** Reads the window's workflow_job events and records them in order. Rejects if the deliveries cannot be listed. */
export async function catchUpOnTakeover(options: CatchUpOptions): Promise<CatchUpResult> {
  const now = options.now ?? Date.now;
  const signal = options.signal ?? new AbortController().signal;
  const since = now() - (options.lookbackMs ?? 3_600_000);
  const events = firstAttempts(await options.github.listWebhookDeliveries(since, signal));
  const payloads = await mapLimit(events, options.concurrency ?? 8, async (d) => {
    try {
      return (await options.github.getWebhookDelivery(d.id, signal)).payload;
    } catch {
      return undefined;
    }
  });
  let recorded = 0;
  let duplicates = 0;
  let failed = 0;
  events.forEach((d, i) => {
    const payload = payloads[i];
    if (payload === undefined || payload === null) {
      failed++;
      return;
    }
    try {
      const result = options.sink.acceptWorkflowJob(parseWorkflowJobEvent(payload, d.guid));
      if (result.duplicate) duplicates++;
      else recorded++;
    } catch (error) {
      failed++;
      options.logger.warn(
        { deliveryId: d.id, err: error },
        'takeover catch-up: a delivery could not be recorded',
      );
    }
  });
  const result = { events: events.length, recorded, duplicates, failed };
  options.logger.info(result, 'takeover catch-up: recorded the webhook events of the lookback window');
  return result;
}

/**
 * A new leader's first step: the previous leader's webhook events, read with the controller's own GitHub client and
 * recorded in its store. Never rejects: acting without them beats not acting, and later events and the periodic
 * redelivery still come.
 */
export async function catchUpAsLeader(
  controller: Pick<Controller, 'github' | 'store' | 'logger'> & Partial<Pick<Controller, 'webhookSink'>>,
  signal: AbortSignal,
): Promise<CatchUpResult | null> {
  const log = controller.logger.child({ component: 'takeover' });
  if (!controller.github.canRedeliver) {
    log.warn(
      'personal access token: the webhook deliveries cannot be read, so jobs queued while the previous leader ' +
        'was in charge are unknown to this one until their next event',
    );
    return null;
  }
  try {
    return await catchUpOnTakeover({
      github: controller.github,
      // Jobs of `discovery: scale-set` scale sets come from their message queues, not from webhook deliveries.
      sink: controller.webhookSink ?? controller.store,
      logger: log,
      signal,
    });
  } catch (error) {
    log.error({ err: error }, 'takeover catch-up failed; starting without it');
    return null;
  }
}
