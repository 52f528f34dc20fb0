/**
 * The end-to-end workload: 200 jobs with mixed labels (case, order, `self-hosted` or not, subsets of a scale set's
 * labels) over three scale sets, a burst of 100 at once then 100 more in small batches. Seeded, so a failure can be
 * replayed; each job carries the scale set its labels must route to, so routing is checked too.
 */
import { seededRandom } from '../../src/core/names.js';
import type { Simulator } from '../../src/sim/github/index.js';

export interface JobSpec {
  readonly owner: string;
  readonly repo: string;
  readonly labels: readonly string[];
  readonly durationMs: number;
  /** The scale set these labels and this repository must be routed to. */
  readonly scaleSet: string;
}

export interface WorkloadShape {
  /** Jobs per scale set name, with the label variants and repositories to draw from. */
  readonly sets: readonly {
    readonly scaleSet: string;
    readonly jobs: number;
    readonly repos: readonly string[];
    readonly labelVariants: readonly (readonly string[])[];
    readonly durationMs: readonly [number, number];
  }[];
  /** How many of the jobs are created at once, before the rest trickle in. */
  readonly burst: number;
  /** Jobs per trickle batch, at most. */
  readonly batch: number;
  readonly seed: number;
}

export interface Workload {
  readonly burst: readonly JobSpec[];
  /** Created one batch at a time after the burst. */
  readonly batches: readonly (readonly JobSpec[])[];
  readonly total: number;
}

export function buildWorkload(shape: WorkloadShape): Workload {
  const random = seededRandom(shape.seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const all: JobSpec[] = [];
  for (const s of shape.sets) {
    for (let i = 0; i < s.jobs; i++) {
      const [owner, repo] = pick(s.repos).split('/') as [string, string];
      const [lo, hi] = s.durationMs;
      all.push({
        owner,
        repo,
        labels: pick(s.labelVariants),
        durationMs: Math.round(lo + random() * (hi - lo)),
        scaleSet: s.scaleSet,
      });
    }
  }
  // Fisher-Yates, so the burst and every batch mix the scale sets.
  for (let i = all.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [all[i], all[j]] = [all[j]!, all[i]!];
  }
  const burst = all.slice(0, shape.burst);
  const rest = all.slice(shape.burst);
  const batches: JobSpec[][] = [];
  for (let i = 0; i < rest.length;) {
    const n = 1 + Math.floor(random() * shape.batch);
    batches.push(rest.slice(i, i + n));
    i += n;
  }
  return { burst, batches, total: all.length };
}

/** The three-scale-set workload of fleet.test.ts and chaos.test.ts: 200 jobs, 100 of them at once. */
export function standardWorkload(seed: number): Workload {
  return buildWorkload({
    seed,
    burst: 100,
    batch: 6,
    sets: [
      {
        scaleSet: 'proc',
        jobs: 20,
        repos: ['octo-org/app', 'octo-org/web'],
        labelVariants: [
          ['self-hosted', 'proc'],
          ['Linux', 'PROC'],
          ['self-hosted', 'linux', 'x64', 'proc'],
        ],
        durationMs: [200, 700],
      },
      {
        scaleSet: 'cloud',
        jobs: 150,
        repos: ['octo-org/app', 'octo-org/web', 'octo-org/lib'],
        labelVariants: [
          ['self-hosted', 'cloud'],
          ['linux', 'cloud'],
          ['self-hosted', 'Linux', 'X64', 'Cloud'],
          ['x64', 'CLOUD'],
        ],
        durationMs: [200, 1500],
      },
      {
        scaleSet: 'persist',
        jobs: 30,
        repos: ['octo-org/app'],
        labelVariants: [['self-hosted', 'persistent'], ['Linux', 'persistent'], ['persistent']],
        durationMs: [150, 600],
      },
    ],
  });
}

export interface CreatedJob extends JobSpec {
  readonly id: number;
}

/** Creates jobs in the simulator (queued webhooks follow); returns them with their ids. */
export function createJobs(sim: Simulator, specs: readonly JobSpec[]): CreatedJob[] {
  return specs.map((spec) => {
    const [job] = sim.createJobs({
      owner: spec.owner,
      repo: spec.repo,
      labels: [...spec.labels],
      durationMs: spec.durationMs,
    });
    return { ...spec, id: job!.id };
  });
}

/**
 * Plays the workload: the burst at once, then one batch per `intervalMs` (a wall-clock pace, not a correctness
 * wait: nothing asserted depends on it). `beforeBatch` may hold a batch back (e.g. while the test restarts the
 * controller, if it wants to). Resolves with every created job.
 */
export async function playWorkload(
  sim: Simulator,
  workload: Workload,
  options: { intervalMs: number; signal?: AbortSignal; onBatch?: (created: number) => Promise<void> | void },
): Promise<CreatedJob[]> {
  const created = createJobs(sim, workload.burst);
  for (const batch of workload.batches) {
    if (options.signal?.aborted) break;
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs));
    created.push(...createJobs(sim, batch));
    await options.onBatch?.(created.length);
  }
  return created;
}
