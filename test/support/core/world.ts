/**
 * A small model of the world for the planner's property tests: GitHub (jobs, runner registrations, assignment of
 * queued jobs to idle matching runners, webhooks that can be duplicated, reordered, delayed or lost, re-runs of jobs)
 * and a provider (instances that boot, fail, hang, die, or are taken by the cloud under a busy runner: an
 * interruption, after which GitHub fails the lost job some time later). The controller side is the real thing: the real planner, executor,
 * observations and SQLite store; only the ports are model implementations whose calls stay pending until the test
 * releases them, so calls interleave with everything else. A crash drops every pending call (some of which reached
 * the world first), closes the store and reopens the file, and starts a new executor with empty memory.
 *
 * Model assumption (documented in docs/core.md): a runner that has not come online within its bootstrap timeout
 * never does; boots happen inside that window.
 *
 * Scope: jobs come from repositories of the fleet's organization and of another owner. GitHub gives a job only to a
 * runner whose scope serves its repository (an organization's runners its repositories, a repository's runners
 * that repository), and the model does the same.
 */
import path from 'node:path';
import pino from 'pino';
import type { FleetConfig, ScaleSetConfig } from '../../../src/core/fleet-config.js';
import type { GitHubPort, JobInfo, JitConfigResult, RegistrationToken } from '../../../src/core/ports.js';
import type { GitHubRunner } from '../../../src/core/types.js';
import { ProviderError } from '../../../src/providers/provider.js';
import type { Instance, InstanceState, Provider, Registration } from '../../../src/providers/provider.js';
import { Store } from '../../../src/store/store.js';
import { LabelRouter, IMPLICIT_LABEL, normalizeLabels } from '../../../src/core/labels.js';
import { Observations } from '../../../src/core/observations.js';
import { Executor } from '../../../src/core/executor.js';
import { planScaleSet, isTerminal } from '../../../src/core/planner.js';
import { buildSnapshot, releaseDeletedRunners } from '../../../src/core/snapshot.js';
import { scaleSetOf, seededRandom } from '../../../src/core/names.js';
import type { Action } from '../../../src/core/plan-types.js';
import { fleetConfig } from './planner.js';

/** The repositories jobs come from: two of the fleet's organization, and one of another owner. */
export const JOB_REPOS: readonly { readonly owner: string; readonly repo: string }[] = [
  { owner: 'octo-org', repo: 'app' },
  { owner: 'octo-org', repo: 'lib' },
  { owner: 'other-org', repo: 'app' },
];

/** Does a scale set of this scope serve the repository (as GitHub decides which runners may take a job)? */
export function scopeServes(scope: ScaleSetConfig['scope'], owner: string, repo: string): boolean {
  if ('org' in scope) return scope.org.toLowerCase() === owner.toLowerCase();
  if ('repo' in scope) return scope.repo.toLowerCase() === `${owner}/${repo}`.toLowerCase();
  return true;
}

export const JOB_LABELS: readonly (readonly string[])[] = [
  ['linux'],
  ['linux', 'x64'],
  ['self-hosted', 'Linux', 'X64'],
  ['linux', 'x64', 'gpu'],
  ['linux', 'arm64'],
  ['windows'],
];

export type CallOutcome = 'ok' | 'fail' | 'lost';

export type WorldEvent =
  | {
      readonly t: 'job';
      readonly labels: number;
      readonly copies: number;
      readonly newId: boolean;
      /** Index into JOB_REPOS; the fleet's organization's first repository when absent. */
      readonly repo?: number;
    }
  | { readonly t: 'deliver'; readonly i: number }
  | { readonly t: 'drop'; readonly i: number }
  | { readonly t: 'plan' }
  | { readonly t: 'release'; readonly i: number; readonly outcome: CallOutcome }
  | { readonly t: 'resync' }
  | { readonly t: 'tick'; readonly ms: number }
  | { readonly t: 'boot'; readonly i: number; readonly ok: boolean }
  | { readonly t: 'assign'; readonly i: number }
  | { readonly t: 'finish'; readonly i: number }
  | { readonly t: 'cancel'; readonly i: number }
  | { readonly t: 'kill'; readonly i: number }
  | { readonly t: 'interrupt'; readonly i: number }
  | { readonly t: 'crash'; readonly reached: readonly boolean[] }
  | { readonly t: 'orphan'; readonly set: number }
  | { readonly t: 'stray'; readonly set: number };

export interface WorldOptions {
  readonly sets: readonly ScaleSetConfig[];
  readonly controller: FleetConfig['controller'];
  readonly dir: string;
  readonly seed: number;
  /** Provider pushes instance changes (watch). */
  readonly watch: boolean;
}

interface TruthRunner {
  id: number;
  name: string;
  scaleSet: string;
  labels: string[];
  online: boolean;
  busy: boolean;
  jobId: number | null;
  ephemeral: boolean;
}

interface TruthInstance {
  name: string;
  scaleSet: string;
  state: InstanceState;
  createdAt: number;
  registration: Registration | null;
  /** The cloud took it (Instance.interrupted). */
  interrupted?: boolean;
}

interface TruthJob {
  id: number;
  owner: string;
  repo: string;
  labels: readonly string[];
  status: 'queued' | 'in_progress' | 'completed';
  runner: string | null;
  routable: boolean;
  /** The scale set the router sends it to (null: none serves it). */
  routedTo: string | null;
  /** Its runner's instance was interrupted: GitHub fails it (conclusion failure) when it next finishes jobs. */
  lost?: boolean;
  conclusion?: 'success' | 'failure';
  /** Cancelled while queued (the `cancel` event). */
  cancelled?: boolean;
}

interface Webhook {
  readonly deliveryId: string;
  readonly action: 'queued' | 'in_progress' | 'completed';
  readonly jobId: number;
  /** Further copies GitHub (or a proxy) sends; delivered later, after this one. */
  readonly copies: readonly string[];
}

let worldCount = 0;

interface PendingCall {
  readonly kind: 'jit' | 'create' | 'delete' | 'deregister' | 'rerun';
  readonly name: string;
  readonly apply: () => unknown;
  readonly resolve: (v: unknown) => void;
  readonly reject: (e: unknown) => void;
}

const silent = pino({ level: 'silent' });
const flush = () => new Promise<void>((r) => setImmediate(r));

function httpError(status: number, message: string): Error {
  return Object.assign(new Error(message), { status });
}

export class World {
  now = 1_000_000;
  readonly config: FleetConfig;
  readonly sets: readonly ScaleSetConfig[];
  readonly file: string;
  readonly #router: LabelRouter;
  store: Store;
  observations = new Observations();
  executor: Executor;
  readonly #names: () => number;

  // GitHub and provider truth
  readonly runners = new Map<string, TruthRunner>();
  readonly instances = new Map<string, TruthInstance>();
  readonly jobs = new Map<number, TruthJob>();
  /** Webhooks GitHub sent and we have not received yet; duplicates of a delivered one wait in `dupes`. */
  webhooks: Webhook[] = [];
  dupes: Webhook[] = [];
  pending: PendingCall[] = [];
  #nextRunnerId = 1;
  #nextJobId = 1;
  #nextDelivery = 1;
  #strays = 0;
  readonly #watch: boolean;

  // bookkeeping for the invariants
  readonly violations: string[] = [];
  readonly created = new Set<string>();
  readonly ranJob = new Set<string>();
  readonly externalNames = new Set<string>();
  /**
   * Jobs whose runner's instance was interrupted while running them: that runner's scale set, and whether the
   * controller's record of the runner was live then (a runner it had already given up on, say after a create whose
   * answer was lost, is not followed any more).
   */
  readonly interruptedJobs = new Map<number, { readonly set: string; readonly tracked: boolean }>();
  /** Re-runs GitHub accepted: the job re-run and the new job it queued. */
  readonly reruns: { readonly from: number; readonly to: number }[] = [];
  readonly plans: { at: number; scaleSet: string; actions: Action[]; backoffUntil: number }[] = [];
  healed = false;

  constructor(options: WorldOptions) {
    this.sets = options.sets;
    this.config = fleetConfig([...options.sets], options.controller);
    this.file = path.join(options.dir, `world-${options.seed}-${++worldCount}.db`);
    this.#router = new LabelRouter(options.sets);
    this.#names = seededRandom(options.seed);
    this.#watch = options.watch;
    this.store = this.#openStore();
    this.executor = this.#newExecutor();
  }

  close(): void {
    this.store.close();
  }

  #openStore(): Store {
    return Store.open({ path: this.file, route: (job) => this.#router.route(job), now: () => this.now });
  }

  #newExecutor(): Executor {
    return new Executor({
      config: this.config,
      concurrency: this.config.controller.concurrency,
      store: this.store,
      github: this.#github(),
      providers: new Map(this.sets.map((s) => [s.name, this.#provider(s.name)])),
      logger: silent,
      now: () => this.now,
      wake: () => undefined,
      sleep: () => Promise.resolve(),
      observe: {
        instanceCreated: (s, i) => this.observations.upsertInstance(s, i, this.now),
        instanceDeleted: (s, n) => this.observations.instanceDeleted(s, n, this.now),
        registrationDeleted: (s, n) => this.observations.registrationDeleted(s, n, this.now),
      },
    });
  }

  #gate<T>(kind: PendingCall['kind'], name: string, apply: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.pending.push({ kind, name, apply, resolve: resolve as (v: unknown) => void, reject });
    });
  }

  #ghRunner(r: TruthRunner): GitHubRunner {
    return {
      id: r.id,
      name: r.name,
      status: r.online ? 'online' : 'offline',
      busy: r.busy,
      labels: r.labels,
    };
  }

  #github(): GitHubPort {
    return {
      generateJitConfig: (_scope, req) =>
        this.#gate('jit', req.name, (): JitConfigResult => {
          const existing = this.runners.get(req.name);
          if (existing !== undefined) return { runner: this.#ghRunner(existing), encodedJitConfig: '' };
          const set = this.sets.find(
            (s) =>
              s.name ===
              scaleSetOf(
                req.name,
                this.sets.map((x) => x.name),
              ),
          )!;
          const r: TruthRunner = {
            id: this.#nextRunnerId++,
            name: req.name,
            scaleSet: set.name,
            labels: [...req.labels],
            online: false,
            busy: false,
            jobId: null,
            ephemeral: true,
          };
          this.runners.set(r.name, r);
          return { runner: this.#ghRunner(r), encodedJitConfig: `jit-secret-${req.name}` };
        }),
      registrationToken: async (): Promise<RegistrationToken> => ({
        token: 'registration-token-secret',
        expiresAt: this.now + 3_600_000,
      }),
      listRunners: async (_scope, prefix) =>
        [...this.runners.values()].filter((r) => r.name.startsWith(prefix)).map((r) => this.#ghRunner(r)),
      getRunner: async (_scope, id) => {
        const r = [...this.runners.values()].find((x) => x.id === id);
        return r === undefined ? null : this.#ghRunner(r);
      },
      deleteRunner: (_scope, id) => {
        const r = [...this.runners.values()].find((x) => x.id === id);
        return this.#gate('deregister', r?.name ?? `#${id}`, () => {
          const now = [...this.runners.values()].find((x) => x.id === id);
          if (now === undefined) return; // 404 is success
          if (now.busy) throw httpError(422, 'Runner is still running a job');
          this.runners.delete(now.name);
        });
      },
      getJob: async (_owner, _repo, id): Promise<JobInfo | null> => {
        const j = this.jobs.get(id);
        if (j === undefined) return null;
        const conclusion = j.status === 'completed' ? (j.conclusion ?? 'success') : null;
        return { id, status: j.status, conclusion, runnerName: j.runner, labels: [...j.labels] };
      },
      rerunJob: (_owner, _repo, id) =>
        this.#gate('rerun', `job ${id}`, () => {
          const j = this.jobs.get(id);
          if (j === undefined) throw httpError(404, 'Not Found');
          if (j.status !== 'completed') {
            // GitHub re-runs only once the run has ended: a retryable refusal, as the real client classifies it.
            throw Object.assign(httpError(403, 'The workflow run containing this job is already running'), {
              code: 'run-in-progress',
              retryable: true,
            });
          }
          const cut = this.interruptedJobs.get(id);
          if (cut === undefined) this.violations.push(`re-ran job ${id}, which no interruption cut short`);
          else if (this.#set(cut.set)?.rerunInterruptedJobs !== true) {
            this.violations.push(`re-ran job ${id} of scale set ${cut.set}, which did not opt in`);
          }
          const to = this.#nextJobId++;
          this.jobs.set(to, {
            id: to,
            owner: j.owner,
            repo: j.repo,
            labels: j.labels,
            status: 'queued',
            runner: null,
            routable: j.routable,
            routedTo: j.routedTo,
          });
          this.reruns.push({ from: id, to });
          this.#pushWebhook('queued', to);
        }),
      registrationUrl: () => 'https://github.com/octo-org',
    };
  }

  #provider(scaleSet: string): Provider {
    const toInstance = (i: TruthInstance): Instance => this.#instanceOf(i);
    return {
      kind: 'model',
      create: (spec) =>
        this.#gate('create', spec.name, () => {
          if (spec.registration.mode === 'jit' && !spec.registration.jitConfig.startsWith('jit-secret-')) {
            this.violations.push(`instance ${spec.name} created without a JIT config`);
          }
          const existing = this.instances.get(spec.name);
          if (existing !== undefined) return toInstance(existing);
          const i: TruthInstance = {
            name: spec.name,
            scaleSet,
            state: 'pending',
            createdAt: this.now,
            registration: spec.registration,
          };
          this.instances.set(i.name, i);
          return toInstance(i);
        }),
      delete: (name) =>
        this.#gate('delete', name, () => {
          const i = this.instances.get(name);
          if (i === undefined) return;
          const r = this.runners.get(name);
          const running = i.state === 'pending' || i.state === 'running';
          if (running && r?.busy) {
            this.violations.push(
              `invariant 2: deleted instance ${name} while its runner was busy (job ${r.jobId})`,
            );
          }
          this.instances.delete(name);
          if (r !== undefined) r.online = false;
        }),
      list: async () => [...this.instances.values()].filter((i) => i.scaleSet === scaleSet).map(toInstance),
    };
  }

  #pushWebhook(
    action: 'queued' | 'in_progress' | 'completed',
    jobId: number,
    copies = 1,
    newId = false,
  ): void {
    const id = `d${this.#nextDelivery++}`;
    const extra: string[] = [];
    // Copies get their own ids from a separate counter, so runs with and without copies number the rest alike.
    for (let c = 1; c < copies; c++) extra.push(newId ? `copy-${id}-${c}` : id);
    this.webhooks.push({ deliveryId: id, action, jobId, copies: extra });
  }

  /** Delivers one original webhook (and queues its copies), then one waiting copy if any. */
  deliver(i: number): void {
    if (this.webhooks.length > 0) {
      const w = this.webhooks.splice(i % this.webhooks.length, 1)[0]!;
      this.#deliver(w);
      for (const id of w.copies) this.dupes.push({ ...w, deliveryId: id, copies: [] });
    }
    if (this.dupes.length > 0) this.#deliver(this.dupes.splice(i % this.dupes.length, 1)[0]!);
  }

  deliverAll(): void {
    while (this.webhooks.length > 0 || this.dupes.length > 0) this.deliver(0);
  }

  #deliver(w: Webhook): void {
    const j = this.jobs.get(w.jobId)!;
    this.store.acceptWorkflowJob({
      deliveryId: w.deliveryId,
      action: w.action,
      installationId: 1,
      job: {
        id: j.id,
        runId: j.id,
        owner: j.owner,
        repo: j.repo,
        labels: [...j.labels],
        status: w.action,
        conclusion: w.action === 'completed' ? (j.conclusion ?? 'success') : null,
        runnerId: null,
        runnerName: w.action === 'queued' ? null : j.runner,
        createdAt: null,
        startedAt: null,
        completedAt: null,
      },
    });
  }

  #instanceOf(i: TruthInstance): Instance {
    return {
      name: i.name,
      fleet: this.config.name,
      scaleSet: i.scaleSet,
      state: i.state,
      createdAt: i.createdAt,
      ...(i.interrupted === true ? { interrupted: true } : {}),
    };
  }

  #watchEvent(i: TruthInstance): void {
    if (!this.#watch) return;
    this.observations.upsertInstance(i.scaleSet, this.#instanceOf(i), this.now);
  }

  #set(name: string): ScaleSetConfig | undefined {
    return this.sets.find((s) => s.name === name);
  }

  /** GitHub gives a job only to a runner whose scale set's scope serves the job's repository. */
  #serves(r: TruthRunner, job: TruthJob): boolean {
    const set = this.#set(r.scaleSet);
    return set !== undefined && scopeServes(set.scope, job.owner, job.repo);
  }

  #covers(r: TruthRunner, labels: readonly string[]): boolean {
    const have = new Set([...normalizeLabels(r.labels), IMPLICIT_LABEL]);
    return normalizeLabels(labels).every((l) => have.has(l));
  }

  plan(): void {
    for (const set of this.sets) {
      const snapshot = buildSnapshot(set, this.store, this.observations, this.executor);
      const actions = planScaleSet(snapshot, set, this.config.controller, this.now, {
        random: this.#names,
        nameTaken: (name) => this.store.runner(name) !== null,
      });
      const backoffUntil = this.store.backoff(set.name).until;
      this.plans.push({ at: this.now, scaleSet: set.name, actions, backoffUntil });
      for (const a of actions) if (a.type === 'create-runner' && !a.resume) this.created.add(a.name);
      void this.executor.execute(actions);
    }
  }

  resync(): void {
    const names = this.sets.map((s) => s.name);
    for (const set of this.sets) {
      const runners = [...this.runners.values()].filter((r) => scaleSetOf(r.name, names) === set.name);
      this.observations.setGitHub(
        set.name,
        this.now,
        runners.map((r) => this.#ghRunner(r)),
      );
      const instances = [...this.instances.values()]
        .filter((i) => i.scaleSet === set.name)
        .map((i) => this.#instanceOf(i));
      this.observations.setInstances(set.name, this.now, instances);
    }
    // As the reconciler does after each resync: deleted records planning no longer needs leave the store's memory.
    releaseDeletedRunners(
      this.sets,
      this.store,
      this.observations,
      this.executor,
      this.config.controller,
      this.now,
    );
  }

  release(i: number, outcome: CallOutcome): void {
    if (this.pending.length === 0) return;
    const [call] = this.pending.splice(i % this.pending.length, 1);
    if (call === undefined) return;
    const failure = (): Error =>
      call.kind === 'create' || call.kind === 'delete'
        ? new ProviderError('provider unavailable', { code: 'MODEL_UNAVAILABLE', retryable: true })
        : httpError(502, 'bad gateway');
    if (outcome === 'fail' && !this.healed) {
      call.reject(failure());
      return;
    }
    try {
      const result = call.apply();
      if (outcome === 'lost' && !this.healed) call.reject(failure());
      else call.resolve(result);
    } catch (err) {
      call.reject(err);
    }
  }

  boot(i: number, ok: boolean): void {
    const candidates = [...this.instances.values()].filter(
      (x) => x.state === 'pending' && this.now - x.createdAt < (this.#set(x.scaleSet)?.bootstrapTimeout ?? 0),
    );
    if (candidates.length === 0) return;
    const inst = candidates[i % candidates.length]!;
    if (!ok && !this.healed) {
      inst.state = 'failed';
      this.#watchEvent(inst);
      return;
    }
    inst.state = 'running';
    const reg = inst.registration;
    if (reg === null) {
      this.#watchEvent(inst);
      return;
    }
    if (reg.mode === 'jit') {
      // A JIT runner comes online only if its registration still exists.
      const r = this.runners.get(inst.name);
      if (r !== undefined) r.online = true;
      else inst.state = 'failed';
    } else {
      const set = this.#set(inst.scaleSet)!;
      this.runners.set(inst.name, {
        id: this.#nextRunnerId++,
        name: inst.name,
        scaleSet: inst.scaleSet,
        labels: [...set.labels],
        online: true,
        busy: false,
        jobId: null,
        ephemeral: reg.ephemeral,
      });
    }
    this.#watchEvent(inst);
  }

  newJob(labels: number, copies: number, newId: boolean, repo = 0): void {
    const l = JOB_LABELS[labels % JOB_LABELS.length]!;
    const { owner, repo: name } = JOB_REPOS[repo % JOB_REPOS.length]!;
    const id = this.#nextJobId++;
    const routedTo = this.#router.route({ labels: l, owner, repo: name });
    this.jobs.set(id, {
      id,
      owner,
      repo: name,
      labels: l,
      status: 'queued',
      runner: null,
      routable: routedTo !== null,
      routedTo,
    });
    this.#pushWebhook('queued', id, copies, newId);
  }

  assign(i: number): void {
    const queued = [...this.jobs.values()].filter((j) => j.status === 'queued');
    if (queued.length === 0) return;
    const job = queued[i % queued.length]!;
    const idle = [...this.runners.values()].filter(
      (r) =>
        r.online &&
        !r.busy &&
        this.instances.get(r.name)?.state === 'running' &&
        this.#covers(r, job.labels) &&
        this.#serves(r, job),
    );
    if (idle.length === 0) return;
    const r = idle[i % idle.length]!;
    r.busy = true;
    r.jobId = job.id;
    job.status = 'in_progress';
    job.runner = r.name;
    this.ranJob.add(r.name);
    this.#pushWebhook('in_progress', job.id);
  }

  finish(i: number): void {
    const running = [...this.jobs.values()].filter((j) => j.status === 'in_progress');
    if (running.length === 0) return;
    const job = running[i % running.length]!;
    job.status = 'completed';
    const r = job.runner === null ? undefined : this.runners.get(job.runner);
    if (job.lost === true) {
      // GitHub noticed the runner is gone: the job fails, the (offline) registration stays until removed.
      job.conclusion = 'failure';
      if (r !== undefined) {
        r.busy = false;
        r.jobId = null;
      }
      this.#pushWebhook('completed', job.id);
      return;
    }
    if (r !== undefined) {
      r.busy = false;
      r.jobId = null;
      if (r.ephemeral) {
        this.runners.delete(r.name);
        const inst = this.instances.get(r.name);
        if (inst !== undefined) {
          inst.state = 'succeeded';
          this.#watchEvent(inst);
        }
      }
    }
    this.#pushWebhook('completed', job.id);
  }

  cancel(i: number): void {
    const queued = [...this.jobs.values()].filter((j) => j.status === 'queued');
    if (queued.length === 0) return;
    const job = queued[i % queued.length]!;
    job.status = 'completed';
    job.cancelled = true;
    this.#pushWebhook('completed', job.id);
  }

  kill(i: number): void {
    const live = [...this.instances.values()].filter((x) => x.state === 'pending' || x.state === 'running');
    if (live.length === 0) return;
    const inst = live[i % live.length]!;
    inst.state = 'failed';
    const r = this.runners.get(inst.name);
    if (r !== undefined) {
      r.online = false;
      if (r.busy && r.jobId !== null) {
        const job = this.jobs.get(r.jobId)!;
        job.status = 'completed';
        this.#pushWebhook('completed', job.id);
      }
      r.busy = false;
      r.jobId = null;
    }
    this.#watchEvent(inst);
  }

  /** The cloud takes the instance of a busy runner: it fails at once, interrupted; GitHub learns of it later. */
  interrupt(i: number): void {
    const busy = [...this.instances.values()].filter(
      (x) => x.state === 'running' && this.runners.get(x.name)?.busy === true,
    );
    if (busy.length === 0) return;
    const inst = busy[i % busy.length]!;
    inst.state = 'failed';
    inst.interrupted = true;
    const r = this.runners.get(inst.name)!;
    r.online = false;
    const job = this.jobs.get(r.jobId!)!;
    job.lost = true;
    const record = this.store.runner(inst.name);
    this.interruptedJobs.set(job.id, {
      set: inst.scaleSet,
      tracked: record !== null && !isTerminal(record.state) && record.state !== 'deleted',
    });
    this.#watchEvent(inst);
  }

  /** The controller dies: pending calls are lost (some reached the world first); memory is gone; the file stays. */
  async crash(reached: readonly boolean[]): Promise<void> {
    const calls = this.pending;
    this.pending = [];
    calls.forEach((c, idx) => {
      if (reached[idx % Math.max(1, reached.length)] === true) {
        try {
          c.apply();
        } catch {
          // the world refused it (a busy runner): nothing happened
        }
      }
    });
    this.executor.abort();
    this.store.close();
    for (const c of calls) c.reject(Object.assign(new Error('process died'), { name: 'AbortError' }));
    await flush();
    this.store = this.#openStore();
    this.observations = new Observations();
    this.executor = this.#newExecutor();
  }

  orphan(set: number): void {
    const s = this.sets[set % this.sets.length]!;
    const name = `${s.name}-orph${String(this.#nextRunnerId).padStart(4, '0')}`;
    this.externalNames.add(name);
    this.runners.set(name, {
      id: this.#nextRunnerId++,
      name,
      scaleSet: s.name,
      labels: [...s.labels],
      online: false,
      busy: false,
      jobId: null,
      ephemeral: true,
    });
  }

  stray(set: number): void {
    const s = this.sets[set % this.sets.length]!;
    const name = `${s.name}-stry${String(++this.#strays).padStart(4, '0')}`;
    this.externalNames.add(name);
    this.instances.set(name, {
      name,
      scaleSet: s.name,
      state: 'running',
      createdAt: this.now,
      registration: null,
    });
  }

  async apply(e: WorldEvent, lossy: boolean): Promise<void> {
    switch (e.t) {
      case 'job':
        this.newJob(e.labels, e.copies, e.newId, e.repo);
        break;
      case 'deliver':
        this.deliver(e.i);
        break;
      case 'drop': {
        // A lost `queued` delivery is invisible to the controller (only redelivery can bring it back), so the
        // model loses the others: in_progress and completed, which status checks must repair.
        const lossable = this.webhooks.filter((w) => w.action !== 'queued');
        if (lossy && lossable.length > 0)
          this.webhooks.splice(this.webhooks.indexOf(lossable[e.i % lossable.length]!), 1);
        break;
      }
      case 'plan':
        this.plan();
        break;
      case 'release':
        this.release(e.i, e.outcome);
        break;
      case 'resync':
        this.resync();
        break;
      case 'tick':
        this.now += e.ms;
        break;
      case 'boot':
        this.boot(e.i, e.ok);
        break;
      case 'assign':
        this.assign(e.i);
        break;
      case 'finish':
        this.finish(e.i);
        break;
      case 'cancel':
        this.cancel(e.i);
        break;
      case 'kill':
        this.kill(e.i);
        break;
      case 'interrupt':
        this.interrupt(e.i);
        break;
      case 'crash':
        await this.crash(e.reached);
        break;
      case 'orphan':
        this.orphan(e.set);
        break;
      case 'stray':
        this.stray(e.set);
        break;
    }
    await flush();
  }

  /**
   * The world heals (no more failures), no new jobs arrive, GitHub runs every queued job it can, and the controller
   * gets resyncs, passes and time: afterwards the fleet must be clean (invariants 4, 5, 7).
   */
  async settle(rounds = 60, stepMs = 60_000): Promise<void> {
    this.healed = true;
    for (const j of this.jobs.values()) if (j.status === 'queued' && !j.routable) j.status = 'completed';
    for (let round = 0; round < rounds; round++) {
      this.deliverAll();
      this.resync();
      for (let k = 0; k < 6; k++) {
        await this.#passAndRelease();
        for (let b = 0; b < 50; b++) this.boot(0, true);
        this.resync();
        for (let a = 0; a < 50; a++) this.assign(a);
        this.deliverAll();
        // Jobs keep running across several passes, so busy runners are planned (and must be left alone).
        await this.#passAndRelease();
        this.resync();
        await this.#passAndRelease();
        for (let f = 0; f < 50; f++) this.finish(0);
        this.deliverAll();
        this.now += 1000;
        this.resync();
      }
      this.now += stepMs;
    }
  }

  async #passAndRelease(): Promise<void> {
    this.plan();
    await flush();
    while (this.pending.length > 0) {
      this.release(0, 'ok');
      await flush();
    }
  }

  // ---- invariant helpers -------------------------------------------------------------------------------------------

  liveRecords(scaleSet: string): string[] {
    return this.store
      .runners(scaleSet)
      .filter((r) => r.state !== 'deleted')
      .map((r) => r.name);
  }

  /** Runners this fleet created that ended (terminal or deleted) without GitHub ever giving them a job. */
  endedWithoutJob(): number {
    let n = 0;
    for (const name of this.created) {
      const r = this.store.runner(name);
      if (r !== null && (r.state === 'deleted' || isTerminal(r.state)) && !this.ranJob.has(name)) n++;
    }
    return n;
  }

  routableJobs(): number {
    return [...this.jobs.values()].filter((j) => j.routable).length;
  }

  /**
   * Jobs GitHub gave to a runner of another scale set than the one they are routed to (an idle runner whose labels
   * cover them too). Each may cost one create more than the jobs alone explain: the set the job was routed to has
   * its runner on the way, and the set whose idle runner took it replaces that runner to keep its minIdle.
   */
  jobsTakenAcrossSets(): number {
    let n = 0;
    for (const j of this.jobs.values()) {
      if (j.runner === null) continue;
      const set = this.store.runner(j.runner)?.scaleSet ?? this.runners.get(j.runner)?.scaleSet;
      if (set !== undefined && set !== j.routedTo) n++;
    }
    return n;
  }

  /** Jobs of repositories no scale set's scope serves (another owner's, or outside a repository scope). */
  outOfScopeJobs(): TruthJob[] {
    return [...this.jobs.values()].filter(
      (j) => !this.sets.some((s) => scopeServes(s.scope, j.owner, j.repo)),
    );
  }
}
