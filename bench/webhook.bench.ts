/**
 * Webhook ingestion with signature verification: autocannon on loopback against the real server (createServer, in
 * a child process so the load generator does not share its event loop), with realistic workflow_job payloads from
 * @octokit/webhooks-examples (7 to 10 KB), each request a new signed delivery of a new job event.
 *
 * Measured twice: with the production sink, the SQLite store (src/store: WAL, synchronous=NORMAL, checkpoints in a
 * worker thread, a file in the temporary directory), where the events of concurrent requests are committed in one transaction (group commit,
 * src/server/batching-sink.ts) and each 202 goes out after its commit; and with an in-memory sink behind the same
 * batching, which isolates the server's own cost (HTTP, HMAC, JSON parsing and validation) from the store's.
 */
import { spawn } from 'node:child_process';
import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import examples from '@octokit/webhooks-examples';
import type { BenchResult, Benchmark } from './harness.js';
import type { WorkflowJobEvent } from '../src/core/ports.js';
import type { BatchWebhookSink } from '../src/server/batching-sink.js';
import { SERVER_LIMITS } from '../src/server/server.js';

const TARGET_RPS = 3000;
const CONNECTIONS = 32;
/** Requests per connection before autocannon reconnects (see measure). */
const RECONNECT_RATE = SERVER_LIMITS.maxRequestsPerSocket / 2;
const WARMUP_S = 3;
const DURATION_S = 15;
const SERVE_FLAG = '--webhook-bench-serve';
const SECRET_ENV = 'RUNNER_FLEET_WEBHOOK_BENCH_SECRET';
const SINK_ENV = 'RUNNER_FLEET_WEBHOOK_BENCH_SINK';

type SinkKind = 'store' | 'memory';

interface AutocannonRequest {
  method?: string;
  path?: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  setupRequest?: (request: AutocannonRequest) => AutocannonRequest;
}
interface AutocannonResult {
  requests: { average: number; total: number };
  latency: { p50: number; p99: number; average: number };
  non2xx: number;
  errors: number;
  timeouts: number;
  '2xx': number;
}
type Autocannon = (options: {
  url: string;
  connections: number;
  duration: number;
  requests: AutocannonRequest[];
}) => Promise<AutocannonResult>;

// autocannon ships no type declarations; the shape used here is declared above.
const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;

/** Deduplicates like the store (by delivery id, and by job id + action), in memory. */
function memorySink(): BatchWebhookSink {
  const deliveries = new Set<string>();
  const jobActions = new Set<string>();
  const accept = (event: WorkflowJobEvent) => {
    const key = `${event.job.id}:${event.action}`;
    if (deliveries.has(event.deliveryId) || jobActions.has(key)) return { duplicate: true };
    deliveries.add(event.deliveryId);
    jobActions.add(key);
    return { duplicate: false };
  };
  return { acceptWorkflowJob: accept, acceptWorkflowJobs: (events) => events.map(accept) };
}

/** Child process: the server under test. Prints its URL, then answers until SIGTERM. */
async function serve(): Promise<void> {
  const { createServer } = await import('../src/server/server.js');
  const { createLogger } = await import('../src/telemetry/logger.js');
  const { createMetrics } = await import('../src/telemetry/metrics.js');
  const { openStore } = await import('../src/store/store.js');
  const { LabelRouter } = await import('../src/core/labels.js');
  const secret = process.env[SECRET_ENV];
  if (!secret) throw new Error(`${SECRET_ENV} is not set`);
  const kind = process.env[SINK_ENV] as SinkKind;

  const dir = mkdtempSync(path.join(tmpdir(), 'runner-fleet-webhook-bench-'));
  // The example payloads ask for `ubuntu-latest`: route them to a scale set, as a fleet serving them would.
  const router = new LabelRouter([
    { name: 'linux', labels: ['ubuntu-latest'], priority: 0, scope: { enterprise: 'bench' } },
  ]);
  const store =
    kind === 'store'
      ? openStore({
          path: path.join(dir, 'runner-fleet.db'),
          route: (job) => router.route(job),
          // as composeController opens it
          backgroundCheckpoints: {},
        })
      : null;
  const inner = store ?? memorySink();
  const counts = { accepted: 0, duplicates: 0, batches: 0, largestBatch: 0 };
  const tally = <R extends { readonly duplicate: boolean }>(results: readonly R[]): readonly R[] => {
    for (const r of results) {
      if (r.duplicate) counts.duplicates += 1;
      else counts.accepted += 1;
    }
    return results;
  };
  const sink: BatchWebhookSink = {
    acceptWorkflowJob: (event) => tally([inner.acceptWorkflowJob(event)])[0]!,
    acceptWorkflowJobs(events) {
      counts.batches += 1;
      counts.largestBatch = Math.max(counts.largestBatch, events.length);
      return tally(inner.acceptWorkflowJobs(events));
    },
  };
  const server = await createServer({
    config: { server: { host: '127.0.0.1', port: 0 }, webhook: { secret } },
    sink,
    onWorkflowJob: () => undefined,
    readModel: { scaleSets: () => [], runners: () => [], jobs: () => [] },
    isReady: () => true,
    metrics: createMetrics(),
    logger: createLogger({ level: 'warn', knownSecrets: [secret] }),
  });
  server.app.get('/_bench/sink', async () => ({ ...counts, deliveries: store?.stats().deliveries ?? null }));
  const url = await server.listen();
  process.once('SIGTERM', () => {
    void server.close().then(() => {
      store?.close();
      rmSync(dir, { recursive: true, force: true });
      process.exit(0);
    });
  });
  process.stdout.write(`${JSON.stringify({ url })}\n`);
}

/** Body templates (queued, in_progress, completed of one job) split where the job id goes. */
function templates(): string[][] {
  const all = examples as unknown as {
    name: string;
    examples: { action: string; workflow_job: { id: number } }[];
  }[];
  const job = all
    .find((e) => e.name === 'workflow_job')!
    .examples.filter((e) => e.workflow_job.id === 289782451);
  const byAction = ['queued', 'in_progress', 'completed'].map((a) => job.find((e) => e.action === a)!);
  // The job id also appears in URLs; every occurrence gets the request's id.
  return byAction.map((e) => JSON.stringify(e).split('289782451'));
}

/** Each request: the next event of a new job id, a new delivery id, signed like GitHub signs it. */
function requestFactory(secret: string): AutocannonRequest {
  const parts = templates();
  let n = 0;
  const firstJobId = Date.now() * 1000;
  return {
    method: 'POST',
    path: '/webhook',
    setupRequest: (request) => {
      const i = n++;
      const body = parts[i % 3]!.join(String(firstJobId + Math.floor(i / 3)));
      return {
        ...request,
        body,
        headers: {
          'content-type': 'application/json',
          'user-agent': 'GitHub-Hookshot/bench',
          'x-github-event': 'workflow_job',
          'x-github-delivery': randomUUID(),
          'x-hub-signature-256': `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`,
        },
      };
    },
  };
}

/** Extra node flags for the server process, e.g. `--cpu-prof` when profiling it. */
function childArgs(): string[] {
  return (process.env.RUNNER_FLEET_BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);
}

async function startChild(
  secret: string,
  kind: SinkKind,
): Promise<{ url: string; stop: () => Promise<void> }> {
  const self = fileURLToPath(import.meta.url);
  const child = spawn(process.execPath, [...process.execArgv, ...childArgs(), self, SERVE_FLAG], {
    env: { ...process.env, [SECRET_ENV]: secret, [SINK_ENV]: kind },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout! });
  const url = await new Promise<string>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`bench server exited with ${code}`)));
    lines.once('line', (line) => resolve((JSON.parse(line) as { url: string }).url));
  });
  const stop = async () => {
    if (child.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  };
  return { url, stop };
}

interface Measurement {
  readonly result: AutocannonResult;
  readonly accepted: number;
  /** No failed request, and the sink got exactly the answered deliveries (plus those in flight at the end). */
  readonly clean: boolean;
  /** Sink calls (transactions, for the store) during the measured run, and events per call. */
  readonly batches: number;
  readonly perBatch: number;
}

async function measure(kind: SinkKind, log: (line: string) => void): Promise<Measurement> {
  const secret = randomBytes(24).toString('hex');
  const { url, stop } = await startChild(secret, kind);
  try {
    log(`[${kind}] server ${url}; ${CONNECTIONS} connections; warm-up ${WARMUP_S} s, then ${DURATION_S} s`);
    // GitHub's deliveries come on fresh connections; the server closes a keep-alive connection after
    // SERVER_LIMITS.maxRequestsPerSocket requests (and answers 503 to a client that goes on using it), so each
    // connection here reconnects well before that, as any client honouring `Connection: close` would.
    const options = { url, connections: CONNECTIONS, reconnectRate: RECONNECT_RATE };
    await autocannon({ ...options, duration: WARMUP_S, requests: [requestFactory(secret)] });
    const before = (await (await fetch(`${url}/_bench/sink`)).json()) as {
      accepted: number;
      batches: number;
    };
    const result = await autocannon({ ...options, duration: DURATION_S, requests: [requestFactory(secret)] });
    const after = (await (await fetch(`${url}/_bench/sink`)).json()) as {
      accepted: number;
      duplicates: number;
      batches: number;
      largestBatch: number;
    };
    const accepted = after.accepted - before.accepted;
    const batches = after.batches - before.batches;
    const perBatch = batches > 0 ? accepted / batches : 0;
    log(
      `[${kind}] ${Math.round(result.requests.average)} req/s; 2xx ${result['2xx']}, non-2xx ${result.non2xx}, ` +
        `errors ${result.errors}, timeouts ${result.timeouts}; accepted ${accepted}, duplicates ${after.duplicates}; ` +
        `${batches} batches (${perBatch.toFixed(1)} events each on average, largest ${after.largestBatch})`,
    );
    const failed = result.non2xx + result.errors + result.timeouts;
    // Requests still in flight when autocannon stops, or when a connection is dropped to reconnect, reach the sink
    // without being counted as responses: at most one per connection and one per reconnection.
    const inFlight = CONNECTIONS + Math.ceil(result.requests.total / RECONNECT_RATE);
    const clean = failed === 0 && accepted >= result['2xx'] && accepted - result['2xx'] <= inFlight;
    return { result, accepted, clean, batches, perBatch };
  } finally {
    await stop();
  }
}

export const benchmark: Benchmark = {
  id: 'webhook',
  title: 'Webhook ingestion with signature verification',
  limits: 'none: webhook ingestion alone, no GitHub call',
  async run(log) {
    const loadBefore = loadavg()[0]!;
    const store = await measure('store', log);
    const memory = await measure('memory', log);
    // The machine may be shared: the load average says how much of it the run had.
    const load = `1-min load average ${loadBefore.toFixed(1)} before, ${loadavg()[0]!.toFixed(1)} after`;
    log(load);
    const common =
      `server in a child process, autocannon in the bench process, ${CONNECTIONS} connections, ${DURATION_S} s ` +
      `after a ${WARMUP_S} s warm-up; 7-10 KB workflow_job payloads, every request a new signed delivery; ${load}`;
    const results: BenchResult[] = [
      {
        name: 'webhook.requests-per-second',
        value: Math.round(store.result.requests.average),
        unit: 'req/s',
        target: `>= ${TARGET_RPS}`,
        pass: store.result.requests.average >= TARGET_RPS,
        notes:
          `sink: the SQLite store (src/store, WAL, synchronous=NORMAL, checkpoints in a worker thread, file in the ` +
          `temporary directory), group ` +
          `commit: concurrent webhooks in one transaction, each 202 after its commit (${store.batches} ` +
          `transactions, ${store.perBatch.toFixed(1)} events each on average); ${store.accepted} events stored; ` +
          common,
      },
      { name: 'webhook.latency.p50', value: store.result.latency.p50, unit: 'ms' },
      { name: 'webhook.latency.p99', value: store.result.latency.p99, unit: 'ms' },
      {
        name: 'webhook.failed-requests',
        value: store.result.non2xx + store.result.errors + store.result.timeouts,
        unit: 'requests',
        target: '0',
        pass: store.clean,
      },
      {
        name: 'webhook.requests-per-second.in-memory-sink',
        value: Math.round(memory.result.requests.average),
        unit: 'req/s',
        notes:
          `same server, batching and load with an in-memory deduplicating sink instead of the store: the server's own ` +
          `cost (HTTP, HMAC, JSON parse and validation); ${memory.clean ? 'no' : 'SOME'} failed requests`,
      },
      { name: 'webhook.latency.p99.in-memory-sink', value: memory.result.latency.p99, unit: 'ms' },
    ];
    return results;
  },
};

// Entry point of the child process started by `measure`; importing this module does nothing.
if (process.argv[1] === fileURLToPath(import.meta.url) && process.argv.includes(SERVE_FLAG)) {
  await serve();
}
