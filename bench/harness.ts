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
  run(log: (line: string) => void): Promise<BenchResult[]>;
}
