/**
 * The listener of one `discovery: scale-set` scale set: GitHub's runner scale set protocol instead of webhooks.
 * It finds or creates the runner scale set, opens a message session and long-polls its queue. Each message's job
 * items become the same job records a `workflow_job` webhook writes (JobAvailable/JobAssigned: queued, JobStarted:
 * in_progress, JobCompleted: completed), offered jobs are acquired, and only then, with all of it durable in the
 * store, is the message acknowledged: a crash before the acknowledgement means the message comes again, and the
 * store's deduplication makes the repeat harmless. A message is a hint: the reconciler is woken and plans from the
 * store and its own observations, as for webhooks; the statistics are kept for the planner: assigned jobs vouch for
 * jobs recorded before a restart, and jobs assigned and not started are a floor for the waiting ones.
 *
 * Sessions: a 409 "already has an active session" (a previous listener's session that has not expired, e.g. after
 * a kill) is retried with a growing delay and reported (log and event), never a crash; a 401 from the queue refreshes
 * the session; stop() deletes it. Only the leader runs listeners: they start with the controller's start().
 */
import { hostname } from 'node:os';
import type { ScaleSetConfig } from '../core/fleet-config.js';
import type { WorkflowJobEvent } from '../core/ports.js';
import type { FleetStore } from '../core/store-port.js';
import { sleepUnlessAborted } from '../lib/async.js';
import {
  ActionsServiceError,
  QueueUnauthorizedError,
  SessionConflictError,
} from '../github/actions-service.js';
import type {
  ActionsServiceClient,
  JobMessage,
  ScaleSetMessage,
  ScaleSetSession,
  ScaleSetStatistics,
} from '../github/actions-service.js';
import type { Logger } from '../telemetry/index.js';

export interface ScaleSetListenerOptions {
  readonly set: ScaleSetConfig;
  readonly client: ActionsServiceClient;
  readonly store: Pick<FleetStore, 'acceptWorkflowJob' | 'recordEvent'>;
  /** Tells the store's routing which scale set a job of this listener belongs to (before it is recorded). */
  readonly claim: (jobId: number, scaleSet: string) => void;
  readonly wake: (scaleSet: string) => void;
  readonly logger: Logger;
  /** The session's owner name; default `<hostname>-<pid>`. */
  readonly ownerName?: string;
  /** First retry delay after a failure (doubled per failure up to `maxRetryMs`); default 1 s. */
  readonly retryBaseMs?: number;
  /** Longest retry delay; default 30 s (what actions-runner-controller waits between session attempts). */
  readonly maxRetryMs?: number;
}

export interface ScaleSetListenerStatus {
  readonly scaleSet: string;
  readonly scaleSetId: number | null;
  readonly session: boolean;
  readonly statistics: ScaleSetStatistics | null;
  /** Session conflicts met in a row (0 once a session is open). */
  readonly conflicts: number;
  readonly lastError: string | null;
}

const CONCLUSIONS: Record<string, string> = {
  succeeded: 'success',
  success: 'success',
  failed: 'failure',
  failure: 'failure',
  canceled: 'cancelled',
  cancelled: 'cancelled',
  skipped: 'skipped',
};

const time = (iso: string | null | undefined): number | null => {
  if (typeof iso !== 'string' || iso === '' || iso.startsWith('0001-')) return null;
  const ms = Date.parse(iso);
  return Number.isFinite(ms) ? ms : null;
};

/** The `workflow_job`-shaped event of one message item (null for a type this controller does not act on). */
export function eventOfItem(item: JobMessage, deliveryId: string): WorkflowJobEvent | null {
  const action =
    item.messageType === 'JobAvailable' || item.messageType === 'JobAssigned'
      ? 'queued'
      : item.messageType === 'JobStarted'
        ? 'in_progress'
        : item.messageType === 'JobCompleted'
          ? 'completed'
          : null;
  if (action === null || !Number.isSafeInteger(item.runnerRequestId) || item.runnerRequestId <= 0)
    return null;
  const completed = action === 'completed';
  return {
    deliveryId,
    action,
    installationId: null,
    job: {
      // The service names a job by its runner request id; the REST job id is not in the message.
      id: item.runnerRequestId,
      runId: Number.isSafeInteger(item.workflowRunId) ? item.workflowRunId : 0,
      owner: String(item.ownerName ?? ''),
      repo: String(item.repositoryName ?? ''),
      labels: Array.isArray(item.requestLabels) ? item.requestLabels.map(String) : [],
      status: action,
      conclusion: completed
        ? (CONCLUSIONS[String(item.result ?? '').toLowerCase()] ?? String(item.result))
        : null,
      runnerId: typeof item.runnerId === 'number' && item.runnerId > 0 ? item.runnerId : null,
      runnerName: typeof item.runnerName === 'string' && item.runnerName !== '' ? item.runnerName : null,
      createdAt: time(item.queueTime),
      startedAt: action === 'queued' ? null : time(item.runnerAssignTime),
      completedAt: completed ? time(item.finishTime) : null,
    },
  };
}

export class ScaleSetListener {
  readonly #o: ScaleSetListenerOptions;
  readonly #log: Logger;
  readonly #abort = new AbortController();
  #running: Promise<void> | null = null;
  #scaleSetId: number | null = null;
  #session: ScaleSetSession | null = null;
  #statistics: ScaleSetStatistics | null = null;
  #conflicts = 0;
  #lastError: string | null = null;
  #lastMessageId = 0;

  constructor(options: ScaleSetListenerOptions) {
    this.#o = options;
    this.#log = options.logger.child({ component: 'scale-set-listener', scaleSet: options.set.name });
  }

  get name(): string {
    return this.#o.set.name;
  }

  /** The runner scale set's id once found or created (generatejitconfig needs it). */
  get scaleSetId(): number | null {
    return this.#scaleSetId;
  }

  /** Jobs assigned to the scale set (running ones included) per the last statistics of a live session. */
  assignedJobs(): number | undefined {
    return this.#session === null ? undefined : this.#statistics?.totalAssignedJobs;
  }

  /** Jobs assigned to the scale set and not yet started, per the last statistics of a live session. */
  waitingJobs(): number | undefined {
    const s = this.#session === null ? null : this.#statistics;
    return s === null ? undefined : Math.max(0, s.totalAssignedJobs - s.totalRunningJobs);
  }

  status(): ScaleSetListenerStatus {
    return {
      scaleSet: this.#o.set.name,
      scaleSetId: this.#scaleSetId,
      session: this.#session !== null,
      statistics: this.#statistics,
      conflicts: this.#conflicts,
      lastError: this.#lastError,
    };
  }

  /** The scale set's id, finding or creating it first when the listener has not yet (a runner create may ask). */
  async ensureScaleSet(signal?: AbortSignal): Promise<number> {
    if (this.#scaleSetId !== null) return this.#scaleSetId;
    const set = this.#o.set;
    this.#scaleSetId = await this.#o.client.findOrCreateScaleSet(
      { name: set.name, runnerGroup: set.runnerGroup, labels: set.labels },
      signal,
    );
    return this.#scaleSetId;
  }

  start(): void {
    this.#running ??= this.#run().catch((error: unknown) => {
      this.#log.error({ err: error }, 'scale set listener ended');
    });
  }

  /** Ends the long poll and deletes the session (within `ms`). */
  async stop(ms = 2_000): Promise<void> {
    this.#abort.abort();
    await this.#running;
    const session = this.#session;
    const id = this.#scaleSetId;
    this.#session = null;
    if (session === null || id === null) return;
    try {
      await this.#o.client.deleteSession(
        id,
        session.sessionId,
        AbortSignal.timeout(Math.max(1, Math.round(ms))),
      );
      this.#log.info({ session: session.sessionId }, 'message session deleted');
    } catch (error) {
      this.#log.warn({ err: error }, 'could not delete the message session; it expires on its own');
    }
  }

  async #run(): Promise<void> {
    const signal = this.#abort.signal;
    let failures = 0;
    while (!signal.aborted) {
      try {
        const id = await this.ensureScaleSet(signal);
        if (this.#session === null) await this.#openSession(id, signal);
        const session = this.#session!;
        const message = await this.#o.client.getMessage(
          session,
          this.#lastMessageId,
          this.#o.set.max,
          signal,
        );
        if (message !== null) {
          await this.#handle(id, session, message, signal);
          this.#lastMessageId = message.messageId;
        }
        failures = 0;
        this.#lastError = null;
      } catch (error) {
        if (signal.aborted) break;
        const delay = await this.#onError(error, failures);
        if (delay > 0) failures++;
        await sleep(delay, signal);
      }
    }
  }

  async #openSession(id: number, signal: AbortSignal): Promise<void> {
    const session = await this.#o.client.createSession(
      id,
      this.#o.ownerName ?? `${hostname()}-${process.pid}`,
      signal,
    );
    this.#session = session;
    this.#lastMessageId = 0;
    if (this.#conflicts > 0)
      this.#log.info({ conflicts: this.#conflicts }, 'message session opened after the stale one expired');
    else this.#log.info({ scaleSetId: id, session: session.sessionId }, 'message session opened');
    this.#conflicts = 0;
    this.#setStatistics(session.statistics);
  }

  /** What a failure means; returns how long to wait before the next attempt. */
  async #onError(error: unknown, failures: number): Promise<number> {
    const base = this.#o.retryBaseMs ?? 1_000;
    const max = this.#o.maxRetryMs ?? 30_000;
    const backoff = (n: number) => Math.min(max, base * 2 ** Math.min(n, 16));
    this.#lastError = (error as Error).message;
    if (error instanceof QueueUnauthorizedError && this.#session !== null && this.#scaleSetId !== null) {
      try {
        this.#session = await this.#o.client.refreshSession(
          this.#scaleSetId,
          this.#session.sessionId,
          this.#abort.signal,
        );
        this.#log.info('message queue token refreshed');
        return 0;
      } catch (refreshError) {
        this.#log.warn({ err: refreshError }, 'session refresh failed; opening a new session');
        this.#session = null;
        return backoff(failures);
      }
    }
    if (error instanceof SessionConflictError) {
      this.#conflicts++;
      const delay = backoff(this.#conflicts - 1);
      // Reported, not fatal: the stale session expires and the next attempt succeeds.
      this.#log.warn(
        { attempt: this.#conflicts, retryInMs: delay, reason: error.message },
        'the runner scale set already has an active session (a previous listener that has not expired); retrying',
      );
      if (this.#conflicts === 1 || this.#conflicts % 10 === 0) {
        try {
          this.#o.store.recordEvent({
            kind: 'registration',
            scaleSet: this.#o.set.name,
            event: 'session-conflict',
            reason: `another message session is active; retry ${this.#conflicts} in ${Math.round(delay / 1000)} s`,
          });
        } catch {
          // the store reports its own failure
        }
      }
      return delay;
    }
    if (error instanceof ActionsServiceError) {
      if (error.typeKey === 'RunnerScaleSetNotFoundException') {
        this.#scaleSetId = null;
        this.#session = null;
      } else if (error.status === 404 && this.#session !== null) {
        this.#session = null;
      }
    }
    // A dropped connection (no response, as when a long poll is cut) is retried soon: 50 ms doubling up to 2 s, so
    // that a flaky network does not leave messages (and the session's liveness) waiting. Anything else backs off.
    const dropped = error instanceof ActionsServiceError && error.status === 0;
    const delay = dropped ? Math.min(2_000, 50 * 2 ** Math.min(failures, 6)) : backoff(failures);
    this.#log.warn({ err: error, retryInMs: delay }, 'scale set listener call failed; retrying');
    return delay;
  }

  async #handle(
    id: number,
    session: ScaleSetSession,
    message: ScaleSetMessage,
    signal: AbortSignal,
  ): Promise<void> {
    const set = this.#o.set.name;
    const offered: number[] = [];
    let changed = false;
    message.items.forEach((item, index) => {
      const event = eventOfItem(item, `scale-set/${id}/${message.messageId}/${index}`);
      if (event === null) return;
      if (item.messageType === 'JobAvailable') offered.push(event.job.id);
      this.#o.claim(event.job.id, set);
      // Durable (committed) when it returns; throws when the store cannot write, and then nothing is acknowledged.
      if (!this.#o.store.acceptWorkflowJob(event).duplicate) changed = true;
    });
    if (offered.length > 0) {
      const acquired = await this.#o.client.acquireJobs(session, id, offered, signal);
      this.#log.debug({ offered: offered.length, acquired: acquired.length }, 'jobs acquired');
    }
    this.#setStatistics(message.statistics);
    await this.#o.client.deleteMessage(session, message.messageId, signal);
    if (changed || message.statistics !== null) this.#o.wake(set);
  }

  #setStatistics(statistics: ScaleSetStatistics | null): void {
    if (statistics === null) return;
    const before = this.#statistics;
    this.#statistics = statistics;
    if (
      before?.totalAssignedJobs !== statistics.totalAssignedJobs ||
      before.totalRunningJobs !== statistics.totalRunningJobs
    )
      this.#o.wake(this.#o.set.name);
  }
}

/** Waits `ms` (nothing when not positive), or less if `signal` aborts first. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return ms <= 0 ? Promise.resolve() : sleepUnlessAborted(ms, signal);
}
