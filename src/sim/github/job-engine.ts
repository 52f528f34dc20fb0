/**
 * Workflow jobs with GitHub's semantics. A job is queued, then handed to ANY idle online runner whose labels (plus
 * `self-hosted`) contain the job's labels, case-insensitively, and whose scope serves the job's repository (the
 * repository itself, its organization, or the enterprise). Nothing binds a job to the runner that was created for
 * it. Queued jobs and waiting runners are grouped by (repository, label set) and (scope, label set), so matching
 * costs the number of distinct groups, not the number of jobs or runners.
 */
import { hexSha } from './ids.js';
import type { Job, JobConclusion, JobStatus, Repo, Run, Runner } from './model.js';

export type JobAction = 'queued' | 'in_progress' | 'completed';

export interface NewJobs {
  readonly repo: Repo;
  readonly labels: readonly string[];
  readonly durationMs: number;
  readonly count: number;
  readonly name?: string;
  readonly workflowName?: string;
  readonly outcome?: 'success' | 'failure';
}

/** What a waiting runner is handed: a job, or `gone` when the runner was deleted while it waited. */
export type WaitResult = Job | 'gone' | null;

interface QueueGroup {
  readonly repo: Repo;
  readonly labelsLower: readonly string[];
  readonly labelKey: string;
  readonly jobs: Map<number, Job>;
}

interface Waiter {
  readonly runner: Runner;
  readonly deliver: (result: WaitResult) => void;
}

/** What matching looks at: a runner's scope and labels. */
type Matchable = Pick<Runner, 'scope' | 'scopeKey' | 'labelSet' | 'labelKey'>;

interface WaitGroup {
  /** Scope and labels shared by every member (a copy: a member's labels may change after it leaves). */
  readonly sample: Matchable;
  readonly waiters: Map<number, Waiter>;
}

export const labelKeyOf = (labelsLower: Iterable<string>): string =>
  [...new Set(labelsLower)].sort().join('\n');

/** A job as it is queued, first or again in a re-run: no runner, no times but its queueing. */
function queuedState(now: number) {
  return {
    status: 'queued',
    conclusion: null,
    runnerId: null,
    runnerName: null,
    runnerGroupId: null,
    runnerGroupName: null,
    queuedAt: now,
    startedAt: null,
    completedAt: null,
    lostAt: null,
  } as const;
}

export class JobEngine {
  readonly #now: () => number;
  readonly #emit: (action: JobAction, job: Job) => void;
  readonly #enterprise: string;
  #jobs = new Map<number, Job>();
  #runs = new Map<number, Run>();
  #runsByRepo = new Map<number, Run[]>();
  #queued = new Map<string, QueueGroup>();
  #waitGroups = new Map<string, WaitGroup>();
  #waitingIn = new Map<number, string>();
  #jobWatchers = new Map<number, Set<() => void>>();
  #lost = new Set<Job>();
  #matchMemo = new Map<string, boolean>();
  #counts: Record<JobStatus, number> = { queued: 0, in_progress: 0, completed: 0 };
  #nextJobId = 30_000_000_001;
  #nextRunId = 10_000_000_001;

  constructor(options: {
    now: () => number;
    enterprise: string;
    emit: (action: JobAction, job: Job) => void;
  }) {
    this.#now = options.now;
    this.#emit = options.emit;
    this.#enterprise = options.enterprise.toLowerCase();
  }

  get counts(): Readonly<Record<JobStatus, number>> {
    return this.#counts;
  }

  createJobs(input: NewJobs): Job[] {
    const now = this.#now();
    const repo = input.repo;
    const labelsLower = input.labels.map((l) => l.toLowerCase());
    const labelKey = labelKeyOf(labelsLower);
    const workflowName = input.workflowName ?? 'CI';
    const run: Run = {
      id: this.#nextRunId++,
      repo,
      runNumber: ++repo.runNumber,
      name: workflowName,
      headSha: hexSha(),
      jobIds: [],
      attempt: 1,
      createdAt: now,
      updatedAt: now,
    };
    this.#runs.set(run.id, run);
    let repoRuns = this.#runsByRepo.get(repo.id);
    if (!repoRuns) this.#runsByRepo.set(repo.id, (repoRuns = []));
    repoRuns.push(run);
    const jobs: Job[] = [];
    for (let i = 0; i < input.count; i++) {
      const baseName = input.name ?? 'build';
      const job: Job = {
        id: this.#nextJobId++,
        runId: run.id,
        runAttempt: 1,
        repo,
        name: input.count > 1 ? `${baseName} (${i + 1})` : baseName,
        workflowName,
        labels: [...input.labels],
        labelsLower,
        labelKey,
        durationMs: input.durationMs,
        outcome: input.outcome ?? 'success',
        headSha: run.headSha,
        ...queuedState(now),
      };
      run.jobIds.push(job.id);
      this.#jobs.set(job.id, job);
      jobs.push(job);
    }
    // Emit every queued event before any assignment, as GitHub queues the whole matrix before runners pick it up.
    for (const job of jobs) {
      this.#counts.queued++;
      this.#emit('queued', job);
    }
    for (const job of jobs) {
      if (!this.#assignToWaiter(job)) this.#enqueue(job);
    }
    return jobs;
  }

  get(id: number): Job | undefined {
    return this.#jobs.get(id);
  }

  run(id: number): Run | undefined {
    return this.#runs.get(id);
  }

  runsOf(repo: Repo): readonly Run[] {
    return this.#runsByRepo.get(repo.id) ?? [];
  }

  jobsOf(run: Run): Job[] {
    return run.jobIds.map((id) => this.#jobs.get(id)!).filter(Boolean);
  }

  list(status?: JobStatus): Job[] {
    const out: Job[] = [];
    for (const job of this.#jobs.values()) if (!status || job.status === status) out.push(job);
    return out;
  }

  /**
   * Re-runs a job as GitHub does: only once its whole run has completed (else `run-in-progress`), in a new attempt of
   * the run, as a new job (new id, same name, labels and workload) that replaces it among the run's jobs and is queued
   * like any other (a `queued` event, then the first matching idle runner).
   */
  rerun(job: Job): Job | 'run-in-progress' | 'no-run' {
    const run = this.#runs.get(job.runId);
    if (!run) return 'no-run';
    if (this.jobsOf(run).some((j) => j.status !== 'completed')) return 'run-in-progress';
    const now = this.#now();
    run.attempt++;
    const fresh: Job = {
      ...job,
      id: this.#nextJobId++,
      runAttempt: run.attempt,
      ...queuedState(now),
    };
    // The run's current jobs: the re-run job takes the place of the one of the same name.
    const at = run.jobIds.findIndex((id) => this.#jobs.get(id)?.name === job.name);
    if (at >= 0) run.jobIds[at] = fresh.id;
    else run.jobIds.push(fresh.id);
    this.#jobs.set(fresh.id, fresh);
    this.#touchRun(fresh);
    this.#counts.queued++;
    this.#emit('queued', fresh);
    if (!this.#assignToWaiter(fresh)) this.#enqueue(fresh);
    return fresh;
  }

  /** Cancels a queued or running job (completed, conclusion cancelled). Returns false when already completed. */
  cancel(job: Job): boolean {
    if (job.status === 'completed') return false;
    this.complete(job, 'cancelled');
    return true;
  }

  /** A runner's long poll: `deliver` is called once, with a job, with null (`stopWaiting`), or with `gone`. */
  wait(runner: Runner, deliver: (result: WaitResult) => void): void {
    const job = this.#oldestQueuedFor(runner);
    if (job) {
      this.#start(job, runner);
      deliver(job);
      return;
    }
    const key = `${runner.scopeKey}|${runner.labelKey}`;
    let group = this.#waitGroups.get(key);
    if (!group) this.#waitGroups.set(key, (group = { sample: snapshot(runner), waiters: new Map() }));
    group.waiters.set(runner.id, { runner, deliver });
    this.#waitingIn.set(runner.id, key);
  }

  /** Ends a runner's wait; `result` is passed to its deliver callback (null: timeout or abort). */
  stopWaiting(runner: Runner, result: WaitResult = null): void {
    const key = this.#waitingIn.get(runner.id);
    if (key === undefined) return;
    this.#waitingIn.delete(runner.id);
    const group = this.#waitGroups.get(key);
    const waiter = group?.waiters.get(runner.id);
    group?.waiters.delete(runner.id);
    if (group && group.waiters.size === 0) this.#waitGroups.delete(key);
    waiter?.deliver(result);
  }

  isWaiting(runner: Runner): boolean {
    return this.#waitingIn.has(runner.id);
  }

  /** Calls `onEnd` once when the job completes (used by the broker's renew long poll). Returns an unsubscribe. */
  watch(job: Job, onEnd: () => void): () => void {
    let set = this.#jobWatchers.get(job.id);
    if (!set) this.#jobWatchers.set(job.id, (set = new Set()));
    set.add(onEnd);
    return () => {
      set.delete(onEnd);
      if (set.size === 0 && this.#jobWatchers.get(job.id) === set) this.#jobWatchers.delete(job.id);
    };
  }

  complete(job: Job, conclusion: JobConclusion, runner?: Runner): void {
    if (job.status === 'completed') return;
    if (job.status === 'queued') this.#dequeue(job);
    this.#counts[job.status]--;
    this.#counts.completed++;
    job.status = 'completed';
    job.conclusion = conclusion;
    job.completedAt = this.#now();
    job.lostAt = null;
    this.#lost.delete(job);
    if (runner && runner.jobId === job.id) {
      runner.busy = false;
      runner.jobId = null;
    }
    this.#touchRun(job);
    this.#emit('completed', job);
    const watchers = this.#jobWatchers.get(job.id);
    if (watchers) {
      this.#jobWatchers.delete(job.id);
      for (const onEnd of watchers) onEnd();
    }
  }

  /** The job's runner went offline: as on GitHub, the job fails once `timeoutMs` has passed without it. */
  markLost(job: Job): void {
    if (job.status !== 'in_progress' || job.lostAt !== null) return;
    job.lostAt = this.#now();
    this.#lost.add(job);
  }

  /** The runner came back before the timeout. */
  markFound(job: Job): void {
    job.lostAt = null;
    this.#lost.delete(job);
  }

  /** Fails lost jobs whose timeout passed; `runnerOf` frees their runner. */
  sweepLost(timeoutMs: number, runnerOf: (job: Job) => Runner | undefined): void {
    if (this.#lost.size === 0) return;
    const now = this.#now();
    for (const job of [...this.#lost]) {
      if (job.lostAt !== null && job.lostAt + timeoutMs <= now) this.complete(job, 'failure', runnerOf(job));
    }
  }

  reset(): void {
    const waiters = [...this.#waitGroups.values()].flatMap((g) => [...g.waiters.values()]);
    this.#waitGroups.clear();
    this.#waitingIn.clear();
    for (const waiter of waiters) waiter.deliver('gone');
    this.#jobs.clear();
    this.#runs.clear();
    this.#runsByRepo.clear();
    this.#queued.clear();
    this.#waitGroups.clear();
    this.#waitingIn.clear();
    this.#jobWatchers.clear();
    this.#lost.clear();
    this.#counts = { queued: 0, in_progress: 0, completed: 0 };
  }

  #enqueue(job: Job): void {
    const key = `${job.repo.id}|${job.labelKey}`;
    let group = this.#queued.get(key);
    if (!group) {
      group = { repo: job.repo, labelsLower: job.labelsLower, labelKey: job.labelKey, jobs: new Map() };
      this.#queued.set(key, group);
    }
    group.jobs.set(job.id, job);
  }

  #dequeue(job: Job): void {
    const key = `${job.repo.id}|${job.labelKey}`;
    const group = this.#queued.get(key);
    if (!group) return;
    group.jobs.delete(job.id);
    if (group.jobs.size === 0) this.#queued.delete(key);
  }

  #assignToWaiter(job: Job): boolean {
    for (const [key, group] of this.#waitGroups) {
      if (
        !this.#serves(group.sample, job.repo) ||
        !this.#matches(job.labelsLower, job.labelKey, group.sample)
      )
        continue;
      const first = group.waiters.values().next();
      if (first.done) continue;
      const waiter = first.value;
      group.waiters.delete(waiter.runner.id);
      if (group.waiters.size === 0) this.#waitGroups.delete(key);
      this.#waitingIn.delete(waiter.runner.id);
      this.#start(job, waiter.runner);
      waiter.deliver(job);
      return true;
    }
    return false;
  }

  #oldestQueuedFor(runner: Runner): Job | undefined {
    let best: Job | undefined;
    for (const group of this.#queued.values()) {
      if (!this.#serves(runner, group.repo) || !this.#matches(group.labelsLower, group.labelKey, runner))
        continue;
      const head = group.jobs.values().next().value;
      if (head && (!best || head.id < best.id)) best = head;
    }
    return best;
  }

  #start(job: Job, runner: Runner): void {
    this.#dequeue(job);
    this.#counts.queued--;
    this.#counts.in_progress++;
    job.status = 'in_progress';
    job.startedAt = this.#now();
    job.runnerId = runner.id;
    job.runnerName = runner.name;
    job.runnerGroupId = runner.groupId;
    job.runnerGroupName = runner.groupName;
    runner.busy = true;
    runner.jobId = job.id;
    this.#touchRun(job);
    this.#emit('in_progress', job);
  }

  #touchRun(job: Job): void {
    const run = this.#runs.get(job.runId);
    if (run) run.updatedAt = this.#now();
  }

  /** Does the runner's scope serve this repository? Repository, its organization, or the enterprise. */
  #serves(runner: Matchable, repo: Repo): boolean {
    const scope = runner.scope;
    switch (scope.kind) {
      case 'repo':
        return runner.scopeKey === `repo:${repo.fullName.toLowerCase()}`;
      case 'org':
        return scope.org.toLowerCase() === repo.owner.login.toLowerCase();
      case 'enterprise':
        return scope.enterprise.toLowerCase() === this.#enterprise;
    }
  }

  #matches(jobLabels: readonly string[], jobKey: string, runner: Matchable): boolean {
    const memoKey = `${jobKey}\u0000${runner.labelKey}`;
    let ok = this.#matchMemo.get(memoKey);
    if (ok === undefined) {
      ok = jobLabels.every((l) => l === 'self-hosted' || runner.labelSet.has(l));
      if (this.#matchMemo.size > 10_000) this.#matchMemo.clear();
      this.#matchMemo.set(memoKey, ok);
    }
    return ok;
  }
}

const snapshot = (runner: Runner): Matchable => ({
  scope: runner.scope,
  scopeKey: runner.scopeKey,
  labelSet: new Set(runner.labelSet),
  labelKey: runner.labelKey,
});
