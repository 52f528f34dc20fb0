/**
 * Every Prometheus metric runner-fleet exports, declared once as data. `createMetrics` builds them in a private
 * Registry (never prom-client's global one, so two controllers or two tests in one process never collide), and
 * docs/metrics.md is generated from the same table (scripts/gen-metrics-docs.ts).
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

interface BaseDefinition {
  readonly name: string;
  readonly help: string;
  readonly labels: readonly string[];
}
export interface CounterDefinition extends BaseDefinition {
  readonly type: 'counter';
}
export interface GaugeDefinition extends BaseDefinition {
  readonly type: 'gauge';
}
export interface HistogramDefinition extends BaseDefinition {
  readonly type: 'histogram';
  /** Upper bounds in seconds. */
  readonly buckets: readonly number[];
}
export type MetricDefinition = CounterDefinition | GaugeDefinition | HistogramDefinition;

/** Keys are the property names on the object `createMetrics` returns. */
export const METRIC_DEFINITIONS = {
  jobs: {
    name: 'runner_fleet_jobs_total',
    type: 'counter',
    help: 'Workflow job events applied, by scale set (or "unroutable") and event (queued, in_progress, completed).',
    labels: ['scale_set', 'event'],
  },
  jobQueueSeconds: {
    name: 'runner_fleet_job_queue_seconds',
    type: 'histogram',
    help: 'Time a job waited from queued to in_progress.',
    labels: ['scale_set'],
    buckets: [0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800],
  },
  runners: {
    name: 'runner_fleet_runners',
    type: 'gauge',
    help: 'Runners of this fleet by scale set and lifecycle state.',
    labels: ['scale_set', 'state'],
  },
  githubApiCalls: {
    name: 'runner_fleet_github_api_calls_total',
    type: 'counter',
    help: 'HTTP requests sent to the GitHub API (every attempt, retries included), by route template and status ("error" when no response came back).',
    labels: ['route', 'status'],
  },
  githubRateLimitRemaining: {
    name: 'runner_fleet_github_rate_limit_remaining',
    type: 'gauge',
    help: 'Last x-ratelimit-remaining header GitHub returned.',
    labels: [],
  },
  pacingWaitSeconds: {
    name: 'runner_fleet_pacing_wait_seconds',
    type: 'histogram',
    help: "Time a runner create waited for its GitHub App installation's rate budget (github.createsPerMinute) before its JIT config request was sent, by scale set (0 when the budget had room).",
    labels: ['scale_set'],
    buckets: [0.1, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600],
  },
  providerOperations: {
    name: 'runner_fleet_provider_operations_total',
    type: 'counter',
    help: 'Provider calls by provider kind, operation (create, delete, list) and result (ok, error).',
    labels: ['provider', 'op', 'result'],
  },
  providerNotices: {
    name: 'runner_fleet_provider_notices_total',
    type: 'counter',
    help: 'Notices from providers by provider kind, scale set and event (e.g. spot-fallback, spot-interruption).',
    labels: ['provider', 'scale_set', 'event'],
  },
  reconcileSeconds: {
    name: 'runner_fleet_reconcile_seconds',
    type: 'histogram',
    help: 'Duration of one reconcile pass of one scale set.',
    labels: ['scale_set'],
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  },
  unroutableJobs: {
    name: 'runner_fleet_unroutable_jobs_total',
    type: 'counter',
    help: 'Queued jobs whose labels no scale set serves.',
    labels: [],
  },
  webhooks: {
    name: 'runner_fleet_webhooks_total',
    type: 'counter',
    help: 'Webhook deliveries received, by event and result (accepted, duplicate, ignored, ping, unauthorized, invalid, too_large, unavailable).',
    labels: ['event', 'result'],
  },
} as const satisfies Record<string, MetricDefinition>;

export type MetricKey = keyof typeof METRIC_DEFINITIONS;

type LabelsOf<D> = D extends { readonly labels: readonly (infer L extends string)[] } ? L : never;
type InstrumentOf<D> = D extends { readonly type: 'counter' }
  ? Counter<LabelsOf<D>>
  : D extends { readonly type: 'gauge' }
    ? Gauge<LabelsOf<D>>
    : Histogram<LabelsOf<D>>;

export type FleetMetrics = {
  readonly [K in MetricKey]: InstrumentOf<(typeof METRIC_DEFINITIONS)[K]>;
} & {
  readonly registry: Registry;
};

/** How often the event loop lag metrics sample the loop's delay, ms. */
export const EVENT_LOOP_RESOLUTION_MS = 100;

export interface CreateMetricsOptions {
  /** Registry to register into; a new one by default. */
  readonly registry?: Registry;
  /** Also collect Node.js process metrics (CPU, memory, event loop) into the same registry. */
  readonly processMetrics?: boolean;
}

/** Builds every declared metric into a per-instance registry. */
export function createMetrics(options: CreateMetricsOptions = {}): FleetMetrics {
  const registry = options.registry ?? new Registry();
  const built: Record<string, unknown> = { registry };
  for (const [key, def] of Object.entries(METRIC_DEFINITIONS) as [MetricKey, MetricDefinition][]) {
    const common = { name: def.name, help: def.help, labelNames: [...def.labels], registers: [registry] };
    switch (def.type) {
      case 'counter':
        built[key] = new Counter(common);
        break;
      case 'gauge':
        built[key] = new Gauge(common);
        break;
      case 'histogram':
        built[key] = new Histogram({ ...common, buckets: [...def.buckets] });
        break;
    }
  }
  // prom-client collects these on scrape, except the event loop lag: a timer of its own samples the loop's delay
  // every eventLoopMonitoringPrecision ms (10 by default: a hundred wake-ups a second of an idle process, most of
  // its CPU at rest). A block longer than the resolution is always seen; shorter ones by chance.
  if (options.processMetrics) {
    collectDefaultMetrics({
      register: registry,
      prefix: 'runner_fleet_',
      eventLoopMonitoringPrecision: EVENT_LOOP_RESOLUTION_MS,
    });
  }
  return built as FleetMetrics;
}
