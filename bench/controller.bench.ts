/**
 * The controller at GitHub's real limits, against the GitHub simulator on loopback (`runner-fleet simulate`, its own
 * process, with its default limits, which are github.com's: 180 runner-creating POSTs a minute per installation)
 * with the `sim` provider and the production defaults of fleet.yaml (resync 30 s, github.createsPerMinute 180).
 *
 * The controller is built by composeController in this process; one scale set with max 1,000 whose instances boot
 * after 10 s. First 50 jobs one at a time (nothing to pace: the latency from webhook to create call), then a burst
 * of 1,000 jobs at once, which the budget paces:
 *    - time from the first accepted webhook of the burst to the last provider create call, and its ratio to the
 *      physical floor (1,000 / 180 a minute = 333 s): what the pacing makes of the budget;
 *    - refusals by the simulator's limits (target 0) and GitHub calls per job (every REST call the simulator
 *      counted from the controller's start until every runner was removed, over all 1,050 jobs);
 *    - controller CPU per job: this process's CPU (process.cpuUsage) from the burst to the last runner removed,
 *      less this process's idle rate measured before the burst (resync timers, the bench's own polling), over the
 *      1,000 jobs; split by phase (intake: until every webhook is accepted; paced creation: until the last create;
 *      drain: until every runner is removed), with the top self-time entries of a CPU profile of the burst;
 *    - the floor under that CPU on this machine: what one HTTP exchange costs here (bench/exchange-floor.ts, measured
 *      first, with nothing else running in this process) times the exchanges per job counted in the burst (webhooks
 *      received; JIT config, provider create and delete calls sent);
 *    - beside them, what terraform-aws-github-runner's documented behaviour gives on the same burst, computed from
 *      its documentation (not measured).
 */
import { rmSync } from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { composeController } from '../src/app/compose.js';
import { githubFetch } from '../src/app/github-fetch.js';
import { loadConfig } from '../src/config/index.js';
import type { Provider, ProviderFactory } from '../src/providers/provider.js';
import { createSimProviderFactory } from '../src/providers/sim/index.js';
import type { BenchResult, Benchmark } from './harness.js';
import { GITHUB_DEFAULT_LIMITS } from './harness.js';
import { SimProcess, benchFleet, percentile, waitFor } from './fleet-peers.js';
import { measureExchanges } from './exchange-floor.js';
import { CpuProfiler } from './profile.js';
import { burstFloorMs, terraformAwsBurst } from './terraform-aws.js';
import type { ProfileSummary } from './profile.js';

const BURST_JOBS = 1000;
const SINGLE_JOBS = 50;
const SINGLE_GAP_MS = 400;
const OVERHEAD_P99_MS = 25;
const CALLS_PER_JOB = 1.05;
const CPU_PER_JOB_MS = 1;
/** GitHub's secondary limit on runner-creating POSTs per installation and minute (the simulator's default). */
const LIMIT_PER_MINUTE = 180;
const FLOOR_MS = burstFloorMs(BURST_JOBS, LIMIT_PER_MINUTE);
const RATIO_TARGET = 1.1;
const IDLE_SAMPLE_MS = 10_000;
const PROFILED_JOBS = 200;
const PROFILE_FILE = path.join(
  path.dirname(fileURLToPath(import.meta.url)),
  'results',
  'controller-burst.cpuprofile',
);
const LABELS = ['self-hosted', 'linux', 'bench'];

/** Wraps a provider to time the reconciler's first create call per runner name and count create and delete calls. */
function timedProvider(
  inner: Provider,
  onCreate: (name: string, at: number) => void,
  calls: { creates: number; deletes: number },
): Provider {
  const seen = new Set<string>();
  const wrapped: Provider = {
    kind: inner.kind,
    create(spec, signal) {
      calls.creates++;
      if (!seen.has(spec.name)) {
        seen.add(spec.name);
        onCreate(spec.name, performance.now());
      }
      return inner.create(spec, signal);
    },
    delete: (name, signal) => {
      calls.deletes++;
      return inner.delete(name, signal);
    },
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
  /** ms from the first accepted webhook of the burst to the last create call. */
  readonly lastCreateMs: number;
  readonly refusals: { readonly primaryRefusals: number; readonly secondaryRefusals: number };
  /** This process's CPU, ms, by phase of the burst, less the idle rate; and that idle rate (ms CPU per s). */
  readonly cpu: {
    readonly intake: number;
    readonly create: number;
    readonly drain: number;
    readonly idlePerS: number;
  };
  readonly phaseMs: { readonly intake: number; readonly create: number; readonly drain: number };
  /** Store writes (transactions) from the burst to the last runner removed. */
  readonly storeWrites: number;
  readonly profile: ProfileSummary;
  readonly pacingWaitP99: number;
  /** HTTP exchanges of the controller per job of the burst: webhooks received; requests sent (GitHub, provider). */
  readonly exchanges: {
    readonly received: number;
    readonly sent: number;
    readonly webhooks: number;
    readonly jit: number;
    readonly creates: number;
    readonly deletes: number;
  };
}

/** CPU of this process so far, ms (user + system). */
function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

const sorted = (xs: Iterable<number>): number[] => [...xs].sort((a, b) => a - b);

/** The 99th percentile's bucket bound (s) of a prom-client histogram's values, over every label set. */
function histogramP99(
  values: readonly { metricName?: string; labels: Record<string, unknown>; value: number }[],
): number {
  const buckets = new Map<number, number>();
  let count = 0;
  for (const v of values) {
    if (v.metricName?.endsWith('_bucket') === true) {
      const le = v.labels.le === '+Inf' ? Infinity : Number(v.labels.le);
      buckets.set(le, (buckets.get(le) ?? 0) + v.value);
    } else if (v.metricName?.endsWith('_count') === true) count += v.value;
  }
  for (const [le, n] of [...buckets].sort((x, y) => x[0] - y[0])) if (n >= 0.99 * count) return le;
  return Infinity;
}

async function burst(log: (line: string) => void): Promise<BurstResult> {
  // GitHub's limits, as the simulator has them by default: nothing raised.
  const sim = await SimProcess.start([]);
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
    const calls = { creates: 0, deletes: 0 };
    const sims = createSimProviderFactory() as ProviderFactory<unknown>;
    const timed: ProviderFactory<unknown> = {
      kind: 'sim',
      schema: sims.schema,
      create: (config, context) =>
        timedProvider(sims.create(config, context), (name, at) => creates.set(name, at), calls),
    };
    // Times the generate-jitconfig calls, by runner name, where they leave and re-enter the controller, around the
    // fetch the controller uses for GitHub when given none (src/app/github-fetch.ts).
    const transport = githubFetch(loaded.config.github, {});
    const inner = transport.fetch;
    const timedFetch: typeof fetch = async (input, init) => {
      const url = input instanceof Request ? input.url : String(input);
      if (!url.endsWith('/generate-jitconfig') || typeof init?.body !== 'string') return inner(input, init);
      const name = (JSON.parse(init.body) as { name: string }).name;
      if (!jitSent.has(name)) jitSent.set(name, performance.now());
      const res = await inner(input, init);
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
      // This process's CPU at rest (resync timers, the polling below) before the burst: taken off the burst's CPU.
      const idleFrom = cpuMs();
      const idleAt = performance.now();
      // (while the burst's creates are awaited this process only polls a counter, as here)
      await new Promise((r) => setTimeout(r, IDLE_SAMPLE_MS));
      const idlePerS = ((cpuMs() - idleFrom) / (performance.now() - idleAt)) * 1000;
      log(`idle: ${idlePerS.toFixed(2)} ms CPU per s in this process before the burst`);
      log(`burst: ${BURST_JOBS} jobs at once into a scale set with max ${BURST_JOBS}`);
      const statsBefore = await sim.stats();
      const callsBefore = { ...calls };
      const cpu0 = cpuMs();
      const writes0 = controller.store.writes;
      const t0 = performance.now();
      await sim.createJobs({
        owner: 'octo-org',
        repo: 'app',
        labels: LABELS,
        count: BURST_JOBS,
        durationMs: 1000,
      });
      await waitFor(`${BURST_JOBS} accepted webhooks`, () => accepts.length >= BURST_JOBS, 180_000, 200);
      const cpu1 = cpuMs();
      const t1 = performance.now();
      await waitFor(
        `${BURST_JOBS} creates`,
        () => creates.size >= BURST_JOBS,
        900_000,
        200,
        async () => ({
          creates: creates.size,
          pacing: controller.readModel.scaleSets()[0]?.pacing,
          stats: await sim.stats(),
        }),
      );
      const cpu2 = cpuMs();
      const t2 = performance.now();
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
      const cpu3 = cpuMs();
      const t3 = performance.now();
      const storeWrites = controller.store.writes - writes0;
      const stats = await sim.stats();
      const jitRoute = 'POST /orgs/{org}/actions/runners/generate-jitconfig';
      const exchanges = {
        webhooks: (stats.webhooks.sent - statsBefore.webhooks.sent) / BURST_JOBS,
        jit:
          ((stats.apiCalls.byRoute[jitRoute] ?? 0) - (statsBefore.apiCalls.byRoute[jitRoute] ?? 0)) /
          BURST_JOBS,
        creates: (calls.creates - callsBefore.creates) / BURST_JOBS,
        deletes: (calls.deletes - callsBefore.deletes) / BURST_JOBS,
      };
      const waits = await controller.metrics.pacingWaitSeconds.get();
      const pacingWaitP99 = histogramP99(waits.values);
      const durationMs = Date.now() - started;
      const a = sorted(accepts).slice(0, BURST_JOBS);
      const c = sorted(creates.values()).slice(0, BURST_JOBS);
      // (the profiled burst's creates come after these)
      const p = sorted(planned.values()).slice(0, BURST_JOBS);
      if (creates.size > BURST_JOBS) log(`note: ${creates.size} runners created for ${BURST_JOBS} jobs`);
      // The profile: a second, smaller burst with the sampling profiler on (its own thread and signals cost CPU
      // too, so the figures above were taken without it).
      log(`profile: a burst of ${PROFILED_JOBS} with the CPU profiler on`);
      const before = creates.size;
      const profiler = new CpuProfiler();
      await profiler.start();
      await sim.createJobs({
        owner: 'octo-org',
        repo: 'app',
        labels: LABELS,
        count: PROFILED_JOBS,
        durationMs: 1000,
      });
      await waitFor(
        `${PROFILED_JOBS} more creates`,
        () => creates.size >= before + PROFILED_JOBS,
        300_000,
        200,
      );
      await waitFor(
        'the profiled jobs completed and their runners removed',
        async () =>
          (await sim.stats()).jobs.completed >= SINGLE_JOBS + BURST_JOBS + PROFILED_JOBS &&
          controller.store.runners().every((r) => r.state === 'deleted'),
        180_000,
        500,
      );
      const profile = await profiler.stop(PROFILE_FILE);
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
        lastCreateMs: c[c.length - 1]! - a[0]!,
        refusals: stats.rateLimit,
        cpu: {
          intake: cpu1 - cpu0 - (idlePerS * (t1 - t0)) / 1000,
          create: cpu2 - cpu1 - (idlePerS * (t2 - t1)) / 1000,
          drain: cpu3 - cpu2 - (idlePerS * (t3 - t2)) / 1000,
          idlePerS,
        },
        phaseMs: { intake: t1 - t0, create: t2 - t1, drain: t3 - t2 },
        storeWrites,
        profile,
        pacingWaitP99,
        exchanges: {
          ...exchanges,
          received: exchanges.webhooks,
          sent: exchanges.jit + exchanges.creates + exchanges.deletes,
        },
      };
    } finally {
      await controller.stop();
      transport.close();
    }
  } finally {
    await sim.stop();
    rmSync(fleet.dir, { recursive: true, force: true });
  }
}

const sec = (ms: number): number => Math.round(ms / 100) / 10;
const r2 = (x: number): number => Math.round(x * 100) / 100;
const r3 = (x: number): number => Math.round(x * 1000) / 1000;
/** Exchanges timed per kind in the floor's micro-measurement, and the gap between them (ms). */
const EXCHANGES_MEASURED = 1000;
const EXCHANGE_GAP_MS = 10;

export const benchmark: Benchmark = {
  id: 'controller',
  title: "Controller at GitHub's limits: 1,000-job burst, calls and CPU per job (simulator, sim provider)",
  limits: GITHUB_DEFAULT_LIMITS,
  async run(log) {
    // First, with nothing else running in this process: what one HTTP exchange costs here.
    const floor = await measureExchanges({ count: EXCHANGES_MEASURED, gapMs: EXCHANGE_GAP_MS });
    log(
      `exchange floor: received ${r3(floor.receivedSpaced)} ms (back to back ${r3(floor.receivedBackToBack)}), ` +
        `sent ${r3(floor.sentSpaced)} ms (back to back ${r3(floor.sentBackToBack)}) of CPU per exchange`,
    );
    const b = await burst(log);
    const q = (xs: readonly number[], n: number) => Math.round(percentile(xs, n) * 10) / 10;
    const jobs = SINGLE_JOBS + BURST_JOBS;
    const perJob = Math.round((b.apiCalls / jobs) * 1000) / 1000;
    const routes = Object.entries(b.byRoute)
      .sort((x, y) => y[1] - x[1])
      .map(([r, n]) => `${r} ${n}`)
      .join(', ');
    const breakdown =
      `accept to intent recorded p50 ${q(b.toPlan, 50)} / p99 ${q(b.toPlan, 99)} ms; ` +
      `intent to JIT request sent (pacing) p50 ${q(b.queued, 50)} / p99 ${q(b.queued, 99)} ms; ` +
      `JIT request (simulator) p50 ${q(b.jit, 50)} / p99 ${q(b.jit, 99)} ms; ` +
      `JIT answer to create call p50 ${q(b.afterJit, 50)} / p99 ${q(b.afterJit, 99)} ms`;
    log(`burst: webhooks arrived over ${Math.round(b.arrivalMs)} ms; ${breakdown}`);
    log(`burst: ${b.apiCalls} REST calls in ${b.durationMs} ms: ${routes}`);
    const ratio = r2(b.lastCreateMs / FLOOR_MS);
    const cpuTotal = b.cpu.intake + b.cpu.create + b.cpu.drain;
    const cpuPerJob = r2(cpuTotal / BURST_JOBS);
    const x = b.exchanges;
    const floorPerJob = r2(x.received * floor.receivedSpaced + x.sent * floor.sentSpaced);
    const floorNotes =
      `HTTP exchanges the design needs per job, counted in the burst: ${r2(x.received)} webhooks received ` +
      `(queued, in_progress, completed) and ${r2(x.sent)} requests sent (generate-jitconfig ${r2(x.jit)}, ` +
      `provider create ${r2(x.creates)}, provider delete ${r2(x.deletes)}); one exchange measured in this ` +
      `process before the burst (bench/exchange-floor.ts: bare node:http on loopback, one kept-alive ` +
      `connection, the peer in a child process, ${floor.count} exchanges ${floor.gapMs} ms apart): received ` +
      `(POST of ${floor.bodyBytes} bytes answered 202) ${r3(floor.receivedSpaced)} ms of CPU, sent (JSON POST, ` +
      `answer read and parsed) ${r3(floor.sentSpaced)} ms; back to back ${r3(floor.receivedBackToBack)} and ` +
      `${r3(floor.sentBackToBack)} ms. Floor = ${r2(x.received)} x ${r3(floor.receivedSpaced)} + ${r2(x.sent)} ` +
      `x ${r3(floor.sentSpaced)} = ${floorPerJob} ms per job before any work of the controller's own ` +
      `(framework, signature, parsing, store commits, planning, GC): ` +
      (floorPerJob >= CPU_PER_JOB_MS
        ? `above the ${CPU_PER_JOB_MS} ms target, which this machine cannot show; the measured ${cpuPerJob} ms is ` +
          `${r2(cpuPerJob / floorPerJob)} x this floor`
        : `below the ${CPU_PER_JOB_MS} ms target; the measured ${cpuPerJob} ms is ${r2(cpuPerJob / floorPerJob)} x ` +
          `this floor`);
    const perPhase =
      `intake (every webhook accepted, ${sec(b.phaseMs.intake)} s) ${r2(b.cpu.intake / BURST_JOBS)} ms/job; ` +
      `paced creation (to the last create call, ${sec(b.phaseMs.create)} s) ${r2(b.cpu.create / BURST_JOBS)} ms/job; ` +
      `drain (jobs run, runners removed, ${sec(b.phaseMs.drain)} s) ${r2(b.cpu.drain / BURST_JOBS)} ms/job; ` +
      `store writes (transactions, each a WAL commit): ${r2(b.storeWrites / BURST_JOBS)} a job`;
    const list = (xs: readonly { where: string; selfPct: number }[], n: number) =>
      xs
        .slice(0, n)
        .map((e) => `${e.where} ${e.selfPct}%`)
        .join('; ');
    const profiledPerJob = (pct: number) => r2((b.profile.busyMs * pct) / 100 / PROFILED_JOBS);
    const activities = b.profile.activities
      .map((a) => `${a.where} ${profiledPerJob(a.selfPct)} ms/job (${a.selfPct}%)`)
      .join('; ');
    const top =
      `main thread busy ${b.profile.busyMs} ms for ${PROFILED_JOBS} jobs (${r2(b.profile.busyMs / PROFILED_JOBS)} ` +
      `ms/job, idle ${b.profile.idlePct}% of samples) over ${sec(b.profile.wallMs)} s, the background work at ` +
      `rest included (about ${Math.round((b.cpu.idlePerS * b.profile.wallMs) / 1000)} ms at the idle rate); by ` +
      `activity (bench/profile.ts ACTIVITIES, first rule matching the call stack): ${activities}; shares of the ` +
      `busy samples - by module: ` +
      `${list(b.profile.modules, 8)}; including callees: ${list(b.profile.inclusive, 10)}; self time: ` +
      `${list(b.profile.entries, 8)}`;
    log(`cpu: ${perPhase}; idle rate taken off ${r2(b.cpu.idlePerS)} ms/s`);
    log(
      `profile (self time, share of all samples; idle ${b.profile.idlePct}%, GC ${b.profile.gcPct}%): ${top}`,
    );
    const results: BenchResult[] = [
      {
        name: 'controller.burst.last-create',
        value: sec(b.lastCreateMs),
        unit: 's',
        target: `<= ${RATIO_TARGET} x the floor (${sec(FLOOR_MS)} s)`,
        pass: ratio <= RATIO_TARGET,
        notes:
          `${BURST_JOBS} jobs queued at once (webhooks arriving over ${Math.round(b.arrivalMs)} ms), max ` +
          `${BURST_JOBS}, ${LIMIT_PER_MINUTE} runner-creating POSTs a minute allowed: from the first accepted ` +
          `webhook to the last provider create call. Pacing wait p99 (runner_fleet_pacing_wait_seconds) <= ` +
          `${b.pacingWaitP99} s. Webhook to create call p50 ${q(b.latencies, 50)} ms, p99 ${q(b.latencies, 99)} ms. ` +
          `Per runner: ${breakdown}`,
      },
      {
        name: 'controller.burst.ratio-to-floor',
        value: ratio,
        unit: 'x',
        target: `<= ${RATIO_TARGET}`,
        pass: ratio <= RATIO_TARGET,
        notes:
          `floor: ${BURST_JOBS} / ${LIMIT_PER_MINUTE} a minute = ${sec(FLOOR_MS)} s. Each create holds a place in ` +
          `a window of ${LIMIT_PER_MINUTE - 2} from its grant until a minute after its call completes (half of ` +
          `it at once, the rest refilled over half a minute), so no minute of arrivals at GitHub holds more than ` +
          `${LIMIT_PER_MINUTE}`,
      },
      {
        name: 'controller.burst.secondary-refusals',
        value: b.refusals.secondaryRefusals,
        unit: 'refusals',
        target: '0',
        pass: b.refusals.secondaryRefusals === 0,
        notes: `/_sim/stats rateLimit after the run: primary ${b.refusals.primaryRefusals}, secondary ${b.refusals.secondaryRefusals}`,
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
        name: 'controller.cpu-per-job',
        value: cpuPerJob,
        unit: 'ms',
        target: `<= ${CPU_PER_JOB_MS} ms`,
        pass: cpuPerJob <= CPU_PER_JOB_MS,
        notes:
          `controller CPU (this process: controller and the bench's timing hooks; the simulator in its own ` +
          `process) from the burst to the last runner removed, less the idle rate before it ` +
          `(${r2(b.cpu.idlePerS)} ms/s), over ${BURST_JOBS} jobs: ${perPhase}. CPU profile of a second burst of ` +
          `${PROFILED_JOBS} (bench/results/controller-burst.cpuprofile; the sampler sees blocking calls such as ` +
          `SQLite's writes and socket writes as busy too): ${top}; GC ${b.profile.gcPct}%. The floor on this ` +
          `machine: ${floorNotes}`,
      },
      {
        name: 'controller.cpu-per-job.http-floor',
        value: floorPerJob,
        unit: 'ms',
        notes: floorNotes,
      },
      {
        name: 'controller.webhook-to-create.single.p99',
        value: q(b.single, 99),
        unit: 'ms',
        target: `<= ${OVERHEAD_P99_MS} ms`,
        pass: q(b.single, 99) <= OVERHEAD_P99_MS,
        notes:
          `${SINGLE_JOBS} jobs one at a time (${SINGLE_GAP_MS} ms apart, under the budget's rate; from the 25th on, ` +
          `the earlier jobs' runners boot, run and are removed meanwhile), same controller, from the webhook ` +
          `persisted to the provider create call, generate-jitconfig included: ` +
          `p50 ${q(b.single, 50)} ms`,
      },
      terraformAwsBurst({
        name: 'terraform-aws-github-runner.burst.last-create (computed from its documentation)',
        jobs: BURST_JOBS,
        perMinute: LIMIT_PER_MINUTE,
        measuredCallsPerJob: perJob,
      }),
    ];
    return results;
  },
};
