/**
 * The reconciler: snapshot -> plan (pure) -> executor, per scale set, one pass at a time (docs/core.md, Flow of one pass).
 *
 * Level-triggered. A pass runs when something wakes its scale set: a webhook (through the store's job changes), a
 * provider watch event, an executor result, a time the planner asked for (wake-at), or the periodic resync that
 * lists runners from GitHub and instances from every provider. Wakes are coalesced: however many arrive while a pass
 * is pending, one pass runs. A pass is synchronous up to the executor's calls out (building the snapshot, planning,
 * recording intent), so two passes of one scale set never interleave; calls out continue on the executor's pool and
 * the runners they touch are `inFlight` to the planner until they settle.
 */
import type { Logger } from 'pino';
import type { FleetConfig, Scope, ScaleSetConfig } from './fleet-config.js';
import type { Instance, Provider } from './provider-port.js';
import type { FleetStore } from './store-port.js';
import { emptyCounts } from './read-models.js';
import type { JobChange } from './records.js';
import type { GitHubPort, RunnerList } from './ports.js';
import type { GitHubRunner } from './types.js';
import type { Action, ScaleSetSnapshot } from './plan-types.js';
import type { ReconcilerHooks } from './hooks.js';
import type { RandomSource } from './names.js';
import { safeHook } from './hooks.js';
import { planScaleSet } from './planner.js';
import type { CreatePacer } from './pacing.js';
import { Executor, type ActionOutcome } from './executor.js';
import { Observations } from './observations.js';
import { buildSnapshot, releaseDeletedRunners } from './snapshot.js';
import { scaleSetOf } from './names.js';
import { classifyError } from './errors.js';
import { callSignal } from '../lib/async.js';

export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const defaultTimers: Timers = {
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    t.unref?.();
    return t;
  },
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

/** Follow-up events (instance changes, ended jobs) wake a scale set at most this often. */
export const LAZY_PASS_MS = 1000;

export interface ReconcilerOptions {
  readonly config: FleetConfig;
  readonly store: FleetStore;
  readonly github: GitHubPort;
  /** One provider per scale set, keyed by scale set name (every configured scale set needs one). */
  readonly providers: ReadonlyMap<string, Provider>;
  readonly logger: Logger;
  readonly now?: () => number;
  readonly timers?: Timers;
  /** Source of runner names. Default: crypto-strong random. */
  readonly random?: RandomSource;
  /** Executor calls out at once. Default: the config's controller.concurrency. */
  readonly concurrency?: number;
  readonly hooks?: ReconcilerHooks;
  /** Aborting it stops the reconciler (same as stop()). */
  readonly signal?: AbortSignal;
  /** `discovery: scale-set`: jobs assigned to the scale set per its runner scale set's statistics, if known. */
  readonly assignedJobs?: (scaleSet: string) => number | undefined;
  /** `discovery: scale-set`: jobs assigned to the scale set and not started, per its statistics, if known. */
  readonly waitingJobs?: (scaleSet: string) => number | undefined;
  /** Job status checks per scale set per pass. Default 20. */
  readonly maxJobChecks?: number;
  /** New runners per scale set per pass (the rest follow in the next pass, at once). Default 1,000. */
  readonly maxCreatesPerPass?: number;
  /** Provider create attempts with one registration. Default 3. */
  readonly createAttempts?: number;
  /** Paces JIT config requests to each installation's budget (pacing.ts). Without it, creates are not paced. */
  readonly pacer?: CreatePacer;
}

export interface ReconcilerHealth {
  readonly started: boolean;
  /** The first resync finished (lists of GitHub runners and instances, successful or not). */
  readonly ready: boolean;
  readonly lastResyncAt: number | null;
  readonly lastResyncOk: boolean | null;
  readonly lastResyncErrors: readonly string[];
  /** Executor calls queued or running. */
  readonly pendingOperations: number;
}

/** Runners missing from a list that are asked for one by one; with more, the list is taken again (#missingFromList). */
const MISSING_LOOKUPS_MAX = 8;

/**
 * Scheduled GitHub runner lists of a scope skipped in a row at most while webhooks arrive and the previous list agreed
 * with the runner records (#mayRestList): while webhooks flow, a list is still taken at least every third resync
 * interval (90 s at the default 30 s, within the default orphan grace period of 2 min).
 */
export const RUNNER_LIST_RESTS = 2;

/** What the last runner list of a scope said, for #mayRestList. */
interface ListState {
  /** When the list began (ms epoch). */
  readonly at: number;
  /**
   * It succeeded and matched the records: every runner of ours it showed had a live record, and every live record
   * with a registration older than the list was in it. Nothing in it was news the records did not have.
   */
  readonly agreed: boolean;
  /** Scheduled lists skipped in a row since. */
  rested: number;
}

const LIVE_STATES: ReadonlySet<string> = new Set(['requested', 'creating', 'starting', 'idle', 'busy']);
const REGISTERED_STATES: ReadonlySet<string> = new Set(['starting', 'idle', 'busy']);

function cryptoRandom(): number {
  return crypto.getRandomValues(new Uint32Array(1))[0]! / 4294967296;
}

function scopeKey(scope: Scope): string {
  if ('org' in scope) return `org:${scope.org.toLowerCase()}`;
  if ('repo' in scope) return `repo:${scope.repo.toLowerCase()}`;
  return `enterprise:${scope.enterprise.toLowerCase()}`;
}

function commonPrefix(names: readonly string[]): string {
  if (names.length === 0) return '';
  let p = names[0]!;
  for (const n of names) while (!n.startsWith(p)) p = p.slice(0, -1);
  return p;
}

export class Reconciler {
  readonly #o: ReconcilerOptions;
  readonly #now: () => number;
  readonly #timers: Timers;
  readonly #random: RandomSource;
  /** The planner's new-name check against the file: a name of a runner deleted and released is still taken. */
  readonly #nameTaken = (name: string): boolean => this.#o.store.runner(name) !== null;
  readonly #log: Logger;
  readonly #sets: ReadonlyMap<string, ScaleSetConfig>;
  readonly #observations = new Observations();
  readonly #executor: Executor;

  #started = false;
  #stopped = false;
  #ready = false;
  readonly #scheduled = new Set<string>();
  #drainHandle: ReturnType<typeof setImmediate> | null = null;
  readonly #planTimers = new Map<string, { at: number; handle: unknown }>();
  readonly #laterTimers = new Map<string, { at: number; handle: unknown }>();
  /** Deferred passes asked for by follow-up events (wakeLazy), by scale set. */
  readonly #lazy = new Map<string, unknown>();
  #resyncTimer: unknown = null;
  #resyncing: Promise<void> | null = null;
  #lastResyncAt: number | null = null;
  #lastResyncOk: boolean | null = null;
  #lastResyncErrors: string[] = [];
  readonly #lastReconcileAt = new Map<string, number>();
  readonly #outcomes = new Set<Promise<unknown>>();
  readonly #unsubscribe: (() => void)[] = [];
  #idleWaiters: (() => void)[] = [];
  #onAbort: (() => void) | null = null;
  /** Aborted by stop(): the resync's lists in flight end at once. */
  readonly #stopping = new AbortController();
  /** The store's failure, once logged (the store says why; passes stop until a restart). */
  #storeFailureSeen = false;
  /** The last runner list per scope (scopeKey). */
  readonly #lists = new Map<string, ListState>();
  /** When a webhook last changed a job (ms epoch), or null. */
  #lastWebhookAt: number | null = null;

  constructor(options: ReconcilerOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
    this.#timers = options.timers ?? defaultTimers;
    this.#random = options.random ?? cryptoRandom;
    this.#log = options.logger.child({ component: 'reconciler' });
    this.#sets = new Map(options.config.scaleSets.map((s) => [s.name, s]));
    for (const s of options.config.scaleSets) {
      if (!options.providers.has(s.name)) {
        throw Object.assign(new Error(`no provider for scale set ${s.name}`), {
          code: 'no-provider',
        });
      }
    }
    this.#executor = new Executor({
      config: options.config,
      store: options.store,
      github: options.github,
      providers: options.providers,
      logger: this.#log,
      now: this.#now,
      concurrency: options.concurrency ?? options.config.controller.concurrency,
      ...(options.hooks !== undefined ? { hooks: options.hooks } : {}),
      ...(options.createAttempts !== undefined ? { createAttempts: options.createAttempts } : {}),
      ...(options.pacer !== undefined ? { pacer: options.pacer } : {}),
      wake: (scaleSet, at) => (at === undefined ? this.wake(scaleSet) : this.#wakeLater(scaleSet, at)),
      followUp: (scaleSet) => this.#wakeLazy(scaleSet),
      observe: {
        instanceCreated: (scaleSet, instance) =>
          this.#observations.upsertInstance(scaleSet, instance, this.#now()),
        instanceDeleted: (scaleSet, name) => this.#observations.instanceDeleted(scaleSet, name, this.#now()),
        registrationDeleted: (scaleSet, name) =>
          this.#observations.registrationDeleted(scaleSet, name, this.#now()),
      },
    });
  }

  /**
   * Starts: re-routes open jobs (the configuration may have changed), subscribes to job changes and provider
   * watches, runs the first resync, then the first passes, and schedules the periodic resync. Resolves once the
   * first resync is done (`health().ready`).
   */
  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    const signal = this.#o.signal;
    if (signal !== undefined) {
      if (signal.aborted) {
        await this.stop();
        return;
      }
      this.#onAbort = () => void this.stop();
      signal.addEventListener('abort', this.#onAbort, { once: true });
    }
    const rerouted = this.#o.store.rerouteOpenJobs();
    if (rerouted > 0) this.#log.info({ rerouted }, 'open jobs routed again under the current configuration');
    this.#unsubscribe.push(this.#o.store.subscribe((c) => this.#onJobChange(c)));
    for (const [scaleSet, provider] of this.#o.providers) {
      if (provider.watch === undefined || !this.#sets.has(scaleSet)) continue;
      const stop = provider.watch((instance) => this.#onInstance(scaleSet, instance));
      this.#unsubscribe.push(stop);
    }
    await this.resync();
    if (this.#stopped) return;
    this.#ready = true;
    this.#scheduleResync();
    this.wake();
  }

  /** Stops timers and subscriptions, aborts calls in flight, and waits for them to settle. Idempotent. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    if (this.#onAbort !== null) this.#o.signal?.removeEventListener('abort', this.#onAbort);
    for (const u of this.#unsubscribe.splice(0)) u();
    if (this.#drainHandle !== null) clearImmediate(this.#drainHandle);
    this.#drainHandle = null;
    this.#scheduled.clear();
    for (const t of this.#lazy.values()) this.#timers.clearTimeout(t);
    this.#lazy.clear();
    for (const m of [this.#planTimers, this.#laterTimers]) {
      for (const t of m.values()) this.#timers.clearTimeout(t.handle);
      m.clear();
    }
    if (this.#resyncTimer !== null) this.#timers.clearTimeout(this.#resyncTimer);
    this.#stopping.abort();
    this.#executor.abort();
    await this.#executor.idle();
    await Promise.allSettled([...this.#outcomes]);
    if (this.#resyncing !== null) await this.#resyncing.catch(() => undefined);
    this.#notifyIdle();
  }

  /** Asks for a pass of one scale set (or all). Cheap and coalesced; safe to call on every webhook. */
  wake(scaleSet?: string): void {
    if (this.#stopped) return;
    if (scaleSet === undefined) for (const s of this.#sets.keys()) this.#scheduled.add(s);
    else if (this.#sets.has(scaleSet)) this.#scheduled.add(scaleSet);
    else return;
    if (!this.#ready) return; // the first passes run after the first resync
    if (this.#drainHandle === null) this.#drainHandle = setImmediate(() => this.#drain());
  }

  /**
   * A pass for a follow-up event (an instance changed, a job ended): at most one per LAZY_PASS_MS per
   * scale set. In a paced burst every runner created reports its instance, and each pass reads every runner and job
   * of the set: passing once per event cost more controller CPU than everything else the burst did. A new queued
   * job still wakes its scale set at once (wake).
   */
  #wakeLazy(scaleSet: string): void {
    if (this.#stopped || !this.#sets.has(scaleSet)) return;
    if (this.#scheduled.has(scaleSet) || this.#lazy.has(scaleSet)) return;
    const last = this.#lastReconcileAt.get(scaleSet);
    const delay = last === undefined ? 0 : last + LAZY_PASS_MS - this.#now();
    if (delay <= 0 || !this.#ready) {
      this.wake(scaleSet);
      return;
    }
    const handle = this.#timers.setTimeout(() => {
      this.#lazy.delete(scaleSet);
      this.wake(scaleSet);
    }, delay);
    this.#lazy.set(scaleSet, handle);
  }

  /** Lists runners (GitHub) and instances (providers) now, then wakes every scale set. Concurrent calls share. */
  resync(): Promise<void> {
    return this.#resync(false);
  }

  /** The periodic resync: a scope's GitHub runner list may rest (#mayRestList). */
  #scheduledResync(): Promise<void> {
    return this.#resync(true);
  }

  #resync(scheduled: boolean): Promise<void> {
    if (this.#resyncing !== null) return this.#resyncing;
    this.#resyncing = this.#doResync(scheduled).finally(() => {
      this.#resyncing = null;
    });
    return this.#resyncing;
  }

  health(): ReconcilerHealth {
    return {
      started: this.#started && !this.#stopped,
      ready: this.#ready,
      lastResyncAt: this.#lastResyncAt,
      lastResyncOk: this.#lastResyncOk,
      lastResyncErrors: this.#lastResyncErrors,
      pendingOperations: this.#executor.pending,
    };
  }

  /**
   * Resolves when nothing is left to do right now: no pass scheduled and no call out in flight. Timed wakes (backoff,
   * timeouts) do not count. For tests, the demo and graceful shutdown.
   */
  settled(): Promise<void> {
    if (this.#isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  // ---- what the read models see -----------------------------------------------------------------------------------

  /** The last observations of GitHub and the providers (read-only for the read models). */
  get observations(): Observations {
    return this.#observations;
  }

  /** When each scale set was last planned (ms epoch). */
  get lastReconcileAt(): ReadonlyMap<string, number> {
    return this.#lastReconcileAt;
  }

  // ---- internals ---------------------------------------------------------------------------------------------------

  #isIdle(): boolean {
    return (
      this.#scheduled.size === 0 &&
      this.#drainHandle === null &&
      this.#lazy.size === 0 &&
      this.#executor.pending === 0 &&
      this.#outcomes.size === 0 &&
      this.#resyncing === null
    );
  }

  #notifyIdle(): void {
    if (!this.#isIdle() && !this.#stopped) return;
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const w of waiters) w();
  }

  #onJobChange(change: JobChange): void {
    const { job, previous } = change;
    if (change.source === 'webhook') this.#lastWebhookAt = this.#now();
    const hook = this.#o.hooks?.onJobEvent;
    if (hook !== undefined && (previous === null || previous.status !== job.status)) {
      const event = previous === null && job.scaleSet === null ? 'unroutable' : job.status;
      // Queue time is for jobs that got a runner: one cancelled while queued never waited its way to one (GitHub
      // still sends it a started_at).
      const ran = job.status === 'in_progress' || (job.runnerName ?? null) !== null;
      const queueMs =
        job.status !== 'queued' && ran && job.startedAt != null && previous?.status === 'queued'
          ? Math.max(0, job.startedAt - job.queuedAt)
          : undefined;
      safeHook(
        () =>
          hook({
            scaleSet: job.scaleSet,
            event,
            jobId: job.id,
            ...(queueMs !== undefined ? { queueMs } : {}),
          }),
        (err) => this.#log.warn({ err }, 'onJobEvent hook failed'),
      );
    }
    // A job that needs a runner wakes its scale set at once. One a runner took or one that ended is a follow-up:
    // it changes no count the planner creates by (a queued job became a busy runner's), and in a paced burst every
    // created runner's job starts while the rest still wait, so a pass per start re-read every waiting job and
    // runner once per runner created.
    if (job.scaleSet !== null) {
      if (job.status === 'queued') this.wake(job.scaleSet);
      else this.#wakeLazy(job.scaleSet);
    }
    if (previous !== null && previous.scaleSet !== null && previous.scaleSet !== job.scaleSet)
      this.wake(previous.scaleSet);
    if (job.runnerName) {
      const owner = scaleSetOf(job.runnerName, this.#sets.keys());
      if (owner !== null && owner !== job.scaleSet) this.#wakeLazy(owner);
    }
  }

  #onInstance(scaleSet: string, instance: Instance): void {
    if (instance.scaleSet !== scaleSet || instance.fleet !== this.#o.config.name) return;
    this.#observations.upsertInstance(scaleSet, instance, this.#now());
    this.#wakeLazy(scaleSet);
  }

  #wakeLater(scaleSet: string, at: number): void {
    this.#setTimer(this.#laterTimers, scaleSet, at);
  }

  /** One timer per scale set and map, at the earliest time asked for. */
  #setTimer(map: Map<string, { at: number; handle: unknown }>, scaleSet: string, at: number): void {
    if (this.#stopped) return;
    const existing = map.get(scaleSet);
    if (existing !== undefined && existing.at <= at) return;
    if (existing !== undefined) this.#timers.clearTimeout(existing.handle);
    const delay = Math.min(2 ** 31 - 1, Math.max(0, at - this.#now()));
    const handle = this.#timers.setTimeout(() => {
      map.delete(scaleSet);
      this.wake(scaleSet);
    }, delay);
    map.set(scaleSet, { at, handle });
  }

  #drain(): void {
    this.#drainHandle = null;
    const sets = [...this.#scheduled];
    this.#scheduled.clear();
    for (const s of sets) {
      if (this.#stopped) break;
      this.#pass(s);
    }
    this.#notifyIdle();
  }

  /** One pass of one scale set: snapshot, plan, execute. Synchronous up to the calls out. */
  #pass(scaleSet: string): void {
    const set = this.#sets.get(scaleSet);
    if (set === undefined) return;
    // A failed store records nothing, so nothing may be done: every call out needs its intent recorded first.
    if (this.#storeFailed()) return;
    const started = performance.now();
    const now = this.#now();
    let actions: Action[];
    let snapshot: ScaleSetSnapshot;
    try {
      snapshot = buildSnapshot(
        set,
        this.#o.store,
        this.#observations,
        this.#executor,
        this.#o.assignedJobs?.(set.name),
        this.#o.waitingJobs?.(set.name),
      );
      actions = planScaleSet(snapshot, set, this.#o.config.controller, now, {
        random: this.#random,
        nameTaken: this.#nameTaken,
        ...(this.#o.maxJobChecks !== undefined ? { maxJobChecks: this.#o.maxJobChecks } : {}),
        ...(this.#o.maxCreatesPerPass !== undefined ? { maxCreatesPerPass: this.#o.maxCreatesPerPass } : {}),
      });
    } catch (err) {
      this.#log.error({ err, scaleSet }, 'planning failed; retrying in 5 s');
      this.#wakeLater(scaleSet, now + 5000);
      return;
    }
    // This pass covers a deferred one.
    const lazy = this.#lazy.get(scaleSet);
    if (lazy !== undefined) {
      this.#timers.clearTimeout(lazy);
      this.#lazy.delete(scaleSet);
    }
    // Re-planned: the old plan timer is replaced by this pass's wake-at (if any).
    const planTimer = this.#planTimers.get(scaleSet);
    if (planTimer !== undefined) {
      this.#timers.clearTimeout(planTimer.handle);
      this.#planTimers.delete(scaleSet);
    }
    let work = 0;
    for (const a of actions) {
      if (a.type === 'wake-at') this.#setTimer(this.#planTimers, scaleSet, a.at);
      else work++;
    }
    if (work > 0) {
      if (this.#log.isLevelEnabled('debug'))
        this.#log.debug({ scaleSet, actions: summarize(actions) }, 'plan');
      let outcome: Promise<ActionOutcome[]>;
      try {
        outcome = this.#executor.execute(actions);
      } catch (err) {
        this.#log.error({ err, scaleSet }, 'recording the plan failed; retrying in 5 s');
        this.#wakeLater(scaleSet, now + 5000);
        outcome = Promise.resolve([]);
      }
      const tracked = outcome
        .then((results) => this.#report(scaleSet, results))
        .catch((err: unknown) => this.#log.error({ err, scaleSet }, 'executor failed'))
        .finally(() => {
          this.#outcomes.delete(tracked);
          this.#notifyIdle();
        });
      this.#outcomes.add(tracked);
    }
    this.#lastReconcileAt.set(scaleSet, now);
    const durationMs = performance.now() - started;
    const hooks = this.#o.hooks;
    if (hooks?.onReconcile !== undefined) {
      safeHook(
        () => hooks.onReconcile?.({ scaleSet, durationMs, actions: work }),
        (err) => this.#log.warn({ err }, 'onReconcile hook failed'),
      );
    }
    if (hooks?.onRunnerCounts !== undefined) {
      const counts = countAfter(snapshot, actions);
      safeHook(
        () => hooks.onRunnerCounts?.(scaleSet, counts),
        (err) => this.#log.warn({ err }, 'onRunnerCounts hook failed'),
      );
    }
  }

  #report(scaleSet: string, results: readonly ActionOutcome[]): void {
    const failed = results.filter((r) => !r.ok && r.error.code !== 'aborted');
    if (failed.length > 0) {
      this.#log.warn(
        {
          scaleSet,
          failed: failed.length,
          of: results.length,
          codes: [...new Set(failed.map((f) => (f.ok ? '' : `${f.action.type}:${f.error.code}`)))],
        },
        'some actions failed',
      );
    }
  }

  #scheduleResync(): void {
    if (this.#stopped) return;
    this.#resyncTimer = this.#timers.setTimeout(() => {
      this.#resyncTimer = null;
      void this.#scheduledResync().finally(() => this.#scheduleResync());
    }, this.#o.config.controller.resyncInterval);
  }

  /** True once the store has failed (logged once here; the controller reports the failure itself). */
  #storeFailed(): boolean {
    const failure = this.#o.store.failure();
    if (failure === null) return false;
    if (!this.#storeFailureSeen) {
      this.#storeFailureSeen = true;
      this.#log.warn({ code: failure.code }, 'the store failed: no more passes until a restart');
    }
    return true;
  }

  /**
   * A scheduled runner list of a scope may rest (the previous observation stands) when it would repeat what fresher
   * sources already say: webhooks arrived since the last list began (each runner's job start and end reach its record
   * through them, and each registration through the JIT answer), that list agreed with the records, and fewer than
   * RUNNER_LIST_RESTS lists rested in a row. What only a list tells (a registration removed by hand, a runner online
   * without a job, a leaked registration) is still found, at most RUNNER_LIST_RESTS intervals later; without
   * webhooks, or after a list that disagreed, every scheduled resync lists.
   */
  #mayRestList(key: string): boolean {
    const last = this.#lists.get(key);
    if (last === undefined || !last.agreed || last.rested >= RUNNER_LIST_RESTS) return false;
    return this.#lastWebhookAt !== null && this.#lastWebhookAt >= last.at;
  }

  /** Whether a list of `sets` taken at `at` agreed with their runner records (ListState.agreed). */
  #listAgrees(sets: readonly string[], at: number, listed: readonly GitHubRunner[]): boolean {
    const names = new Set<string>();
    for (const r of listed) if (scaleSetOf(r.name, sets) !== null) names.add(r.name);
    let agreed = true;
    let liveListed = 0;
    for (const s of sets) {
      this.#o.store.forEachRunner(s, (r) => {
        if (!agreed) return;
        if (!LIVE_STATES.has(r.state)) return;
        if (names.has(r.name)) liveListed++;
        else if (REGISTERED_STATES.has(r.state) && r.githubId !== null && r.stateChangedAt < at)
          agreed = false;
      });
    }
    // Every runner of ours listed has a live record (counted once each above).
    return agreed && liveListed === names.size;
  }

  async #doResync(scheduled = false): Promise<void> {
    const started = performance.now();
    const errors: string[] = [];
    // Both signals live as long as the controller: the resync's own is released once its lists are in.
    const call = callSignal([this.#o.signal, this.#stopping.signal]);
    const signal = call.signal;
    // One runner list per scope, shared by the scale sets registering there.
    const byScope = new Map<string, { scope: Scope; sets: string[] }>();
    for (const s of this.#sets.values()) {
      const key = scopeKey(s.scope);
      const g = byScope.get(key);
      if (g === undefined) byScope.set(key, { scope: s.scope, sets: [s.name] });
      else g.sets.push(s.name);
    }
    const githubLists = [...byScope.values()].map(async ({ scope, sets }) => {
      const at = this.#now();
      const key = scopeKey(scope);
      if (scheduled && this.#mayRestList(key)) {
        this.#lists.get(key)!.rested++;
        this.#log.debug({ scope: key }, 'runner list rested: webhooks arrive and the last list agreed');
        return;
      }
      this.#lists.delete(key);
      try {
        const prefix = commonPrefix(sets.map((s) => `${s}-`));
        const listed = await this.#o.github.listRunners(scope, prefix, signal);
        listed.push(...(await this.#missingFromList(scope, prefix, sets, listed, at, signal)));
        const bySet = new Map<string, typeof listed>(sets.map((s) => [s, []]));
        for (const r of listed) {
          const owner = scaleSetOf(r.name, sets);
          if (owner !== null) bySet.get(owner)!.push(r);
        }
        for (const [s, runners] of bySet) this.#observations.setGitHub(s, at, runners);
        this.#lists.set(key, { at, agreed: this.#listAgrees(sets, at, listed), rested: 0 });
      } catch (err) {
        const e = classifyError(err);
        errors.push(`github ${scopeKey(scope)}: ${e.code}`);
        if (!this.#stopped)
          this.#log.warn(
            { scope: scopeKey(scope), code: e.code, reason: e.message },
            'listing runners failed',
          );
      }
    });
    const providerLists = [...this.#sets.values()].map(async (set) => {
      const provider = this.#o.providers.get(set.name)!;
      const at = this.#now();
      const t0 = performance.now();
      const abort = new AbortController();
      const onAbort = (): void => abort.abort();
      signal?.addEventListener('abort', onAbort, { once: true });
      try {
        const instances = await provider.list(
          { fleet: this.#o.config.name, scaleSet: set.name },
          abort.signal,
        );
        this.#observations.setInstances(
          set.name,
          at,
          instances.filter((i) => i.scaleSet === set.name),
        );
        this.#providerHook(provider.kind, set.name, 'ok', performance.now() - t0);
      } catch (err) {
        this.#providerHook(provider.kind, set.name, 'error', performance.now() - t0);
        const e = classifyError(err);
        errors.push(`provider ${set.name}: ${e.code}`);
        if (!this.#stopped)
          this.#log.warn({ scaleSet: set.name, code: e.code, reason: e.message }, 'listing instances failed');
      } finally {
        signal?.removeEventListener('abort', onAbort);
      }
    });
    await Promise.all([...githubLists, ...providerLists]).finally(() => call.release());
    const now = this.#now();
    this.#observations.forget(now);
    if (!this.#storeFailed()) {
      releaseDeletedRunners(
        this.#sets.values(),
        this.#o.store,
        this.#observations,
        this.#executor,
        this.#o.config.controller,
        now,
      );
      try {
        this.#o.store.prune();
      } catch (err) {
        this.#log.warn({ err }, 'pruning the store failed');
      }
    }
    this.#lastResyncAt = now;
    this.#lastResyncOk = errors.length === 0;
    this.#lastResyncErrors = errors;
    const hook = this.#o.hooks?.onResync;
    if (hook !== undefined) {
      safeHook(
        () => hook({ durationMs: performance.now() - started, ok: errors.length === 0 }),
        (err) => this.#log.warn({ err }, 'onResync hook failed'),
      );
    }
    this.wake();
  }

  /**
   * A paginated list is no snapshot: when a runner on an earlier page goes away while later pages are read, the rest
   * shift and one of ours can be skipped. The planner reads absence from a list taken after a record's last change as
   * "registration gone" (and would then delete a busy runner's instance under its job), so every live record with a
   * registration that the list lacks is asked for by id; those that exist are added to the list. Normally none or a
   * few are missing (ephemeral runners GitHub removed before their job's webhook came). In a burst many are, and one
   * call each would cost more than the jobs' own (the API budget is about one call per job): above
   * MISSING_LOOKUPS_MAX the list is taken once more instead, and a runner absent from both is gone. A failure fails
   * the list.
   */
  async #missingFromList(
    scope: Scope,
    prefix: string,
    sets: readonly string[],
    listed: RunnerList,
    at: number,
    signal: AbortSignal | undefined,
  ): Promise<GitHubRunner[]> {
    // One page is a consistent snapshot: what it lacks is gone.
    if (listed.pages === 1) return [];
    const names = new Set(listed.map((r) => r.name));
    const missing: number[] = [];
    for (const s of sets) {
      this.#o.store.forEachRunner(s, (r) => {
        const live = r.state === 'starting' || r.state === 'idle' || r.state === 'busy';
        if (live && r.githubId !== null && r.stateChangedAt < at && !names.has(r.name))
          missing.push(r.githubId);
      });
    }
    if (missing.length === 0) return [];
    let found: GitHubRunner[];
    if (missing.length > MISSING_LOOKUPS_MAX) {
      const ids = new Set(missing);
      found = (await this.#o.github.listRunners(scope, prefix, signal)).filter(
        (r) => ids.has(r.id) && !names.has(r.name),
      );
    } else {
      const answers = await Promise.all(missing.map((id) => this.#o.github.getRunner(scope, id, signal)));
      found = answers.filter((r): r is GitHubRunner => r !== null && !names.has(r.name));
    }
    if (found.length > 0) {
      this.#log.debug(
        { scope: scopeKey(scope), missing: missing.length, found: found.length },
        'runner list skipped runners',
      );
    }
    return found;
  }

  #providerHook(provider: string, scaleSet: string, result: 'ok' | 'error', durationMs: number): void {
    const hook = this.#o.hooks?.onProviderOperation;
    if (hook === undefined) return;
    safeHook(
      () => hook({ provider, scaleSet, op: 'list', result, durationMs }),
      (err) => this.#log.warn({ err }, 'onProviderOperation hook failed'),
    );
  }
}

function summarize(actions: readonly Action[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const a of actions) {
    const key = a.type === 'mark-runner' ? `mark-${a.state}` : a.type;
    out[key] = (out[key] ?? 0) + 1;
  }
  return out;
}

/** Runners per state once a pass's actions are recorded: the snapshot's, with the marks and new runners applied. */
function countAfter(snapshot: ScaleSetSnapshot, actions: readonly Action[]): ReturnType<typeof emptyCounts> {
  const counts = emptyCounts();
  const marked = new Map<string, Action & { type: 'mark-runner' }>();
  for (const a of actions) {
    if (a.type === 'mark-runner') marked.set(a.name, a);
    else if (a.type === 'create-runner' && !a.resume) counts.requested++;
  }
  for (const r of snapshot.runners) {
    const state = marked.get(r.name)?.state ?? r.state;
    if (state !== 'deleted') counts[state]++;
  }
  return counts;
}
