/**
 * Workloads for the GitHub simulator: a plan (pure, seeded, so a run can be repeated) of when to queue which jobs,
 * and a runner that plays the plan against anything with the simulator's `createJobs` / `cancelJob` (the in-process
 * Simulator, or `simJobsClient` over the `/_sim` HTTP API). Used by `runner-fleet demo` and by benchmarks.
 *
 * A plan mixes: a steady trickle spread over the duration across the targets, one burst (a matrix of up to 50 jobs
 * queued at once), jobs of different durations, one long job that gets cancelled, and one job whose labels no
 * scale set serves.
 */
import { seededRandom } from '../core/names.js';
import { sleepUnlessAborted } from '../lib/async.js';

export interface WorkloadTarget {
  /** Organization and repository the jobs are queued in. */
  readonly owner: string;
  readonly repo: string;
  /** runs-on labels of the jobs (include `self-hosted` as a workflow would). */
  readonly labels: readonly string[];
  /** Share of the trickle, relative to the other targets (e.g. the scale set's max). Default 1. */
  readonly weight?: number;
  /** Scale set expected to serve these jobs (for reporting only). */
  readonly scaleSet?: string;
}

export interface WorkloadOptions {
  /** Jobs in total, the burst, the cancelled and the unroutable job included. At least 1. */
  readonly jobs: number;
  /** Span over which the trickle is queued, ms. */
  readonly durationMs: number;
  readonly targets: readonly WorkloadTarget[];
  /** Target index that receives the burst. Default: the one with the largest weight. */
  readonly burstTarget?: number;
  /** Jobs in the burst; default 50 when jobs >= 100, else 40% of the jobs. 0: no burst. */
  readonly burstSize?: number;
  /** When the burst is queued, as a fraction of durationMs. Default 0.3. */
  readonly burstAt?: number;
  /** A job no scale set serves; null: none. */
  readonly unroutable?: {
    readonly owner: string;
    readonly repo: string;
    readonly labels: readonly string[];
  } | null;
  /** Queue one long job and cancel it after `cancelAfterMs`. Default true. */
  readonly cancel?: boolean;
  readonly cancelAfterMs?: number;
  /** Durations the trickle cycles through (ms), picked at random. */
  readonly jobDurationsMs?: readonly number[];
  /** Duration of the burst's jobs (ms). */
  readonly burstJobDurationMs?: number;
  /** Seed of the plan's randomness. Default 1. */
  readonly seed?: number;
}

export type StepTag = 'trickle' | 'burst' | 'cancelled' | 'unroutable';

export type WorkloadStep =
  | {
      readonly kind: 'jobs';
      readonly atMs: number;
      readonly tag: StepTag;
      readonly owner: string;
      readonly repo: string;
      readonly labels: readonly string[];
      readonly count: number;
      readonly durationMs: number;
      readonly name: string;
    }
  | {
      readonly kind: 'cancel';
      readonly atMs: number;
      /** The jobs queued with this tag so far are cancelled. */
      readonly tag: StepTag;
    };

export interface WorkloadPlan {
  readonly steps: readonly WorkloadStep[];
  readonly totals: {
    readonly jobs: number;
    readonly routable: number;
    readonly unroutable: number;
    readonly cancelled: number;
    readonly burst: number;
  };
  /** When the last job is queued, ms from the start. */
  readonly lastQueueAtMs: number;
}

export const DEFAULT_JOB_DURATIONS_MS: readonly number[] = [300, 800, 1_500, 3_000, 5_000];

export class WorkloadError extends Error {
  override readonly name = 'WorkloadError';
  readonly code = 'invalid_workload';
}

export function planWorkload(options: WorkloadOptions): WorkloadPlan {
  const { targets } = options;
  if (!Number.isInteger(options.jobs) || options.jobs < 1)
    throw new WorkloadError('jobs must be an integer >= 1');
  if (!(options.durationMs >= 0)) throw new WorkloadError('durationMs must be >= 0');
  if (targets.length === 0) throw new WorkloadError('a workload needs at least one target');
  const random = seededRandom(options.seed ?? 1);
  const durations = options.jobDurationsMs ?? DEFAULT_JOB_DURATIONS_MS;
  const pick = () => durations[Math.floor(random() * durations.length)] ?? 1_000;

  let left = options.jobs;
  const unroutable = options.unroutable !== null && options.unroutable !== undefined && left > 1 ? 1 : 0;
  left -= unroutable;
  const cancelled = (options.cancel ?? true) && left > 1 ? 1 : 0;
  left -= cancelled;
  const defaultBurst = options.jobs >= 100 ? 50 : Math.floor(options.jobs * 0.4);
  const burst = Math.max(0, Math.min(left, options.burstSize ?? defaultBurst));
  left -= burst;
  const trickle = left;

  const weights = targets.map((t) => Math.max(0, t.weight ?? 1));
  const totalWeight = weights.reduce((a, b) => a + b, 0) || targets.length;
  const burstIndex =
    options.burstTarget ?? weights.reduce((best, w, i) => (w > (weights[best] ?? 0) ? i : best), 0);
  const burstTarget = targets[burstIndex];
  if (!burstTarget) throw new WorkloadError(`burstTarget ${burstIndex} is not a target`);

  const steps: WorkloadStep[] = [];
  const jobStep = (
    atMs: number,
    tag: StepTag,
    target: { owner: string; repo: string; labels: readonly string[] },
    count: number,
    durationMs: number,
    name: string,
  ): WorkloadStep => ({
    kind: 'jobs',
    atMs: Math.round(atMs),
    tag,
    owner: target.owner,
    repo: target.repo,
    labels: [...target.labels],
    count,
    durationMs,
    name,
  });

  // Trickle: evenly spaced, each job to a target drawn by weight, so every scale set sees steady work.
  for (let i = 0; i < trickle; i++) {
    let r = random() * totalWeight;
    let index = 0;
    while (index < targets.length - 1 && r >= (weights[index] ?? 1)) {
      r -= weights[index] ?? 1;
      index++;
    }
    const at = trickle === 1 ? 0 : (options.durationMs * i) / trickle;
    steps.push(jobStep(at, 'trickle', targets[index]!, 1, pick(), `build (${i + 1})`));
  }
  const burstAt = options.durationMs * (options.burstAt ?? 0.3);
  if (burst > 0) {
    steps.push(
      jobStep(
        burstAt,
        'burst',
        burstTarget,
        burst,
        options.burstJobDurationMs ?? 1_500,
        `test matrix (${burst})`,
      ),
    );
  }
  if (cancelled > 0) {
    const target = targets[targets.length > 1 ? 1 : 0]!;
    steps.push(jobStep(options.durationMs * 0.1, 'cancelled', target, 1, 60_000, 'deploy (cancelled)'));
  }
  if (unroutable > 0 && options.unroutable) {
    steps.push(jobStep(options.durationMs * 0.2, 'unroutable', options.unroutable, 1, 1_000, 'gpu-train'));
  }
  if (cancelled > 0) {
    const at = Math.round(options.durationMs * 0.1 + (options.cancelAfterMs ?? 4_000));
    steps.push({ kind: 'cancel', atMs: at, tag: 'cancelled' });
  }
  // By time; at equal times jobs are queued before a cancel.
  steps.sort((a, b) => a.atMs - b.atMs || (a.kind === b.kind ? 0 : a.kind === 'cancel' ? 1 : -1));
  const lastQueueAtMs = steps.reduce((max, s) => (s.kind === 'jobs' ? Math.max(max, s.atMs) : max), 0);
  return {
    steps,
    totals: { jobs: options.jobs, routable: options.jobs - unroutable, unroutable, cancelled, burst },
    lastQueueAtMs,
  };
}

/** What a workload needs from the simulator (the in-process Simulator has both methods). */
export interface WorkloadClient {
  createJobs(input: {
    owner: string;
    repo: string;
    labels: string[];
    durationMs?: number;
    count?: number;
    name?: string;
    workflowName?: string;
  }): { id: number; runId: number }[] | Promise<{ id: number; runId: number }[]>;
  cancelJob(id: number): boolean | Promise<boolean>;
}

export interface QueuedJob {
  readonly id: number;
  readonly tag: StepTag;
  /** ms epoch when it was queued */
  readonly queuedAt: number;
}

export interface WorkloadRun {
  readonly jobs: readonly QueuedJob[];
  /** Job ids by tag. */
  readonly byTag: Readonly<Record<StepTag, readonly number[]>>;
  readonly cancelled: readonly number[];
  /** Steps not played because the run was aborted. */
  readonly skipped: number;
}

export interface RunWorkloadOptions {
  readonly signal?: AbortSignal;
  readonly now?: () => number;
  readonly sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** Called after each step, e.g. to update progress. */
  readonly onStep?: (step: WorkloadStep, ids: readonly number[]) => void;
}

const defaultSleep = sleepUnlessAborted;

/** Plays a plan in real time. Stops early (counting the steps left) when the signal aborts. */
export async function runWorkload(
  plan: WorkloadPlan,
  client: WorkloadClient,
  options: RunWorkloadOptions = {},
): Promise<WorkloadRun> {
  const now = options.now ?? Date.now;
  const sleep = options.sleep ?? defaultSleep;
  const start = now();
  const jobs: QueuedJob[] = [];
  const byTag: Record<StepTag, number[]> = { trickle: [], burst: [], cancelled: [], unroutable: [] };
  const cancelled: number[] = [];
  let played = 0;
  for (const step of plan.steps) {
    if (options.signal?.aborted) break;
    const wait = start + step.atMs - now();
    if (wait > 0) await sleep(wait, options.signal);
    if (options.signal?.aborted) break;
    let ids: number[] = [];
    if (step.kind === 'jobs') {
      const created = await client.createJobs({
        owner: step.owner,
        repo: step.repo,
        labels: [...step.labels],
        durationMs: step.durationMs,
        count: step.count,
        name: step.name,
        workflowName: step.tag === 'burst' ? 'matrix' : 'ci',
      });
      ids = created.map((j) => j.id);
      const at = now();
      for (const id of ids) jobs.push({ id, tag: step.tag, queuedAt: at });
      byTag[step.tag].push(...ids);
    } else {
      for (const id of byTag[step.tag]) {
        if (await client.cancelJob(id)) cancelled.push(id);
        ids.push(id);
      }
    }
    played++;
    options.onStep?.(step, ids);
  }
  return { jobs, byTag, cancelled, skipped: plan.steps.length - played };
}

/** A WorkloadClient over the simulator's HTTP control API (`POST /_sim/jobs`, `POST /_sim/jobs/{id}/cancel`). */
export function simJobsClient(baseUrl: string, fetchImpl: typeof fetch = globalThis.fetch): WorkloadClient {
  const base = baseUrl.replace(/\/+$/, '');
  return {
    async createJobs(input) {
      const response = await fetchImpl(`${base}/_sim/jobs`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(input),
      });
      if (response.status !== 201) {
        throw new WorkloadError(`POST /_sim/jobs answered ${response.status}: ${await response.text()}`);
      }
      return ((await response.json()) as { jobs: { id: number; runId: number }[] }).jobs;
    },
    async cancelJob(id) {
      const response = await fetchImpl(`${base}/_sim/jobs/${id}/cancel`, { method: 'POST' });
      await response.body?.cancel();
      return response.ok;
    },
  };
}
