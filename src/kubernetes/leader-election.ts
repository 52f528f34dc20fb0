/**
 * Leader election on a coordination.k8s.io/v1 Lease, so that of several controller replicas exactly one acts.
 *
 * The algorithm is client-go's: a candidate takes the Lease when it is free or when its record has not changed for
 * `leaseDuration` as observed on the candidate's own clock (so clock skew between nodes does not matter); every
 * write carries the resourceVersion that was read, so two candidates can never both win (the loser gets 409).
 * The leader renews every `retryPeriod` and steps down (aborting the signal given to `onStartedLeading`) when it
 * has not renewed for `renewDeadline`, which is shorter than `leaseDuration`: it stops acting before anyone else
 * may start.
 *
 * A leader that stops (its `run` signal aborts) or loses leadership first aborts the work's signal and waits for the
 * work to settle, renewing the Lease meanwhile when it still holds it, and only then releases the Lease: a successor
 * must not act while the old leader still creates runners. A stop that has not settled after `stopTimeoutMs` is not
 * waited for any longer, and the Lease is then not released either: it expires `leaseDuration` after its last
 * renewal, which is as long as a stuck leader can keep its successor waiting.
 *
 * Takeover bound with the defaults (9 s / 6 s / 1.2 s, retries jittered by up to 20 %): a candidate notices the
 * leader's last renewal at most one retry (1.44 s) after it happened, waits out the lease from then (9 s) and
 * tries at most one retry later (1.44 s): about 12 s after the leader's last renewal plus two API round trips,
 * which leaves room under load to stay within 15 s of its death; within one retry period when the leader shut down
 * cleanly and released the Lease.
 */
import type { KubeConfig, V1Lease, V1LeaseSpec } from '@kubernetes/client-node';
import { CoordinationV1Api, V1MicroTime } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { describeApiError, isConflict, isNotFound, withSignal } from './api.js';
import { callSignal, sleepUnlessAborted } from '../lib/async.js';

export interface LeaderElectionOptions {
  readonly kubeConfig: KubeConfig;
  readonly namespace: string;
  /** Lease name, e.g. leaseNameFor(fleet). */
  readonly name: string;
  /** Unique per replica: pod name plus a random suffix. */
  readonly identity: string;
  readonly leaseDurationMs?: number;
  readonly renewDeadlineMs?: number;
  readonly retryPeriodMs?: number;
  /** Release the Lease when `run`'s signal is aborted, so a successor need not wait out the lease (default true). */
  readonly releaseOnStop?: boolean;
  /**
   * How long the work may take to stop once its signal aborts, the Lease kept meanwhile (default 20 s: within a
   * pod's default 30 s termination grace period). A stop that takes longer leaves the Lease to expire.
   */
  readonly stopTimeoutMs?: number;
  readonly logger?: Logger;
  readonly now?: () => number;
  readonly sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  /**
   * Runs while this replica leads; `signal` aborts when leadership is lost or the elector stops. The returned promise
   * should settle once the work has stopped: the Lease is released only then, unless it resolves to `keep-lease`
   * (work abandoned that may still be running somewhere: the Lease is then left to expire).
   */
  readonly onStartedLeading: (signal: AbortSignal) => void | Promise<void | 'keep-lease'>;
  readonly onStoppedLeading?: () => void;
  /** Called when the observed holder changes (also for this replica). */
  readonly onNewLeader?: (identity: string) => void;
}

export const LEADER_ELECTION_DEFAULTS = {
  leaseDurationMs: 9_000,
  renewDeadlineMs: 6_000,
  retryPeriodMs: 1_200,
  stopTimeoutMs: 20_000,
};

export class LeaderElectionError extends Error {
  readonly code: string;
  constructor(message: string, options: { code: string; cause?: unknown }) {
    super(message, { cause: options.cause });
    this.name = 'LeaderElectionError';
    this.code = options.code;
  }
}

/** The Lease as the leader holds it: when it last renewed it, and whether it still may count on it. */
interface Holding {
  lastRenew: number;
  held: boolean;
}

interface Observed {
  readonly holder: string;
  readonly renewTime: string;
  readonly transitions: number;
}

export class LeaderElector {
  readonly #api: CoordinationV1Api;
  readonly #o: Required<
    Pick<LeaderElectionOptions, 'leaseDurationMs' | 'renewDeadlineMs' | 'retryPeriodMs' | 'stopTimeoutMs'>
  > &
    LeaderElectionOptions;
  readonly #now: () => number;
  readonly #sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  #observed: Observed | undefined;
  #observedAt = 0;
  /** The Lease as last written by this replica: renewals try it first and read only after a conflict. */
  #mine: V1Lease | undefined;
  #leading = false;

  constructor(options: LeaderElectionOptions) {
    const o = { ...LEADER_ELECTION_DEFAULTS, ...options };
    if (!(o.renewDeadlineMs < o.leaseDurationMs) || !(o.retryPeriodMs < o.renewDeadlineMs)) {
      throw new LeaderElectionError('leader election needs retryPeriod < renewDeadline < leaseDuration', {
        code: 'leader-election-timing',
      });
    }
    this.#o = o;
    this.#api = options.kubeConfig.makeApiClient(CoordinationV1Api);
    this.#now = options.now ?? Date.now;
    this.#sleep = options.sleep ?? sleepUnlessAborted;
  }

  get isLeader(): boolean {
    return this.#leading;
  }

  /** The holder this replica last observed ('' when the Lease is free). */
  get leader(): string | undefined {
    return this.#observed?.holder;
  }

  /**
   * Campaigns until elected, leads until leadership is lost or `signal` aborts, then returns once the work has stopped
   * (or stopTimeoutMs has passed). A replica that lost leadership should exit (its in-memory state may be stale)
   * rather than campaign again.
   */
  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      if (await this.#attempt(signal)) break;
      await this.#sleep(this.#jittered(this.#o.retryPeriodMs), signal);
    }
    if (signal.aborted) return;
    await this.#lead(signal);
  }

  async #lead(signal: AbortSignal): Promise<void> {
    this.#leading = true;
    const leading = new AbortController();
    const stop = () => leading.abort();
    signal.addEventListener('abort', stop, { once: true });
    this.#o.logger?.info({ lease: this.#o.name, identity: this.#o.identity }, 'became leader');
    // The work runs beside the renew loop; its failure is logged, leadership is what ends it.
    const work = Promise.resolve()
      .then(() => this.#o.onStartedLeading(leading.signal))
      .catch((error: unknown) => {
        this.#o.logger?.error({ err: error }, 'leader work failed');
      });
    const holding: Holding = { lastRenew: this.#now(), held: true };
    try {
      while (!signal.aborted) {
        await this.#sleep(this.#o.retryPeriodMs, signal);
        if (signal.aborted) break;
        await this.#renew(holding, signal);
        if (!holding.held) {
          this.#o.logger?.warn({ lease: this.#o.name }, 'leadership lost: could not renew the lease in time');
          break;
        }
      }
    } finally {
      signal.removeEventListener('abort', stop);
      leading.abort();
      // The Lease passes on only once the work has stopped: a successor must not act beside it.
      const stopped = await this.#waitForStop(work, holding);
      this.#leading = false;
      if (stopped === 'timeout') {
        this.#o.logger?.error(
          { lease: this.#o.name, stopTimeoutMs: this.#o.stopTimeoutMs },
          'leader election: the leader work did not stop in time; the lease is not released but left to expire, ' +
            'so that a successor waits as long as the lease lasts',
        );
      } else if (stopped === 'keep-lease') {
        this.#o.logger?.warn(
          { lease: this.#o.name },
          'leader election: the leader work abandoned calls that did not end; the lease is left to expire',
        );
      } else if (signal.aborted && holding.held && (this.#o.releaseOnStop ?? true)) {
        await this.#release();
      }
      this.#o.onStoppedLeading?.();
    }
  }

  /** One renewal; `held` turns false once the Lease has gone unrenewed for renewDeadline. */
  async #renew(holding: Holding, signal: AbortSignal): Promise<void> {
    if (await this.#attempt(signal, this.#o.renewDeadlineMs - (this.#now() - holding.lastRenew))) {
      holding.lastRenew = this.#now();
    } else if (this.#now() - holding.lastRenew >= this.#o.renewDeadlineMs) {
      holding.held = false;
    }
  }

  /**
   * Waits up to stopTimeoutMs for the work to settle, renewing the Lease while it is held (the stop must not outlast
   * it). `stopped` (or `keep-lease`, as the work asked) when the work settled, `timeout` when it did not.
   */
  async #waitForStop(
    work: Promise<void | 'keep-lease'>,
    holding: Holding,
  ): Promise<'stopped' | 'keep-lease' | 'timeout'> {
    let settled = false;
    let keepLease = false;
    const done = work.then((value) => {
      settled = true;
      keepLease = value === 'keep-lease';
    });
    const deadline = this.#now() + this.#o.stopTimeoutMs;
    while (!settled) {
      const left = deadline - this.#now();
      if (left <= 0) return 'timeout';
      const wake = new AbortController();
      await Promise.race([done, this.#sleep(Math.min(this.#o.retryPeriodMs, left), wake.signal)]);
      wake.abort();
      if (settled || !holding.held || this.#now() >= deadline) continue;
      // Not with `run`'s signal (it has aborted, which is why the work is stopping), but not past the deadline.
      await this.#renew(holding, AbortSignal.timeout(Math.max(1, deadline - this.#now())));
      if (!holding.held) {
        this.#o.logger?.warn(
          { lease: this.#o.name },
          'leader election: could not renew the lease while the leader work was stopping',
        );
      }
    }
    return keepLease ? 'keep-lease' : 'stopped';
  }

  #jittered(ms: number): number {
    return ms * (1 + Math.random() * 0.2);
  }

  #observe(spec: V1LeaseSpec | undefined): void {
    const next: Observed = {
      holder: spec?.holderIdentity ?? '',
      renewTime: spec?.renewTime ? new Date(spec.renewTime).toISOString() : '',
      transitions: spec?.leaseTransitions ?? 0,
    };
    const prev = this.#observed;
    if (
      !prev ||
      prev.holder !== next.holder ||
      prev.renewTime !== next.renewTime ||
      prev.transitions !== next.transitions
    ) {
      this.#observed = next;
      this.#observedAt = this.#now();
      if (prev?.holder !== next.holder && next.holder !== '') this.#o.onNewLeader?.(next.holder);
    }
  }

  #spec(previous: V1LeaseSpec | undefined): V1LeaseSpec {
    const now = new V1MicroTime(this.#now());
    const wasMine = previous?.holderIdentity === this.#o.identity;
    return {
      holderIdentity: this.#o.identity,
      leaseDurationSeconds: Math.ceil(this.#o.leaseDurationMs / 1000),
      acquireTime:
        wasMine && previous?.acquireTime ? new V1MicroTime(new Date(previous.acquireTime).getTime()) : now,
      renewTime: now,
      leaseTransitions: wasMine ? (previous?.leaseTransitions ?? 0) : (previous?.leaseTransitions ?? 0) + 1,
    };
  }

  /** One acquire-or-renew step; true when this replica holds the Lease afterwards. Never throws. */
  async #attempt(signal: AbortSignal, budgetMs = this.#o.renewDeadlineMs): Promise<boolean> {
    const { namespace, name } = this.#o;
    // The election's signal lives as long as the process: released when the step ends, every couple of seconds.
    const call = callSignal([signal], Math.max(1_000, budgetMs));
    const options = withSignal(call.signal);
    try {
      // Fast path for the leader: write over its own last version; a conflict means someone else wrote.
      if (this.#mine && this.#leading) {
        try {
          const body: V1Lease = { ...this.#mine, spec: this.#spec(this.#mine.spec) };
          this.#mine = await this.#api.replaceNamespacedLease({ name, namespace, body }, options);
          this.#observe(this.#mine.spec);
          return true;
        } catch (error) {
          if (!isConflict(error)) throw error;
        }
      }
      let lease: V1Lease;
      try {
        lease = await this.#api.readNamespacedLease({ name, namespace }, options);
      } catch (error) {
        if (!isNotFound(error)) throw error;
        const body: V1Lease = {
          metadata: { name, namespace },
          spec: { ...this.#spec(undefined), leaseTransitions: 0 },
        };
        try {
          this.#mine = await this.#api.createNamespacedLease({ namespace, body }, options);
        } catch (createError) {
          if (isConflict(createError)) return false;
          throw createError;
        }
        this.#observe(this.#mine.spec);
        return true;
      }
      this.#observe(lease.spec);
      const holder = lease.spec?.holderIdentity ?? '';
      const durationMs =
        (lease.spec?.leaseDurationSeconds ?? Math.ceil(this.#o.leaseDurationMs / 1000)) * 1000;
      if (holder !== '' && holder !== this.#o.identity && this.#observedAt + durationMs > this.#now()) {
        return false;
      }
      const body: V1Lease = { ...lease, spec: this.#spec(lease.spec) };
      try {
        this.#mine = await this.#api.replaceNamespacedLease({ name, namespace, body }, options);
      } catch (error) {
        if (isConflict(error)) return false;
        throw error;
      }
      this.#observe(this.#mine.spec);
      return true;
    } catch (error) {
      if (!signal.aborted) {
        this.#o.logger?.warn(
          { lease: name, error: describeApiError(error) },
          'leader election: lease call failed',
        );
      }
      return false;
    } finally {
      call.release();
    }
  }

  /**
   * Marks the Lease free so a successor need not wait for it to expire. Best effort. A renewal aborted by the stop
   * may have been written without this replica seeing the new version; the release is then refused as a conflict,
   * and is made once more over the Lease as read back, when it still names this replica.
   */
  async #release(): Promise<void> {
    if (!this.#mine) return;
    const { namespace, name } = this.#o;
    const options = withSignal(AbortSignal.timeout(2_000));
    const free = (lease: V1Lease): V1Lease => ({
      ...lease,
      spec: {
        ...lease.spec,
        holderIdentity: '',
        leaseDurationSeconds: 1,
        renewTime: new V1MicroTime(this.#now()),
      },
    });
    try {
      try {
        await this.#api.replaceNamespacedLease({ name, namespace, body: free(this.#mine) }, options);
      } catch (error) {
        if (!isConflict(error)) throw error;
        const current = await this.#api.readNamespacedLease({ name, namespace }, options);
        if (current.spec?.holderIdentity !== this.#o.identity) {
          this.#o.logger?.info(
            { lease: name, holder: current.spec?.holderIdentity ?? '' },
            "leader election: the lease is no longer this replica's; nothing to release",
          );
          return;
        }
        await this.#api.replaceNamespacedLease({ name, namespace, body: free(current) }, options);
      }
      this.#o.logger?.info({ lease: name }, 'leader election: lease released');
    } catch (error) {
      this.#o.logger?.warn(
        { lease: name, error: describeApiError(error) },
        'leader election: release failed',
      );
    } finally {
      this.#mine = undefined;
    }
  }
}
