/**
 * The demo's result: what happened to every job (as the simulator, playing GitHub, recorded it), how long jobs
 * waited, what it cost in GitHub API calls, and whether anything leaked. Computed from measurements only; the
 * demo's exit code is `ok`.
 */
import { scaleSetOf } from '../core/names.js';
import { humanDuration, textTable } from '../lib/format.js';

export interface Percentiles {
  readonly p50: number;
  readonly p95: number;
  readonly max: number;
}

export interface ScaleSetSummary {
  readonly name: string;
  readonly provider: string;
  /** Jobs that ran on this scale set's runners. */
  readonly jobs: number;
  readonly peakRunners: number;
  readonly max: number;
  readonly queueTimeMs: Percentiles;
}

/** `demo --provider ec2`: what happened in the AWS endpoint. */
export interface Ec2Summary {
  readonly endpoint: string;
  readonly region: string;
  /** Instances of the fleet launched during the demo. */
  readonly instancesLaunched: number;
  /** Instances of the fleet still pending or running at the end (must be 0). */
  readonly instancesLeft: number;
  /** Runner parameters of the fleet left in SSM at the end (must be 0). */
  readonly parametersLeft: number;
  /** The controller's EC2 and SSM calls by operation. */
  readonly awsCalls: Readonly<Record<string, number>>;
}

export interface DemoSummary {
  readonly jobs: number;
  /** Jobs some scale set serves. */
  readonly routable: number;
  /** Routable jobs that reached `completed` (the cancelled one included, with conclusion cancelled). */
  readonly completed: number;
  /** Jobs that completed with conclusion failure (a runner lost mid-job). */
  readonly failed: number;
  readonly cancelled: number;
  /** Jobs the controller reports as unroutable (no scale set serves their labels). */
  readonly unroutable: number;
  /** Queued to started, over routable jobs that started. */
  readonly queueTimeMs: Percentiles;
  /** REST calls the simulator (GitHub) served during the run. */
  readonly githubApiCalls: number;
  /** githubApiCalls / jobs */
  readonly apiCallsPerJob: number;
  /**
   * Calls to the Actions service's runner scale set API (sessions, long polls of the message queue, acknowledgements)
   * by scale sets with `discovery: scale-set`: not REST calls, and not counted against GitHub's REST rate limits.
   */
  readonly actionsServiceCalls: number;
  /** Calls GitHub refused for a rate limit (the controller waited and retried). */
  readonly githubRateLimitedCalls: number;
  /** Most runners registered at once. */
  readonly maxConcurrentRunners: number;
  /** Runners registered after the drain beyond each scale set's minIdle. */
  readonly leakedRunners: number;
  /** Instances (simulated cloud + live processes) after the drain beyond each scale set's minIdle. */
  readonly leakedInstances: number;
  readonly durationMs: number;
  readonly ok: boolean;
  /** Why not ok, one line each; empty when ok. */
  readonly problems: readonly string[];
  readonly scaleSets: readonly ScaleSetSummary[];
  /** With `--provider ec2`. */
  readonly ec2?: Ec2Summary;
}

/** Nearest-rank percentile of already sorted values; 0 for none. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

export function percentiles(values: readonly number[]): Percentiles {
  const sorted = [...values].sort((a, b) => a - b);
  return {
    p50: Math.round(percentile(sorted, 50)),
    p95: Math.round(percentile(sorted, 95)),
    max: Math.round(sorted.at(-1) ?? 0),
  };
}

/** A job as the simulator recorded it. */
export interface JobRecordForSummary {
  readonly id: number;
  readonly status: string;
  readonly conclusion: string | null;
  readonly runnerName: string | null;
  readonly queuedAt: number;
  readonly startedAt: number | null;
}

export interface SummaryInput {
  /** Every job the workload queued, by what it was meant to be. */
  readonly queued: {
    readonly routable: readonly number[];
    readonly unroutable: readonly number[];
    readonly cancelled: readonly number[];
  };
  /** The simulator's records of those jobs. */
  readonly records: readonly JobRecordForSummary[];
  /** Job ids the controller lists as unroutable. */
  readonly reportedUnroutable: readonly number[];
  readonly githubApiCalls: number;
  readonly actionsServiceCalls?: number;
  readonly githubRateLimitedCalls?: number;
  readonly maxConcurrentRunners: number;
  readonly peakRunnersBySet: ReadonlyMap<string, number>;
  readonly scaleSets: readonly { readonly name: string; readonly provider: string; readonly max: number }[];
  readonly leakedRunners: number;
  readonly leakedInstances: number;
  /** What leaked, for the problems list. */
  readonly leakDetails?: readonly string[];
  /** With `--provider ec2`: what is left of the fleet in the AWS endpoint, and the controller's AWS calls. */
  readonly ec2?: {
    readonly census: {
      readonly endpoint: string;
      readonly region: string;
      readonly launched: number;
      readonly liveInstances: readonly string[];
      readonly parameters: readonly string[];
    };
    readonly awsCalls: Readonly<Record<string, number>>;
  };
  readonly durationMs: number;
}

export function summarize(input: SummaryInput): DemoSummary {
  const byId = new Map(input.records.map((r) => [r.id, r]));
  const routable = input.queued.routable.map((id) => byId.get(id));
  const completed = routable.filter((r) => r?.status === 'completed');
  const failed = completed.filter((r) => r?.conclusion === 'failure').length;
  const cancelled = input.queued.cancelled.filter((id) => byId.get(id)?.conclusion === 'cancelled').length;
  const started = routable.filter((r): r is JobRecordForSummary => r !== undefined && r.startedAt !== null);
  const names = input.scaleSets.map((s) => s.name);
  const waitsBySet = new Map<string, number[]>(names.map((n) => [n, []]));
  for (const r of started) {
    const set = r.runnerName ? scaleSetOf(r.runnerName, names) : null;
    if (set) waitsBySet.get(set)!.push(r.startedAt! - r.queuedAt);
  }
  const expectedUnroutable = new Set(input.queued.unroutable);
  const unroutable = input.reportedUnroutable.filter((id) => expectedUnroutable.has(id)).length;
  const jobs = input.queued.routable.length + input.queued.unroutable.length;

  const problems: string[] = [];
  const notCompleted = routable.length - completed.length;
  if (notCompleted > 0) problems.push(`${notCompleted} routable job(s) did not complete`);
  if (failed > 0) problems.push(`${failed} job(s) failed`);
  if (unroutable < input.queued.unroutable.length) {
    problems.push(
      `${input.queued.unroutable.length - unroutable} unroutable job(s) are not reported as unroutable by the controller`,
    );
  }
  if (input.leakedRunners > 0) problems.push(`${input.leakedRunners} runner registration(s) leaked`);
  if (input.leakedInstances > 0) problems.push(`${input.leakedInstances} instance(s) leaked`);
  for (const detail of input.leakDetails ?? []) problems.push(`  ${detail}`);
  const census = input.ec2?.census;
  if (census !== undefined && census.liveInstances.length > 0) {
    problems.push(
      `${census.liveInstances.length} EC2 instance(s) of the fleet still pending or running at ${census.endpoint}: ` +
        census.liveInstances.join(', '),
    );
  }
  if (census !== undefined && census.parameters.length > 0) {
    problems.push(
      `${census.parameters.length} runner parameter(s) left in SSM at ${census.endpoint}: ${census.parameters.join(', ')}`,
    );
  }

  return {
    jobs,
    routable: input.queued.routable.length,
    completed: completed.length,
    failed,
    cancelled,
    unroutable,
    queueTimeMs: percentiles(started.map((r) => r.startedAt! - r.queuedAt)),
    githubApiCalls: input.githubApiCalls,
    apiCallsPerJob: jobs > 0 ? Math.round((input.githubApiCalls / jobs) * 100) / 100 : 0,
    actionsServiceCalls: input.actionsServiceCalls ?? 0,
    githubRateLimitedCalls: input.githubRateLimitedCalls ?? 0,
    maxConcurrentRunners: input.maxConcurrentRunners,
    leakedRunners: input.leakedRunners,
    leakedInstances: input.leakedInstances,
    durationMs: Math.round(input.durationMs),
    ok: problems.length === 0,
    problems,
    scaleSets: input.scaleSets.map((s) => ({
      name: s.name,
      provider: s.provider,
      jobs: waitsBySet.get(s.name)!.length,
      peakRunners: input.peakRunnersBySet.get(s.name) ?? 0,
      max: s.max,
      queueTimeMs: percentiles(waitsBySet.get(s.name)!),
    })),
    ...(census !== undefined
      ? {
          ec2: {
            endpoint: census.endpoint,
            region: census.region,
            instancesLaunched: census.launched,
            instancesLeft: census.liveInstances.length,
            parametersLeft: census.parameters.length,
            awsCalls: { ...input.ec2!.awsCalls },
          },
        }
      : {}),
  };
}

/** The summary as printed at the end of a demo. */
export function formatSummary(s: DemoSummary): string {
  const d = humanDuration;
  const lines = [
    `runner-fleet demo summary`,
    `  jobs               ${s.jobs} queued: ${s.routable} routable, ${s.jobs - s.routable} for labels no scale set serves`,
    `  completed          ${s.completed} of ${s.routable} routable (${s.cancelled} cancelled on purpose)`,
    `  failed             ${s.failed}`,
    `  unroutable         ${s.unroutable} (reported by the controller, not dropped)`,
    `  queue time         p50 ${d(s.queueTimeMs.p50)}, p95 ${d(s.queueTimeMs.p95)}, max ${d(s.queueTimeMs.max)}`,
    `  GitHub API calls   ${s.githubApiCalls} (${s.apiCallsPerJob.toFixed(2)} per job)`,
    ...(s.actionsServiceCalls > 0
      ? [
          `  message queue      ${s.actionsServiceCalls} Actions service calls (sessions, long polls, acknowledgements)`,
        ]
      : []),
    ...(s.githubRateLimitedCalls > 0
      ? [
          `                     ${s.githubRateLimitedCalls} refused by GitHub's rate limits (secondary limit: about 180`,
          `                     runner registrations a minute); jobs waited for the retry, as on github.com`,
        ]
      : []),
    `  max runners        ${s.maxConcurrentRunners} at once`,
    `  leaked             ${s.leakedRunners} runners, ${s.leakedInstances} instances`,
    ...(s.ec2 !== undefined
      ? [
          `  EC2                ${s.ec2.instancesLaunched} instances launched at ${s.ec2.endpoint} (${s.ec2.region}); at the end ` +
            `${s.ec2.instancesLeft} pending or running, ${s.ec2.parametersLeft} runner parameters`,
          `  AWS calls          ${
            Object.entries(s.ec2.awsCalls)
              .sort(([a], [b]) => a.localeCompare(b))
              .map(([op, n]) => `${op} ${n}`)
              .join(', ') || 'none'
          }`,
        ]
      : []),
    `  duration           ${d(s.durationMs)}`,
    '',
    textTable(
      ['  SCALE SET', 'PROVIDER', 'JOBS RUN', 'PEAK RUNNERS', 'WAIT P50', 'WAIT MAX'],
      s.scaleSets.map((x) => [
        `  ${x.name}`,
        x.provider,
        String(x.jobs),
        `${x.peakRunners}/${x.max}`,
        d(x.queueTimeMs.p50),
        d(x.queueTimeMs.max),
      ]),
      new Set([2, 3, 4, 5]),
    ),
    '',
    s.ok
      ? 'OK: every routable job completed and nothing leaked.'
      : `NOT OK:\n${s.problems.map((p) => `  ${p}`).join('\n')}`,
  ];
  return `${lines.join('\n')}\n`;
}
