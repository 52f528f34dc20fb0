/**
 * What terraform-aws-github-runner's documented behaviour gives on a burst of jobs, computed from its
 * documentation (never measured here), for the benchmarks that set it beside their own figure on the same workload:
 * webhook events wait in SQS for `delay_webhook_event` (default 30 s) before the scale-up Lambda acts; it makes
 * about 2 GitHub calls per job (the job's status, then its JIT config or registration token); and GitHub's ceiling
 * of about 180 JIT configs a minute applies to it as well.
 */
import type { BenchResult } from './harness.js';

/** Its documented default delay of webhook events (delay_webhook_event). */
export const TF_DELAY_MS = 30_000;
/** Its documented GitHub calls per job: the job's status, then its JIT config. */
export const TF_CALLS_PER_JOB = 2;

/** The physical floor of a burst: `jobs` runner-creating POSTs at `perMinute` a minute, ms. */
export function burstFloorMs(jobs: number, perMinute: number): number {
  return (jobs / perMinute) * 60_000;
}

const sec = (ms: number): number => Math.round(ms / 100) / 10;
const r2 = (x: number): number => Math.round(x * 100) / 100;

/**
 * The computed figure, as a result named `name` (which says it is computed from its documentation): the time until
 * the last job's create call for `jobs` queued at once under `perMinute` runner-creating POSTs a minute, at best
 * (no job lost to refusals at the ceiling), with its calls per job beside `measuredCallsPerJob`.
 */
export function terraformAwsBurst(input: {
  readonly name: string;
  readonly jobs: number;
  readonly perMinute: number;
  readonly measuredCallsPerJob: number;
}): BenchResult {
  const floor = burstFloorMs(input.jobs, input.perMinute);
  const lastMs = TF_DELAY_MS + floor;
  return {
    name: input.name,
    value: sec(lastMs),
    unit: 's',
    notes:
      `computed, not measured: its documented ${TF_DELAY_MS / 1000} s default delay of webhook events ` +
      `(delay_webhook_event, SQS) plus the same ${input.perMinute} JIT configs a minute ceiling it documents ` +
      `for ${input.jobs} jobs = ${sec(lastMs)} s, ratio to the floor ${r2(lastMs / floor)}; at best, ` +
      `with no job lost to refusals at the ceiling. Its documented calls per job (about ` +
      `${TF_CALLS_PER_JOB}: the job's status, then its JIT config) give ${TF_CALLS_PER_JOB * input.jobs} calls ` +
      `for the burst, against ${input.measuredCallsPerJob} per job measured here`,
  };
}
