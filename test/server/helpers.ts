/** Shared pieces of the server tests: an in-memory WebhookSink, a read model, log capture and signed requests. */
import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import type { WebhookSink, WorkflowJobEvent } from '../../src/core/ports.js';
import type { FleetConfig } from '../../src/core/fleet-config.js';
import { signWebhookPayload } from '../../src/github/webhooks.js';
import type { EventQuery, JobQuery, ReadModel, RunnerQuery } from '../../src/server/read-model.js';
import { createServer } from '../../src/server/server.js';
import type { FleetServer, ServerOptions } from '../../src/server/server.js';
import { configSecrets, createLogger } from '../../src/telemetry/logger.js';
import { createMetrics } from '../../src/telemetry/metrics.js';
import type { FleetMetrics } from '../../src/telemetry/metrics.js';

export const SECRET = 'webhook-secret-for-tests-9f2c1e';
export const DASHBOARD_TOKEN = 'dashboard-token-for-tests-77aa01';

/** Deduplicates by delivery id and by (job id, action), like the store does, and remembers the order of calls. */
export class MemorySink implements WebhookSink {
  readonly events: WorkflowJobEvent[] = [];
  readonly deliveries = new Set<string>();
  readonly jobActions = new Set<string>();
  duplicates = 0;
  failWith: Error | null = null;
  onAccept: ((event: WorkflowJobEvent) => void) | null = null;

  acceptWorkflowJob(event: WorkflowJobEvent): { duplicate: boolean } {
    if (this.failWith) throw this.failWith;
    this.onAccept?.(event);
    const jobAction = `${event.job.id}:${event.action}`;
    if (this.deliveries.has(event.deliveryId) || this.jobActions.has(jobAction)) {
      this.duplicates += 1;
      return { duplicate: true };
    }
    this.deliveries.add(event.deliveryId);
    this.jobActions.add(jobAction);
    this.events.push(event);
    return { duplicate: false };
  }
}

/** Records carry secrets on purpose: the API must not serve them. */
export function leakyReadModel(): ReadModel & {
  lastJobQuery: JobQuery | null;
  lastEventQuery: EventQuery | null;
} {
  const counts = {
    requested: 0,
    creating: 0,
    starting: 0,
    idle: 1,
    busy: 2,
    finished: 0,
    failed: 0,
    'bootstrap-timeout': 0,
    deleted: 0,
  };
  const model = {
    lastJobQuery: null as JobQuery | null,
    lastEventQuery: null as EventQuery | null,
    scaleSets: () => [
      {
        name: 'linux-small',
        scope: { org: 'octo-org' },
        runnerGroup: 'Default',
        labels: ['linux', 'x64'],
        minIdle: 1,
        max: 20,
        ephemeral: true,
        registration: 'jit' as const,
        priority: 0,
        provider: 'process',
        runners: counts,
        activeRunners: 3,
        queuedJobs: 3,
        inProgressJobs: 2,
        oldestQueuedMs: 1500,
        backoff: { failures: 0, until: null, lastFailure: null, lastFailureAt: null },
        githubListedAt: 1_700_000_000_000,
        instancesListedAt: null,
        lastReconcileAt: 1_700_000_000_500,
        pacing: { waiting: 2, oldestWaitMs: 1200, pausedUntil: null, perMinute: 180 },
        registrationToken: 'AABF3JGZDX3P5PMEXLND6TS6FCWO6',
      },
    ],
    runners: (query: RunnerQuery) =>
      [
        {
          name: 'linux-small-ab12',
          scaleSet: 'linux-small',
          state: 'busy' as const,
          reason: null,
          githubId: 7,
          createdAt: 1,
          ageMs: 10,
          stateChangedAt: 2,
          stateAgeMs: 9,
          instance: { state: 'running' as const, providerId: 'pid-1234', jitConfig: 'secret-jit' },
          github: { status: 'online' as const, busy: true },
          job: { id: 99, status: 'in_progress' as const },
          encodedJitConfig: 'eyJTRUNSRVQiOiJqaXQifQ==',
        },
      ].filter((r) => !query.state || r.state === query.state),
    jobs: (query: JobQuery) => {
      model.lastJobQuery = query;
      return [0, 1, 2].map((i) => ({
        id: 100 + i,
        runId: 5,
        owner: 'octo-org',
        repo: 'app',
        labels: ['self-hosted', 'linux'],
        status: 'queued' as const,
        conclusion: null,
        scaleSet: i === 2 ? null : 'linux-small',
        unroutable: i === 2,
        runnerName: null,
        queuedAt: 10,
        startedAt: null,
        completedAt: null,
        waitMs: 20,
        token: 'ghs_16C7e42F292c6912E7710c838347Ae178B4a',
      }));
    },
    events: (query: EventQuery) => {
      model.lastEventQuery = query;
      return [
        {
          id: 1,
          at: 5,
          kind: 'runner',
          scaleSet: 'linux-small',
          runner: 'linux-small-ab12',
          jobId: null,
          event: 'idle',
          reason: null,
        },
      ];
    },
  };
  return model;
}

export interface LogCapture {
  readonly stream: Writable;
  text(): string;
}

export function captureLogs(): LogCapture {
  const chunks: string[] = [];
  return {
    stream: new Writable({
      write(chunk: Buffer, _enc, cb) {
        chunks.push(chunk.toString());
        cb();
      },
    }),
    text: () => chunks.join(''),
  };
}

export function testConfig(
  overrides: Partial<FleetConfig['server']> = {},
): Pick<FleetConfig, 'server' | 'webhook'> {
  return { server: { host: '127.0.0.1', port: 0, ...overrides }, webhook: { secret: SECRET } };
}

export interface TestServer {
  readonly server: FleetServer;
  readonly sink: MemorySink;
  readonly metrics: FleetMetrics;
  readonly logs: LogCapture;
  readonly woken: WorkflowJobEvent[];
}

export async function startTestServer(options: Partial<ServerOptions> = {}): Promise<TestServer> {
  const sink = new MemorySink();
  const metrics = createMetrics();
  const logs = captureLogs();
  const woken: WorkflowJobEvent[] = [];
  const config = options.config ?? testConfig();
  const server = await createServer({
    config,
    sink,
    onWorkflowJob: (e) => woken.push(e),
    readModel: leakyReadModel(),
    isReady: () => true,
    metrics,
    // As the composition root does: every configured secret value is scrubbed from every line.
    logger: createLogger({ level: 'debug', destination: logs.stream, knownSecrets: configSecrets(config) }),
    ...options,
  });
  return { server, sink: (options.sink as MemorySink | undefined) ?? sink, metrics, logs, woken };
}

export interface WorkflowJobOverrides {
  action?: string;
  jobId?: number;
  labels?: string[];
}

export function workflowJobPayload(o: WorkflowJobOverrides = {}): Record<string, unknown> {
  const action = o.action ?? 'queued';
  return {
    action,
    workflow_job: {
      id: o.jobId ?? 4242,
      run_id: 77,
      status: action === 'waiting' ? 'waiting' : action,
      conclusion: action === 'completed' ? 'success' : null,
      labels: o.labels ?? ['self-hosted', 'linux'],
      runner_id: action === 'queued' ? null : 9,
      runner_name: action === 'queued' ? null : 'linux-small-ab12',
      created_at: '2024-05-01T10:00:00Z',
      started_at: action === 'queued' ? null : '2024-05-01T10:00:05Z',
      completed_at: action === 'completed' ? '2024-05-01T10:01:05Z' : null,
    },
    repository: { name: 'app', owner: { login: 'octo-org' } },
    installation: { id: 31 },
  };
}

export async function signedHeaders(
  body: string,
  event = 'workflow_job',
  delivery: string = randomUUID(),
  secret = SECRET,
): Promise<Record<string, string>> {
  return {
    'content-type': 'application/json',
    'x-github-event': event,
    'x-github-delivery': delivery,
    'x-hub-signature-256': await signWebhookPayload(secret, body),
  };
}

export async function metricValue(
  metrics: FleetMetrics,
  name: string,
  labels: Record<string, string>,
): Promise<number> {
  const metric = metrics.registry.getSingleMetric(name);
  if (!metric) return 0;
  const data = await metric.get();
  const hit = data.values.find((v) => Object.entries(labels).every(([k, val]) => v.labels[k] === val));
  return hit?.value ?? 0;
}
