/**
 * Controller benchmarks, against the GitHub simulator on loopback (`runner-fleet simulate`, its own process) with the
 * `sim` provider and the production defaults of fleet.yaml (resync 30 s, controller.concurrency 64, GitHub client
 * limits):
 *
 * 1. The controller built by composeController in this process, one scale set with max 1,000 whose instances boot
 *    after 10 s (as cloud machines take a while; the simulator's process then does not start emulated runners while
 *    it answers the burst). First 50 jobs one at a time, then a burst of 1,000 at once:
 *    - overhead, webhook accepted to provider create called: the accept time is taken when the webhook route
 *      publishes the accepted `queued` event, the create time by a wrapping Provider (via providerFactories) when
 *      the reconciler calls create. Runners are not bound to jobs, so the i-th accept is paired with the i-th create.
 *      The interval includes the generate-jitconfig call; a timing fetch (composeController's `fetch`) and the
 *      reconciler's runner events split it per runner into: intent recorded, JIT request sent, JIT answer, create;
 *    - GitHub API calls per job: every REST call the simulator counted, from the controller's start until all 1,050
 *      jobs completed and every runner was removed.
 * 2. Resident memory of `runner-fleet start` (a child process, VmRSS from /proc) while it tracks 10,000 runners: a
 *    scale set with max 10,000 and 10,000 queued jobs. The instances boot slowly on purpose (10 minutes), so the
 *    10,000 runners stay registered and starting while the simulator's process is spared 10,000 emulated runners;
 *    the controller holds the same records, observations and lists whatever state they are in. Sampled from the
 *    moment 10,000 runners exist until two resyncs have listed them all; once with Node's default heap sizing, once
 *    with the heap limit the Helm chart sets (values.yaml `heapLimitMb`).
 *
 * The simulator's secondary rate limit (180 runner registrations a minute, as on GitHub) is raised for both: on
 * GitHub, a burst of this size would be paced by that limit, which is not what these measure.
 */
import { spawn } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { composeController } from '../src/app/compose.js';
import { loadConfig } from '../src/config/index.js';
import type { Provider, ProviderFactory } from '../src/providers/provider.js';
import { createSimProviderFactory } from '../src/providers/sim/index.js';
import { freePort } from '../test/support/free-port.js';
import type { BenchResult, Benchmark } from './harness.js';
import { CLI, SimProcess, benchFleet, percentile, rssBytes, waitFor } from './fleet-peers.js';

const BURST_JOBS = 1000;
const SINGLE_JOBS = 50;
const SINGLE_GAP_MS = 100;
const TRACKED_RUNNERS = 10_000;
const OVERHEAD_P99_MS = 25;
const CALLS_PER_JOB = 1.1;
const RSS_LIMIT_MB = 250;
/** The second memory run uses the heap limit the Helm chart gives the controller (values.yaml `heapLimitMb`). */
const CHART_VALUES = path.join(
  path.dirname(fileURLToPath(import.meta.url)),
  '..',
  'deploy',
  'helm',
  'runner-fleet',
);
const HEAP_LIMIT = `--max-old-space-size=${
  (parse(readFileSync(path.join(CHART_VALUES, 'values.yaml'), 'utf8')) as { heapLimitMb: number }).heapLimitMb
}`;
const LABELS = ['self-hosted', 'linux', 'bench'];

/** Wraps a provider to time the reconciler's first create call per runner name. */
function timedProvider(inner: Provider, onCreate: (name: string, at: number) => void): Provider {
  const seen = new Set<string>();
  const wrapped: Provider = {
    kind: inner.kind,
    create(spec, signal) {
      if (!seen.has(spec.name)) {
        seen.add(spec.name);
        onCreate(spec.name, performance.now());
      }
      return inner.create(spec, signal);
    },
    delete: (name, signal) => inner.delete(name, signal),
    list: (selector, signal) => inner.list(selector, signal),
    close: () => inner.close?.() ?? Promise.resolve(),
  };
  if (inner.watch !== undefined) wrapped.watch = (onChange) => inner.watch!(onChange);
  return wrapped;
}

interface BurstResult {
  /** accept -> provider create called for jobs arriving one at a time, sorted, ms */
  readonly single: number[];
  /** accept -> provider create called, sorted, ms */
  readonly latencies: number[];
  /** Per runner, sorted, ms: planned (intent recorded) -> JIT request sent; JIT request time; JIT answer -> create. */
  readonly queued: number[];
  readonly jit: number[];
  readonly afterJit: number[];
  /** accept -> planned, paired by order as the latencies are. */
  readonly toPlan: number[];
  readonly apiCalls: number;
  readonly byRoute: Record<string, number>;
  readonly durationMs: number;
  /** ms from the first to the last accepted webhook of the burst. */
  readonly arrivalMs: number;
}

const sorted = (xs: Iterable<number>): number[] => [...xs].sort((a, b) => a - b);

async function burst(log: (line: string) => void): Promise<BurstResult> {
  const sim = await SimProcess.start(['--secondary-limit', '100000']);
  // Instances boot after 10 s, as cloud machines take a while: the simulator's process is then not busy starting
  // 1,000 emulated runners while it answers the burst's generate-jitconfig calls.
  const fleet = benchFleet(sim.info, { name: 'burst', max: BURST_JOBS, port: 0, bootDelay: '10s' });
  try {
    const loaded = loadConfig(fleet.configPath, { env: {} });
    if (!loaded.ok) throw new Error(`fleet.yaml: ${JSON.stringify(loaded.problems)}`);
    const accepts: number[] = [];
    const creates = new Map<string, number>();
    const planned = new Map<string, number>();
    const jitSent = new Map<string, number>();
    const jitDone = new Map<string, number>();
    const sims = createSimProviderFactory() as ProviderFactory<unknown>;
    const timed: ProviderFactory<unknown> = {
      kind: 'sim',
      schema: sims.schema,
      create: (config, context) =>
        timedProvider(sims.create(config, context), (name, at) => creates.set(name, at)),
    };
    // Times the generate-jitconfig calls, by runner name, where they leave and re-enter the controller.
    const timedFetch: typeof fetch = async (input, init) => {
      const url = input instanceof Request ? input.url : String(input);
      if (!url.endsWith('/generate-jitconfig') || typeof init?.body !== 'string') return fetch(input, init);
      const name = (JSON.parse(init.body) as { name: string }).name;
      if (!jitSent.has(name)) jitSent.set(name, performance.now());
      const res = await fetch(input, init);
      if (res.status === 201) jitDone.set(name, performance.now());
      return res;
    };
    const controller = await composeController({
      config: loaded.config,
      logLevel: 'warn',
      logDestination: new Writable({ write: (_c, _e, done) => done() }),
      providerFactories: { sim: timed },
      fetch: timedFetch,
    });
    controller.events.subscribe((e) => {
      const data = e.data as { action?: string; runner?: string; from?: string | null; to?: string };
      if (e.type === 'workflow_job' && data.action === 'queued') accepts.push(performance.now());
      if (e.type === 'runner' && data.from === null && data.to === 'requested' && data.runner !== undefined) {
        planned.set(data.runner, performance.now());
      }
    });
    const started = Date.now();
    try {
      const url = await controller.start();
      await sim.setWebhook(`${url}/webhook`);
      // First one job at a time: the latency with no queue to wait in.
      log(`single: ${SINGLE_JOBS} jobs, one every ${SINGLE_GAP_MS} ms`);
      for (let i = 0; i < SINGLE_JOBS; i++) {
        const before = creates.size;
        await sim.createJobs({ owner: 'octo-org', repo: 'app', labels: LABELS, count: 1, durationMs: 100 });
        await waitFor('the runner of a single job', () => creates.size > before, 30_000, 5);
        await new Promise((r) => setTimeout(r, SINGLE_GAP_MS));
      }
      const singleCreates = sorted(creates.values());
      const single = sorted(
        sorted(accepts)
          .slice(0, SINGLE_JOBS)
          .map((at, i) => singleCreates[i]! - at),
      );
      await waitFor(
        'the single jobs done and their runners removed',
        async () =>
          (await sim.stats()).jobs.completed >= SINGLE_JOBS &&
          controller.store.runners().every((r) => r.state === 'deleted'),
        120_000,
      );
      accepts.length = 0;
      creates.clear();
      planned.clear();
      jitSent.clear();
      jitDone.clear();
      log(`burst: ${BURST_JOBS} jobs at once into a scale set with max ${BURST_JOBS}`);
      await sim.createJobs({
        owner: 'octo-org',
        repo: 'app',
        labels: LABELS,
        count: BURST_JOBS,
        durationMs: 1000,
      });
      await waitFor(
        `${BURST_JOBS} accepted webhooks and creates`,
        () => accepts.length >= BURST_JOBS && creates.size >= BURST_JOBS,
        180_000,
        50,
      );
      log(`burst: all created after ${Date.now() - started} ms; waiting for the jobs and the cleanup`);
      await waitFor(
        'all jobs completed',
        async () => (await sim.stats()).jobs.completed >= BURST_JOBS,
        300_000,
      );
      await waitFor(
        'every runner removed',
        async () =>
          (await sim.instances(loaded.config.name)) === 0 &&
          controller.store.runners().every((r) => r.state === 'deleted'),
        180_000,
        200,
        async () => ({
          instances: await sim.instances(loaded.config.name),
          stats: await sim.stats(),
          states: controller.readModel.scaleSets()[0]?.runners,
          reasons: [
            ...new Set(
              controller.store
                .runners()
                .filter((r) => r.state !== 'deleted')
                .map((r) => `${r.state}: ${r.reason}`),
            ),
          ].slice(0, 10),
        }),
      );
      await controller.reconciler.settled();
      const stats = await sim.stats();
      const durationMs = Date.now() - started;
      const a = sorted(accepts).slice(0, BURST_JOBS);
      const c = sorted(creates.values()).slice(0, BURST_JOBS);
      const p = sorted(planned.values()).slice(0, BURST_JOBS);
      if (creates.size > BURST_JOBS) log(`note: ${creates.size} runners created for ${BURST_JOBS} jobs`);
      const per = (from: Map<string, number>, to: Map<string, number>) =>
        sorted([...to].filter(([n]) => from.has(n)).map(([n, t]) => t - from.get(n)!));
      return {
        single,
        latencies: sorted(a.map((at, i) => c[i]! - at)),
        toPlan: sorted(a.map((at, i) => p[i]! - at)),
        queued: per(planned, jitSent),
        jit: per(jitSent, jitDone),
        afterJit: per(jitDone, creates),
        apiCalls: stats.apiCalls.total,
        byRoute: stats.apiCalls.byRoute,
        durationMs,
        arrivalMs: a[a.length - 1]! - a[0]!,
      };
    } finally {
      await controller.stop();
    }
  } finally {
    await sim.stop();
    rmSync(fleet.dir, { recursive: true, force: true });
  }
}

interface MemoryResult {
  readonly peakMb: number;
  readonly trackingMb: number;
  readonly tracked: number;
  readonly resyncs: number;
  /** V8 heap used and reserved at the end (the controller's own /metrics). */
  readonly heapUsedMb: number;
  readonly heapTotalMb: number;
}

/** A gauge's value from Prometheus text, or NaN. */
function gauge(text: string, name: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? Number.NaN : Number(line.slice(name.length + 1));
}

async function memory(log: (line: string) => void, nodeOptions = ''): Promise<MemoryResult> {
  const sim = await SimProcess.start([
    '--rate-limit',
    '1000000',
    '--secondary-limit',
    '1000000',
    '--jit-expiry-ms',
    '3600000',
  ]);
  const port = await freePort();
  const fleet = benchFleet(sim.info, { name: 'mem', max: TRACKED_RUNNERS, port, bootDelay: '10m' });
  const url = `http://127.0.0.1:${port}`;
  const child = spawn(process.execPath, [CLI, 'start', '--config', fleet.configPath, '--log-level', 'warn'], {
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', NODE_OPTIONS: nodeOptions },
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  let peak = 0;
  const sampler = setInterval(() => {
    try {
      peak = Math.max(peak, rssBytes(child.pid!));
    } catch {
      // exited
    }
  }, 250);
  const api = async <T>(route: string): Promise<T | null> => {
    try {
      const res = await fetch(`${url}${route}`, { signal: AbortSignal.timeout(30_000) });
      return res.ok ? ((await res.json()) as T) : null;
    } catch {
      return null;
    }
  };
  type Sets = {
    scaleSets: {
      runners: Record<string, number>;
      githubListedAt: number | null;
      instancesListedAt: number | null;
    }[];
  };
  /** Registered, with an instance: starting, idle or busy (requested and creating are intents still). */
  const live = (s: Sets['scaleSets'][number] | undefined): number =>
    (s?.runners.starting ?? 0) + (s?.runners.idle ?? 0) + (s?.runners.busy ?? 0);
  try {
    await waitFor('the controller to be ready', async () => (await api('/readyz')) !== null, 60_000);
    await sim.setWebhook(`${url}/webhook`);
    await sim.createJobs({
      owner: 'octo-org',
      repo: 'app',
      labels: LABELS,
      count: TRACKED_RUNNERS,
      durationMs: 60_000,
    });
    const started = Date.now();
    let set: Sets['scaleSets'][number] | undefined;
    await waitFor(
      `${TRACKED_RUNNERS} runners`,
      async () => {
        set = (await api<Sets>('/api/v1/scale-sets'))?.scaleSets[0] ?? set;
        return live(set) >= TRACKED_RUNNERS;
      },
      600_000,
      1000,
    );
    log(`memory: ${TRACKED_RUNNERS} runners after ${Date.now() - started} ms, RSS so far ${mb(peak)} MB`);
    // Two full resyncs after that: runner lists of 10,000 (100 pages) and instance lists of 10,000.
    const reached = Date.now();
    let resyncs = 0;
    let lastListed = 0;
    const trackingPeak = { value: 0 };
    const during = setInterval(() => {
      try {
        trackingPeak.value = Math.max(trackingPeak.value, rssBytes(child.pid!));
      } catch {
        // exited
      }
    }, 250);
    try {
      await waitFor(
        'two resyncs with every runner listed',
        async () => {
          const s = (await api<Sets>('/api/v1/scale-sets'))?.scaleSets[0];
          const listed = Math.min(s?.githubListedAt ?? 0, s?.instancesListedAt ?? 0);
          if (listed > reached && listed !== lastListed) {
            lastListed = listed;
            resyncs++;
          }
          set = s ?? set;
          return resyncs >= 2;
        },
        180_000,
        500,
      );
    } finally {
      clearInterval(during);
    }
    const metrics = await fetch(`${url}/metrics`).then((r) => r.text());
    return {
      peakMb: mb(peak),
      trackingMb: mb(trackingPeak.value),
      tracked: live(set),
      resyncs,
      heapUsedMb: mb(gauge(metrics, 'runner_fleet_nodejs_heap_size_used_bytes')),
      heapTotalMb: mb(gauge(metrics, 'runner_fleet_nodejs_heap_size_total_bytes')),
    };
  } finally {
    clearInterval(sampler);
    child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), 30_000);
    await exited;
    clearTimeout(t);
    await sim.stop();
    rmSync(fleet.dir, { recursive: true, force: true });
  }
}

function mb(bytes: number): number {
  return Math.round((bytes / 2 ** 20) * 10) / 10;
}

export const benchmark: Benchmark = {
  id: 'controller',
  title: 'Controller against the simulator (sim provider, loopback)',
  async run(log) {
    const b = await burst(log);
    const q = (xs: readonly number[], n: number) => Math.round(percentile(xs, n) * 10) / 10;
    const p = (n: number) => q(b.latencies, n);
    const jobs = SINGLE_JOBS + BURST_JOBS;
    const perJob = Math.round((b.apiCalls / jobs) * 1000) / 1000;
    const routes = Object.entries(b.byRoute)
      .sort((x, y) => y[1] - x[1])
      .map(([r, n]) => `${r} ${n}`)
      .join(', ');
    const breakdown =
      `accept to intent recorded p50 ${q(b.toPlan, 50)} / p99 ${q(b.toPlan, 99)} ms; ` +
      `intent to JIT request sent p50 ${q(b.queued, 50)} / p99 ${q(b.queued, 99)} ms; ` +
      `JIT request (simulator) p50 ${q(b.jit, 50)} / p99 ${q(b.jit, 99)} ms; ` +
      `JIT answer to create call p50 ${q(b.afterJit, 50)} / p99 ${q(b.afterJit, 99)} ms`;
    log(`burst: webhooks arrived over ${Math.round(b.arrivalMs)} ms; ${breakdown}`);
    log(`burst: ${b.apiCalls} REST calls in ${b.durationMs} ms: ${routes}`);
    const m = await memory(log);
    log(`memory again with NODE_OPTIONS=${HEAP_LIMIT}`);
    const limited = await memory(log, HEAP_LIMIT);
    const results: BenchResult[] = [
      {
        name: 'controller.webhook-to-create.p99',
        value: p(99),
        unit: 'ms',
        target: `<= ${OVERHEAD_P99_MS} ms`,
        pass: p(99) <= OVERHEAD_P99_MS,
        notes:
          `${BURST_JOBS}-job burst (webhooks arriving over ${Math.round(b.arrivalMs)} ms), max ${BURST_JOBS}: ` +
          `p50 ${p(50)} ms, p95 ${p(95)} ms, max ${p(100)} ms, from the webhook persisted to the provider create ` +
          `call, generate-jitconfig included. Per runner: ${breakdown}`,
      },
      { name: 'controller.webhook-to-create.p50', value: p(50), unit: 'ms' },
      {
        name: 'controller.webhook-to-create.single.p99',
        value: q(b.single, 99),
        unit: 'ms',
        notes: `${SINGLE_JOBS} jobs one at a time (${SINGLE_GAP_MS} ms apart), same controller: p50 ${q(b.single, 50)} ms`,
      },
      {
        name: 'controller.api-calls-per-job',
        value: perJob,
        unit: 'calls',
        target: `<= ${CALLS_PER_JOB}`,
        pass: perJob <= CALLS_PER_JOB,
        notes:
          `${b.apiCalls} REST calls counted by the simulator for ${jobs} ephemeral jobs (${SINGLE_JOBS} one at a ` +
          `time, then ${BURST_JOBS} at once), from controller start to every runner removed ` +
          `(${Math.round(b.durationMs / 1000)} s): ${routes}`,
      },
      {
        name: 'controller.rss-10k-runners',
        value: m.trackingMb,
        unit: 'MB',
        target: `<= ${RSS_LIMIT_MB} MB`,
        pass: m.trackingMb <= RSS_LIMIT_MB && m.tracked >= TRACKED_RUNNERS,
        notes:
          `runner-fleet start with ${m.tracked} runners registered and their instances created (largest VmRSS ` +
          `over ${m.resyncs} full resyncs after that); largest over the whole run, creation included: ` +
          `${m.peakMb} MB; V8 heap at the end ${m.heapUsedMb} MB used of ${m.heapTotalMb} MB reserved. Default V8 ` +
          `heap sizing (on this 24 GiB machine V8 lets garbage grow the heap); see the next line for the same run ` +
          `with a heap limit`,
      },
      {
        name: 'controller.rss-10k-runners.heap-limited',
        value: limited.trackingMb,
        unit: 'MB',
        target: `<= ${RSS_LIMIT_MB} MB`,
        pass: limited.trackingMb <= RSS_LIMIT_MB && limited.tracked >= TRACKED_RUNNERS,
        notes:
          `the same with NODE_OPTIONS=${HEAP_LIMIT}, as the Helm chart runs it: ${limited.tracked} runners; largest over the whole run ` +
          `${limited.peakMb} MB; V8 heap at the end ${limited.heapUsedMb} MB used of ${limited.heapTotalMb} MB`,
      },
    ];
    return results;
  },
};
