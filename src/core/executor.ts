/**
 * The executor carries out the planner's actions. It records intent in the store before every call out, so a crash
 * at any point leaves a record the next pass can repair (docs/core.md, "crash safety"):
 *
 *   create:  runner row `requested` -> `creating` -> [JIT config or registration token] -> [provider create] ->
 *            `starting` with the github id (the id is written with the next state: a crash before it is repaired
 *            by name from the runner list, as one during the JIT call is)
 *   delete:  [provider delete] -> instance_deleted_at;  deregister: [GitHub delete] -> registration_deleted_at
 *   re-run:  [GitHub re-run of the job an interrupted runner ran] -> the runner's reason says it was re-run (a crash
 *            between the two asks again; GitHub refuses a second re-run while the first one's attempt runs)
 *
 * `execute` does the store writes of a pass synchronously (state marks, new `requested` rows), then runs the calls
 * out on a bounded pool and resolves to one outcome per action: a partial failure is a result, not an exception.
 * Retryable failures of removals put the runner (or job) on a cool-down, during which the planner leaves it alone.
 * JIT configs and registration tokens live only in the memory of one create call; they are never stored or logged.
 */
import { setMaxListeners } from 'node:events';
import type { Logger } from 'pino';
import type { FleetConfig, ScaleSetConfig } from './fleet-config.js';
import type { Instance, Provider, Registration } from './provider-port.js';
import type { FleetStore } from './store-port.js';
import type { RunnerChange, RunnerUpdate } from './records.js';
import type { GitHubPort } from './ports.js';
import type {
  Action,
  CheckJobAction,
  CreateRunnerAction,
  DeleteInstanceAction,
  DeregisterRunnerAction,
  MarkRunnerAction,
  RerunJobAction,
} from './plan-types.js';
import { isTerminal, rerunDoneReason, rerunRefusedReason } from './planner/lifecycle.js';
import type { ReconcilerHooks } from './hooks.js';
import { safeHook } from './hooks.js';
import { afterFailure, NO_BACKOFF } from './backoff.js';
import { classifyError, isAbortError, scrub, type ClassifiedError } from './errors.js';
import { Pool } from './pool.js';
import { budgetKey, type CreatePacer, type PacingGrant } from './pacing.js';

export type ActionOutcome =
  | { readonly action: Action; readonly ok: true; readonly detail?: string }
  | { readonly action: Action; readonly ok: false; readonly error: ClassifiedError };

export interface ExecutorOptions {
  readonly config: FleetConfig;
  readonly store: FleetStore;
  readonly github: GitHubPort;
  /** One provider per scale set, keyed by scale set name. */
  readonly providers: ReadonlyMap<string, Provider>;
  readonly logger: Logger;
  readonly now: () => number;
  /** Calls out at once, across all scale sets (fleet.yaml's controller.concurrency). */
  readonly concurrency: number;
  readonly hooks?: ReconcilerHooks;
  /** Ask for a pass of a scale set (now, or at a time). */
  readonly wake: (scaleSet: string, at?: number) => void;
  /**
   * Ask for a pass of a scale set soon, coalesced with others (a removal done, a runner found busy): nothing waits
   * for it. Default: `wake`.
   */
  readonly followUp?: (scaleSet: string) => void;
  /** Observations learned from our own calls, so the reconciler's view stays current between resyncs. */
  readonly observe?: {
    instanceCreated?(scaleSet: string, instance: Instance): void;
    instanceDeleted?(scaleSet: string, name: string): void;
    registrationDeleted?(scaleSet: string, name: string): void;
  };
  /** Provider create attempts with the same registration before the runner is marked failed. Default 3. */
  readonly createAttempts?: number;
  readonly sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  /**
   * Paces JIT config requests to the installation's budget (pacing.ts). A create waits for it before it takes a
   * place in the pool, so waiting creates never hold up removals.
   */
  readonly pacer?: CreatePacer;
}

/** GitHub's default limit of runner-creating calls a minute. */
export const DEFAULT_CREATES_PER_MINUTE = 180;

/** Cool-down after a retryable failure of a removal or status check: 1 s doubling to 2 min. */
export function coolDownMs(attempts: number): number {
  return Math.min(120_000, 1000 * 2 ** Math.min(Math.max(0, attempts - 1), 10));
}

function defaultSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason as Error);
      return;
    }
    const t = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(t);
      reject(signal.reason as Error);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** How long a rate-limited GitHub call asks to wait (ms), or null when the error is no rate limit. */
function rateLimitedMs(err: unknown): number | null {
  if (typeof err !== 'object' || err === null) return null;
  const e = err as { code?: unknown; retryAfterMs?: unknown };
  if (e.code !== 'rate-limited') return null;
  return typeof e.retryAfterMs === 'number' && e.retryAfterMs >= 0 ? e.retryAfterMs : 60_000;
}

export class Executor {
  readonly #o: ExecutorOptions;
  readonly #sets: ReadonlyMap<string, ScaleSetConfig>;
  readonly #pool: Pool;
  readonly #abort = new AbortController();
  readonly #busyRunners = new Map<string, number>();
  readonly #busyJobs = new Set<number>();
  readonly #coolRunners = new Map<string, { until: number; attempts: number }>();
  readonly #coolJobs = new Map<number, { until: number; attempts: number }>();
  readonly #sleep: (ms: number, signal: AbortSignal) => Promise<void>;

  constructor(options: ExecutorOptions) {
    this.#o = options;
    this.#sets = new Map(options.config.scaleSets.map((s) => [s.name, s]));
    this.#pool = new Pool(options.concurrency);
    this.#sleep = options.sleep ?? defaultSleep;
    // Every call out listens to this one signal, each through a few layers (GitHub client, fetch, provider): with
    // the pool full that is far past Node's default of 10 listeners, whose warning would report a leak that is not.
    setMaxListeners(Math.max(10, 8 * options.concurrency), this.#abort.signal);
  }

  /** True while an operation on this runner is queued, running or cooling down after an error. */
  runnerInFlight(name: string): boolean {
    if (this.#busyRunners.has(name)) return true;
    const c = this.#coolRunners.get(name);
    return c !== undefined && this.#o.now() < c.until;
  }

  jobInFlight(id: number): boolean {
    if (this.#busyJobs.has(id)) return true;
    const c = this.#coolJobs.get(id);
    return c !== undefined && this.#o.now() < c.until;
  }

  /** Operations queued or running. */
  get pending(): number {
    return this.#pool.size;
  }

  /** Resolves when no operation is queued or running. */
  idle(): Promise<void> {
    return this.#pool.idle();
  }

  /** Aborts calls in flight and drops queued ones; their records stay as they are for the next start to repair. */
  abort(): void {
    const reason = new Error('runner-fleet is shutting down');
    this.#abort.abort(reason);
    this.#o.pacer?.close(reason);
  }

  /**
   * Runs one pass's actions. FleetStore writes (marks, new `requested` rows) happen before this returns; calls out run
   * on the pool. wake-at actions are the reconciler's and are ignored here.
   */
  execute(actions: readonly Action[]): Promise<ActionOutcome[]> {
    const immediate: ActionOutcome[] = [];
    const tasks: Promise<ActionOutcome>[] = [];
    const fresh: CreateRunnerAction[] = [];
    const marks: MarkRunnerAction[] = [];
    for (const a of actions) {
      if (a.type === 'mark-runner') marks.push(a);
      else if (a.type === 'create-runner' && !a.resume) fresh.push(a);
    }
    if (marks.length > 0) immediate.push(...this.#markRunners(marks));
    if (fresh.length > 0) {
      // Intent first: every new runner has its row before any call is made for any of them.
      this.#o.store.insertRunners(fresh.map((a) => ({ name: a.name, scaleSet: a.scaleSet })));
      for (const a of fresh) this.#hookState(a.scaleSet, a.name, null, 'requested', 'planned');
    }
    for (const a of actions) {
      switch (a.type) {
        case 'create-runner': {
          const paced = this.#paced(a);
          if (paced === undefined) {
            tasks.push(this.#runnerTask(a.name, a, () => this.#create(a)));
            break;
          }
          let grant: PacingGrant | undefined;
          const before = async (): Promise<void> => {
            grant = await paced();
          };
          // A grant whose call was never made (aborted, nothing left to create) frees its place at once.
          const task = this.#runnerTask(a.name, a, () => this.#create(a, grant), before);
          tasks.push(task.finally(() => grant?.unused()));
          break;
        }
        case 'delete-instance':
          tasks.push(this.#runnerTask(a.name, a, () => this.#deleteInstance(a)));
          break;
        case 'deregister-runner':
          tasks.push(this.#runnerTask(a.name, a, () => this.#deregister(a)));
          break;
        case 'check-job':
          tasks.push(this.#jobTask(a));
          break;
        case 'rerun-job':
          tasks.push(this.#runnerTask(a.name, a, () => this.#rerunJob(a)));
          break;
        default:
          break;
      }
    }
    return Promise.all(tasks).then((done) => [...immediate, ...done]);
  }

  #followUp(scaleSet: string): void {
    if (this.#o.followUp !== undefined) this.#o.followUp(scaleSet);
    else this.#o.wake(scaleSet);
  }

  #set(name: string): ScaleSetConfig {
    const set = this.#sets.get(name);
    if (set === undefined) throw new Error(`unknown scale set ${name}`);
    return set;
  }

  #provider(scaleSet: string): Provider {
    const p = this.#o.providers.get(scaleSet);
    if (p === undefined)
      throw Object.assign(new Error(`no provider for scale set ${scaleSet}`), {
        code: 'no-provider',
        retryable: false,
      });
    return p;
  }

  #hookState(
    scaleSet: string,
    runner: string,
    from: RunnerChange['state'] | null,
    to: NonNullable<RunnerChange['state']>,
    reason: string | null,
  ): void {
    const hook = this.#o.hooks?.onRunnerState;
    if (hook === undefined) return;
    safeHook(
      () => hook({ scaleSet, runner, from: from ?? null, to, reason }),
      (err) => this.#o.logger.warn({ err }, 'onRunnerState hook failed'),
    );
  }

  /** Updates a runner row (if it still exists) and reports a state change. */
  #update(name: string, change: RunnerChange): void {
    if (this.#o.store.runner(name) === null) return;
    this.#reportUpdate(name, this.#o.store.updateRunner(name, change));
  }

  #reportUpdate(name: string, { before, after }: RunnerUpdate): void {
    if (before.state !== after.state) {
      this.#hookState(after.scaleSet, name, before.state, after.state, after.reason);
      this.#o.logger.debug(
        { scaleSet: after.scaleSet, runner: name, from: before.state, to: after.state, reason: after.reason },
        'runner state',
      );
    }
  }

  /** A pass's marks: every row written in one transaction, then the hooks and the backoff each mark implies. */
  #markRunners(marks: readonly MarkRunnerAction[]): ActionOutcome[] {
    const now = this.#o.now();
    const outcomes: ActionOutcome[] = [];
    const applied: MarkRunnerAction[] = [];
    const changes: { name: string; change: RunnerChange }[] = [];
    for (const a of marks) {
      const current = this.#o.store.runner(a.name);
      if (current === null) {
        outcomes.push({ action: a, ok: true, detail: 'no such runner' });
        continue;
      }
      applied.push(a);
      changes.push({
        name: a.name,
        change: {
          state: a.state,
          reason: a.reason,
          ...(a.instanceGone && current.instanceDeletedAt === null ? { instanceDeletedAt: now } : {}),
          ...(a.registrationGone && current.registrationDeletedAt === null
            ? { registrationDeletedAt: now }
            : {}),
          ...(a.githubId !== undefined ? { githubId: a.githubId } : {}),
        },
      });
    }
    if (changes.length === 0) return outcomes;
    const updates = this.#o.store.updateRunners(changes);
    for (let i = 0; i < applied.length; i++) {
      const a = applied[i]!;
      this.#reportUpdate(a.name, updates[i]!);
      if (a.failure) this.#recordFailure(a.scaleSet, a.reason);
      else if (a.state === 'idle' || a.state === 'busy') this.#resetFailures(a.scaleSet);
      outcomes.push({ action: a, ok: true });
    }
    return outcomes;
  }

  #recordFailure(scaleSet: string, reason: string): void {
    const now = this.#o.now();
    const prev = this.#o.store.backoff(scaleSet);
    const next = afterFailure(prev, now, this.#o.config.controller.failureBackoff);
    this.#o.store.setBackoff(scaleSet, next, { reason, at: now });
    if (next.until > now) this.#o.wake(scaleSet, next.until);
    if (next !== prev) {
      this.#o.logger.warn(
        { scaleSet, failures: next.failures, until: next.until, reason },
        'runner failed; backing off',
      );
    }
  }

  #resetFailures(scaleSet: string): void {
    const prev = this.#o.store.backoff(scaleSet);
    if (prev.failures !== 0 || prev.until !== 0) this.#o.store.setBackoff(scaleSet, NO_BACKOFF);
  }

  /** The wait for the GitHub budget a JIT create needs, or undefined when it needs none. */
  #paced(a: CreateRunnerAction): (() => Promise<PacingGrant>) | undefined {
    const pacer = this.#o.pacer;
    const set = this.#sets.get(a.scaleSet);
    if (pacer === undefined || set === undefined || set.registration !== 'jit') return undefined;
    const key = budgetKey(this.#o.config, set.scope);
    const perMinute = this.#o.config.github.createsPerMinute ?? DEFAULT_CREATES_PER_MINUTE;
    // No abort listener per waiter (a burst queues hundreds): abort() closes the pacer instead.
    return () => pacer.acquire(key, perMinute, a.scaleSet, a.order ?? this.#o.now());
  }

  #runnerTask(
    name: string,
    action: Action,
    run: () => Promise<ActionOutcome>,
    before?: () => Promise<void>,
  ): Promise<ActionOutcome> {
    this.#busyRunners.set(name, (this.#busyRunners.get(name) ?? 0) + 1);
    const ready = before === undefined ? Promise.resolve() : before();
    return ready
      .then(() =>
        this.#pool.run(async () => {
          if (this.#abort.signal.aborted) return this.#aborted(action);
          return run();
        }),
      )
      .catch((err: unknown) => this.#unexpected(action, err))
      .then((outcome) => {
        const left = (this.#busyRunners.get(name) ?? 1) - 1;
        if (left <= 0) this.#busyRunners.delete(name);
        else this.#busyRunners.set(name, left);
        if (outcome.ok) this.#coolRunners.delete(name);
        else if (outcome.error.code !== 'aborted' && action.type !== 'create-runner') {
          const attempts = (this.#coolRunners.get(name)?.attempts ?? 0) + 1;
          const until = this.#o.now() + coolDownMs(attempts);
          this.#coolRunners.set(name, { until, attempts });
          this.#o.wake(action.scaleSet, until);
        }
        return outcome;
      });
  }

  #jobTask(a: CheckJobAction): Promise<ActionOutcome> {
    this.#busyJobs.add(a.jobId);
    return this.#pool
      .run(async () => {
        if (this.#abort.signal.aborted) return this.#aborted(a);
        return this.#checkJob(a);
      })
      .catch((err: unknown) => this.#unexpected(a, err))
      .then((outcome) => {
        this.#busyJobs.delete(a.jobId);
        if (outcome.ok) this.#coolJobs.delete(a.jobId);
        else if (outcome.error.code !== 'aborted') {
          const attempts = (this.#coolJobs.get(a.jobId)?.attempts ?? 0) + 1;
          const until = this.#o.now() + coolDownMs(attempts);
          this.#coolJobs.set(a.jobId, { until, attempts });
          this.#o.wake(a.scaleSet, until);
        }
        return outcome;
      });
  }

  #aborted(action: Action): ActionOutcome {
    return { action, ok: false, error: { code: 'aborted', message: 'shutting down', retryable: true } };
  }

  #unexpected(action: Action, err: unknown): ActionOutcome {
    const error =
      isAbortError(err) || this.#abort.signal.aborted
        ? { ...classifyError(err), code: 'aborted' }
        : classifyError(err);
    if (error.code !== 'aborted') {
      this.#o.logger.error(
        { err, action: action.type, scaleSet: action.scaleSet },
        'action failed unexpectedly',
      );
    }
    return { action, ok: false, error };
  }

  #providerOp<T>(scaleSet: string, op: 'create' | 'delete', run: () => Promise<T>): Promise<T> {
    const provider = this.#provider(scaleSet);
    const started = performance.now();
    const report = (result: 'ok' | 'error'): void => {
      const hook = this.#o.hooks?.onProviderOperation;
      if (hook === undefined) return;
      safeHook(
        () =>
          hook({ provider: provider.kind, scaleSet, op, result, durationMs: performance.now() - started }),
        (err) => this.#o.logger.warn({ err }, 'onProviderOperation hook failed'),
      );
    };
    return run().then(
      (v) => {
        report('ok');
        return v;
      },
      (err: unknown) => {
        report('error');
        throw err;
      },
    );
  }

  /** requested -> creating -> registration -> instance -> starting. */
  async #create(a: CreateRunnerAction, grant?: PacingGrant): Promise<ActionOutcome> {
    const signal = this.#abort.signal;
    const set = this.#set(a.scaleSet);
    const log = this.#o.logger.child({ scaleSet: a.scaleSet, runner: a.name });
    const record = this.#o.store.runner(a.name);
    if (record === null || record.state !== 'requested') {
      return { action: a, ok: true, detail: `runner is ${record?.state ?? 'gone'}; nothing to create` };
    }
    // From here on a registration may exist: a crash leaves `creating`, which the planner repairs.
    this.#update(a.name, { state: 'creating', reason: 'obtaining registration' });

    let registration: Registration;
    let githubId: number | undefined;
    const secrets: string[] = [];
    try {
      if (set.registration === 'jit') {
        // The call holds its place in the budget until a minute after it completes, however it ends.
        const jit = await this.#o.github
          .generateJitConfig(
            set.scope,
            { name: a.name, runnerGroup: set.runnerGroup, labels: set.labels, scaleSet: set.name },
            signal,
          )
          .finally(() => grant?.done());
        if (jit.encodedJitConfig === '') {
          // 409 after a retry: the name is registered but we hold no config for it. Remove that registration
          // (the planner does, from `finished`) and let the next pass create a runner under a new name.
          this.#update(a.name, {
            state: 'finished',
            reason: 'runner name already registered without a usable config',
            githubId: jit.runner.id,
            instanceDeletedAt: this.#o.now(),
          });
          this.#o.wake(a.scaleSet);
          return {
            action: a,
            ok: false,
            error: { code: 'name-conflict', message: 'runner name already registered', retryable: true },
          };
        }
        secrets.push(jit.encodedJitConfig);
        // Recorded with the next state (starting or failed), not on its own: a crash before that leaves `creating`,
        // whose repair finds the registration by name in the runner list.
        githubId = jit.runner.id;
        registration = { mode: 'jit', jitConfig: jit.encodedJitConfig };
      } else {
        const token = await this.#o.github.registrationToken(set.scope, signal);
        secrets.push(token.token);
        registration = {
          mode: 'token',
          url: this.#o.github.registrationUrl(set.scope),
          token: token.token,
          labels: set.labels,
          runnerGroup: set.runnerGroup,
          ephemeral: set.ephemeral,
        };
      }
    } catch (err) {
      const wait = rateLimitedMs(err);
      if (wait !== null && set.registration === 'jit' && this.#o.pacer !== undefined && !signal.aborted) {
        // Refused anyway (another client spends the same budget, or a stricter limit): the whole installation
        // waits once, and this runner waits in line again for the budget rather than retrying on its own.
        const key = budgetKey(this.#o.config, set.scope);
        const perMinute = this.#o.config.github.createsPerMinute ?? DEFAULT_CREATES_PER_MINUTE;
        this.#o.pacer.pause(key, perMinute, wait);
        log.warn(
          { retryAfterMs: wait },
          "GitHub refused a JIT config request (rate limit); the installation's creates wait",
        );
        this.#update(a.name, { state: 'requested', reason: "waiting for GitHub's rate budget" });
        this.#o.wake(a.scaleSet, this.#o.now() + wait);
        return {
          action: a,
          ok: false,
          error: {
            code: 'rate-limited',
            message: 'GitHub rate limit: the installation waits',
            retryable: true,
          },
        };
      }
      return this.#createFailed(a, 'registration', err, secrets, log);
    }

    const spec = { name: a.name, fleet: this.#o.config.name, scaleSet: a.scaleSet, registration };
    const attempts = Math.max(1, this.#o.createAttempts ?? 3);
    for (let attempt = 1; ; attempt++) {
      try {
        const instance = await this.#providerOp(a.scaleSet, 'create', () =>
          this.#provider(a.scaleSet).create(spec, signal),
        );
        this.#update(a.name, {
          state: 'starting',
          reason: 'instance created',
          ...(githubId !== undefined ? { githubId } : {}),
        });
        this.#o.observe?.instanceCreated?.(a.scaleSet, instance);
        return { action: a, ok: true };
      } catch (err) {
        const error = classifyError(err);
        if (signal.aborted || !error.retryable || attempt >= attempts) {
          return this.#createFailed(a, 'instance', err, secrets, log, githubId);
        }
        // The registration is held in memory only; retry with it rather than spend a new one.
        log.warn({ code: error.code, attempt }, 'provider create failed; retrying');
        try {
          await this.#sleep(200 * 2 ** (attempt - 1), signal);
        } catch (abortErr) {
          return this.#createFailed(a, 'instance', abortErr, secrets, log, githubId);
        }
      }
    }
  }

  #createFailed(
    a: CreateRunnerAction,
    step: 'registration' | 'instance',
    err: unknown,
    secrets: readonly string[],
    log: Logger,
    githubId?: number,
  ): ActionOutcome {
    const c = classifyError(err);
    const error: ClassifiedError = { ...c, message: scrub(c.message, secrets) };
    if (this.#abort.signal.aborted) {
      // Shutting down: leave the row in `creating` for the next start to repair; no failure is recorded.
      if (githubId !== undefined) this.#update(a.name, { githubId });
      return { action: a, ok: false, error: { ...error, code: 'aborted' } };
    }
    const reason = `${step} failed: ${error.code}${error.status !== undefined ? ` (${error.status})` : ''}`;
    log.warn(
      { code: error.code, status: error.status, retryable: error.retryable, step, reason: error.message },
      'create failed',
    );
    this.#update(a.name, { state: 'failed', reason, ...(githubId !== undefined ? { githubId } : {}) });
    this.#recordFailure(a.scaleSet, reason);
    this.#o.wake(a.scaleSet);
    return { action: a, ok: false, error };
  }

  async #deleteInstance(a: DeleteInstanceAction): Promise<ActionOutcome> {
    const signal = this.#abort.signal;
    try {
      await this.#providerOp(a.scaleSet, 'delete', () => this.#provider(a.scaleSet).delete(a.name, signal));
    } catch (err) {
      const error = classifyError(err);
      this.#o.logger.warn(
        { scaleSet: a.scaleSet, runner: a.name, code: error.code, reason: error.message },
        'delete instance failed',
      );
      return { action: a, ok: false, error };
    }
    const record = this.#o.store.runner(a.name);
    if (record !== null && record.state !== 'deleted') {
      this.#update(a.name, { instanceDeletedAt: this.#o.now() });
    } else {
      this.#o.store.recordEvent({
        kind: 'instance',
        scaleSet: a.scaleSet,
        runner: a.name,
        event: 'deleted',
        reason: a.reason,
      });
    }
    this.#o.observe?.instanceDeleted?.(a.scaleSet, a.name);
    this.#o.logger.info({ scaleSet: a.scaleSet, runner: a.name, reason: a.reason }, 'instance deleted');
    this.#followUp(a.scaleSet);
    return { action: a, ok: true };
  }

  async #deregister(a: DeregisterRunnerAction): Promise<ActionOutcome> {
    const signal = this.#abort.signal;
    const set = this.#set(a.scaleSet);
    const log = this.#o.logger.child({ scaleSet: a.scaleSet, runner: a.name });
    let gone = false;
    try {
      if (a.checkBusy) {
        const current = await this.#o.github.getRunner(set.scope, a.runnerId, signal);
        if (current === null) gone = true;
        else if (current.busy) return this.#foundBusy(a);
      }
      if (!gone) await this.#o.github.deleteRunner(set.scope, a.runnerId, signal);
    } catch (err) {
      const error = classifyError(err);
      // GitHub refuses to remove a runner that is running a job.
      if (error.status === 422) return this.#foundBusy(a);
      log.warn({ code: error.code, status: error.status, reason: error.message }, 'deregister failed');
      return { action: a, ok: false, error };
    }
    const now = this.#o.now();
    const record = this.#o.store.runner(a.name);
    if (record !== null && record.state !== 'deleted') {
      const retiring = a.retire && record.state === 'idle';
      this.#update(a.name, {
        ...(retiring ? { state: 'finished' as const, reason: a.reason } : {}),
        registrationDeletedAt: now,
        ...(record.githubId === null ? { githubId: a.runnerId } : {}),
      });
    } else {
      this.#o.store.recordEvent({
        kind: 'registration',
        scaleSet: a.scaleSet,
        runner: a.name,
        event: 'deleted',
        reason: a.reason,
      });
    }
    this.#o.observe?.registrationDeleted?.(a.scaleSet, a.name);
    log.info({ reason: a.reason }, 'runner deregistered');
    this.#followUp(a.scaleSet);
    return { action: a, ok: true };
  }

  #foundBusy(a: DeregisterRunnerAction): ActionOutcome {
    const record = this.#o.store.runner(a.name);
    if (record !== null && isTerminal(record.state)) {
      // Its instance is gone, but GitHub still counts the job as running until it notices: ask again after a
      // cool-down, not on the very next pass.
      return {
        action: a,
        ok: false,
        error: {
          code: 'runner-busy',
          message: 'GitHub still reports the runner running a job',
          retryable: true,
        },
      };
    }
    if (record !== null && (record.state === 'idle' || record.state === 'starting')) {
      this.#update(a.name, { state: 'busy', reason: 'GitHub reports the runner busy' });
    }
    this.#followUp(a.scaleSet);
    return { action: a, ok: true, detail: 'runner busy; left alone' };
  }

  /** Asks GitHub to re-run the job of a runner whose instance was interrupted, then says so on the runner. */
  async #rerunJob(a: RerunJobAction): Promise<ActionOutcome> {
    const record = this.#o.store.runner(a.name);
    if (record === null || record.state === 'deleted') {
      return { action: a, ok: true, detail: 'runner gone; nothing to re-run' };
    }
    const log = this.#o.logger.child({ scaleSet: a.scaleSet, runner: a.name, jobId: a.jobId });
    const job = this.#o.store.job(a.jobId);
    const refused = (why: string): void => {
      const reason = rerunRefusedReason(a.jobId, why);
      this.#update(a.name, { reason });
      this.#o.store.recordEvent({
        kind: 'job',
        scaleSet: a.scaleSet,
        runner: a.name,
        jobId: a.jobId,
        event: 'rerun-refused',
        reason,
      });
      log.warn({ reason: why }, 'interrupted job not re-run');
      this.#followUp(a.scaleSet);
    };
    if (job === null) {
      refused('the job is no longer known here');
      return { action: a, ok: true, detail: 'job unknown' };
    }
    try {
      await this.#o.github.rerunJob(job.owner, job.repo, a.jobId, this.#abort.signal);
    } catch (err) {
      const error = classifyError(err);
      // Retryable (the run is still in progress, throttling, 5xx): the runner cools down and the planner asks again.
      if (error.retryable || this.#abort.signal.aborted) {
        log.info({ code: error.code, status: error.status }, 're-run of an interrupted job not accepted yet');
        return { action: a, ok: false, error };
      }
      refused(`${error.code}${error.status !== undefined ? ` (${error.status})` : ''}`);
      return { action: a, ok: false, error };
    }
    const reason = rerunDoneReason(a.jobId);
    this.#update(a.name, { reason });
    this.#o.store.recordEvent({
      kind: 'job',
      scaleSet: a.scaleSet,
      runner: a.name,
      jobId: a.jobId,
      event: 're-run',
      reason: `runner ${a.name}'s instance was interrupted while it ran the job`,
    });
    log.info('interrupted job re-run');
    this.#followUp(a.scaleSet);
    return { action: a, ok: true };
  }

  async #checkJob(a: CheckJobAction): Promise<ActionOutcome> {
    try {
      const info = await this.#o.github.getJob(a.owner, a.repo, a.jobId, this.#abort.signal);
      this.#o.store.applyJobStatus(a.jobId, info);
      return { action: a, ok: true };
    } catch (err) {
      const error = classifyError(err);
      // Counted as a check: a job whose checks keep failing must not stay first in line for the check budget.
      if (!this.#abort.signal.aborted) this.#o.store.markJobChecked(a.jobId);
      this.#o.logger.warn(
        { scaleSet: a.scaleSet, jobId: a.jobId, code: error.code },
        'job status check failed',
      );
      return { action: a, ok: false, error };
    }
  }
}
