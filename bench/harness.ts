/** Shared shape of benchmark results; bench/run.ts collects them into bench/results/*.json and BENCHMARKS.md. */
export interface BenchResult {
  /** Stable id, e.g. `controller.webhook-to-create.p99`. */
  readonly name: string;
  readonly value: number;
  readonly unit: string;
  /** Human-readable target, e.g. `<= 25 ms`. */
  readonly target?: string;
  /** Whether the measured value meets the target (omit when there is no target). */
  readonly pass?: boolean;
  readonly notes?: string;
}

export interface Benchmark {
  readonly id: string;
  readonly title: string;
  /** The GitHub limits in force while it runs (the simulator's), as BENCHMARKS.md states them. */
  readonly limits: string;
  run(log: (line: string) => void): Promise<BenchResult[]>;
}

/** GitHub's secondary limit on runner-creating POSTs per installation and minute (the simulator's default). */
export const GITHUB_CREATES_PER_MINUTE = 180;

/** The simulator's defaults, which are GitHub's: what every benchmark runs with unless it says otherwise. */
export const GITHUB_DEFAULT_LIMITS =
  "GitHub's defaults, as the simulator enforces them: 180 runner-creating POSTs a minute and 100 concurrent " +
  'requests per installation (secondary), 5,000 requests an hour per installation (primary)';
