/**
 * Memory of `runner-fleet start` as shipped, under its own default settings (no NODE_OPTIONS: the heap limit is the
 * one `start` sets for itself, src/cli/heap-limit.ts), against the simulator in its own process at GitHub's default
 * limits.
 *
 * 1. 10,000 runners: at 180 runner-creating POSTs a minute per installation, one installation needs 56 minutes to
 *    create 10,000 runners, so the fleet is what a large enterprise runs: 56 organizations (one App installation
 *    each, each with its own budget), a scale set per organization with max 179, 179 queued jobs in each. Instances
 *    boot after 10 minutes, so the runners stay registered and starting while the simulator is spared 10,024
 *    emulated runners; the controller holds the same records, observations and lists whatever state they are in.
 *    Resident memory (VmRSS of the controller process, the child `start` runs it in) is sampled from the moment
 *    every runner exists until two resyncs have listed them all; the waiting parent's is reported beside it.
 * 2. Soak: steady jobs (2 a second, 5 s each, under the budget) for SOAK_MINUTES (default 5; `SOAK_MINUTES=30 npm
 *    run bench -- memory` for the 30-minute soak), VmRSS sampled every 5 s; the slope of a least-squares line
 *    through the samples after the warm-up (the first minute, or the first 5 of a soak of 15 minutes or more: V8
 *    sizes its heap to the steady load over the first minutes), in MB per hour. The slope from the first minute on,
 *    the one over the second half and the lowest sample of each 10 minutes (the sawtooth's lows) are reported
 *    beside it. Once a minute the controller's live heap (what is left after a full collection, bench/live-heap.ts)
 *    is asked for too: its slope is the leak measure, free of V8's sizing of its generations.
 *
 * The controller's CPU time (user + system, /proc) is reported with each, so a memory setting's cost in CPU shows.
 */
import { spawn } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { stringify } from 'yaml';
import { freePort } from '../test/support/free-port.js';
import type { BenchResult, Benchmark } from './harness.js';
import { GITHUB_DEFAULT_LIMITS } from './harness.js';
import { CLI, SimProcess, benchFleet, controllerPid, rssBytes, waitFor } from './fleet-peers.js';
import { LiveHeap } from './live-heap.js';

const ORGS = 56;
const PER_ORG = 179;
const RUNNERS = ORGS * PER_ORG;
const RSS_LIMIT_MB = 200;
const SOAK_MINUTES = Number(process.env.SOAK_MINUTES ?? 5);
const SOAK_RATE_PER_S = 2;
const SLOPE_LIMIT_MB_PER_HOUR = 5;
const LABELS = ['self-hosted', 'linux', 'bench'];

const WARMUP_MINUTES = SOAK_MINUTES >= 15 ? 5 : 1;
/** Windows for the lows of the sawtooth: longer than the 8 to 10 minutes between its teeth seen at this load. */
const LOWS_WINDOW_MINUTES = SOAK_MINUTES >= 30 ? 10 : 2;

const mb = (bytes: number): number => Math.round((bytes / 2 ** 20) * 10) / 10;

/** CPU seconds (user + system) the process has used, from /proc. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/**
 * The lowest sample in each `windowMinutes` after `fromMinute`: resident memory of a collected runtime is a sawtooth
 * (V8 lets its young and old generations grow between full collections and gives pages back at one), so a leak shows
 * as rising lows, where a least-squares line through a few teeth also follows their phase.
 */
function lows(
  samples: readonly { t: number; rss: number }[],
  fromMinute: number,
  windowMinutes: number,
): number[] {
  const out: number[] = [];
  for (const s of samples) {
    const minute = s.t * 60;
    if (minute < fromMinute) continue;
    const i = Math.floor((minute - fromMinute) / windowMinutes);
    out[i] = Math.min(out[i] ?? Infinity, s.rss);
  }
  return out.filter((v) => Number.isFinite(v));
}

/** Least-squares slope (MB per hour) of the samples from `fromMinute` on. */
function slopeFrom(samples: readonly { t: number; rss: number }[], fromMinute: number): number {
  const fit = samples.filter((s) => s.t * 60 >= fromMinute);
  const n = fit.length;
  const mt = fit.reduce((a, s) => a + s.t, 0) / n;
  const mr = fit.reduce((a, s) => a + s.rss, 0) / n;
  const slope =
    fit.reduce((a, s) => a + (s.t - mt) * (s.rss - mr), 0) / fit.reduce((a, s) => a + (s.t - mt) ** 2, 0);
  return Math.round(slope * 10) / 10;
}

/** Resident memory by kind, MB, right after a full collection: what grows, when resident memory grows. */
interface ResidentParts {
  /** Anonymous pages (RssAnon): the V8 heaps, malloc, thread stacks. */
  readonly anon: number;
  /** File-backed pages (RssFile): the node binary and libraries as far as they were paged in. */
  readonly file: number;
  /** The main isolate's heap as V8 reserves it (heapTotal), and its used part after the collection. */
  readonly heapTotal: number;
  readonly heapUsed: number;
  /** Memory V8 knows of outside its heap: buffers and array buffers (external). */
  readonly external: number;
  /** Anonymous memory neither heap nor external: malloc (SQLite, zlib, the HTTP parser), worker isolates, stacks. */
  readonly otherAnon: number;
}

function residentParts(pid: number, usage: NodeJS.MemoryUsage): ResidentParts {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) =>
    Number(new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(status)?.[1] ?? NaN) * 1024;
  const anon = kb('RssAnon');
  return {
    anon: mb(anon),
    file: mb(kb('RssFile')),
    heapTotal: mb(usage.heapTotal),
    heapUsed: mb(usage.heapUsed),
    external: mb(usage.external),
    otherAnon: mb(anon - usage.heapTotal - usage.external),
  };
}

/** Each part's value at the first sample after `fromMinute` and at the last, as "name a -> b MB". */
function partsChange(samples: readonly { t: number; parts: ResidentParts }[], fromMinute: number): string {
  const fit = samples.filter((s) => s.t * 60 >= fromMinute);
  const first = fit[0]?.parts;
  const last = fit[fit.length - 1]?.parts;
  if (first === undefined || last === undefined) return 'no samples';
  return (Object.keys(first) as (keyof ResidentParts)[])
    .map((k) => `${k} ${first[k]} -> ${last[k]}`)
    .join(', ');
}

interface Started {
  readonly url: string;
  readonly parent: number;
  readonly controller: () => number;
  stop(): Promise<void>;
}

function startCli(configPath: string, port: number): Started {
  const child = spawn(process.execPath, [CLI, 'start', '--config', configPath, '--log-level', 'warn'], {
    stdio: ['ignore', 'ignore', 'inherit'],
    // The process's own default settings: no NODE_OPTIONS.
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  return {
    url: `http://127.0.0.1:${port}`,
    parent: child.pid!,
    controller: () => controllerPid(child.pid!),
    async stop() {
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 30_000);
      await exited;
      clearTimeout(t);
    },
  };
}

async function api<T>(url: string): Promise<T | null> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(30_000) });
    return res.ok ? ((await res.json()) as T) : null;
  } catch {
    return null;
  }
}

type Sets = {
  scaleSets: {
    runners: Record<string, number>;
    githubListedAt: number | null;
    instancesListedAt: number | null;
  }[];
};

async function tenThousand(log: (line: string) => void) {
  const orgs = Array.from({ length: ORGS }, (_, i) => `org-${String(i + 1).padStart(2, '0')}`);
  const sim = await SimProcess.start([...orgs.flatMap((o) => ['--org', o]), '--jit-expiry-ms', '3600000']);
  const port = await freePort();
  const fleet = benchFleet(sim.info, { name: 'mem', max: PER_ORG, port, bootDelay: '10m' });
  const doc = JSON.parse(JSON.stringify((await import('yaml')).parse(fleet.yaml))) as {
    scaleSets: Record<string, unknown>[];
  };
  const template = doc.scaleSets[0]!;
  doc.scaleSets = orgs.map((org) => ({ ...template, name: `mem-${org}`, scope: { org } }));
  writeFileSync(fleet.configPath, stringify(doc));
  const cli = startCli(fleet.configPath, port);
  let peak = 0;
  let parentPeak = 0;
  const sample = () => {
    try {
      peak = Math.max(peak, rssBytes(cli.controller()));
      parentPeak = cli.controller() === cli.parent ? 0 : Math.max(parentPeak, rssBytes(cli.parent));
    } catch {
      // exited
    }
  };
  const sampler = setInterval(sample, 250);
  const live = (s: Sets | null): number =>
    (s?.scaleSets ?? []).reduce(
      (n, x) => n + (x.runners.starting ?? 0) + (x.runners.idle ?? 0) + (x.runners.busy ?? 0),
      0,
    );
  try {
    await waitFor(
      'the controller to be ready',
      async () => (await api(`${cli.url}/readyz`)) !== null,
      60_000,
    );
    await sim.setWebhook(`${cli.url}/webhook`);
    const started = Date.now();
    for (const org of orgs) {
      await sim.createJobs({ owner: org, repo: 'app', labels: LABELS, count: PER_ORG, durationMs: 600_000 });
    }
    let tracked = 0;
    await waitFor(
      `${RUNNERS} runners`,
      async () => {
        tracked = live(await api<Sets>(`${cli.url}/api/v1/scale-sets`));
        return tracked >= RUNNERS;
      },
      900_000,
      2000,
    );
    const createdMs = Date.now() - started;
    const createdCpu = cpuSeconds(cli.controller());
    log(`memory: ${tracked} runners after ${createdMs} ms, controller RSS so far ${mb(peak)} MB`);
    const reached = Date.now();
    const creationPeak = peak;
    peak = 0;
    let resyncs = 0;
    let lastListed = 0;
    await waitFor(
      'two resyncs with every runner listed',
      async () => {
        const s = await api<Sets>(`${cli.url}/api/v1/scale-sets`);
        if (s === null) return false;
        tracked = live(s);
        const listed = Math.min(
          ...s.scaleSets.map((x) => Math.min(x.githubListedAt ?? 0, x.instancesListedAt ?? 0)),
        );
        if (listed > reached && listed !== lastListed) {
          lastListed = listed;
          resyncs++;
        }
        return resyncs >= 2;
      },
      240_000,
      1000,
    );
    const trackingCpu = cpuSeconds(cli.controller()) - createdCpu;
    const trackingS = (Date.now() - reached) / 1000;
    const stats = await sim.stats();
    return {
      createdCpu,
      trackingCpu,
      trackingS,
      trackingMb: mb(peak),
      creationMb: mb(creationPeak),
      parentMb: mb(parentPeak),
      tracked,
      resyncs,
      createdMs,
      refusals: stats.rateLimit,
      separate: cli.controller() !== cli.parent,
    };
  } finally {
    clearInterval(sampler);
    await cli.stop();
    await sim.stop();
    rmSync(fleet.dir, { recursive: true, force: true });
  }
}

async function soak(log: (line: string) => void) {
  const sim = await SimProcess.start([]);
  const port = await freePort();
  const fleet = benchFleet(sim.info, { name: 'soak', max: 50, port, bootDelay: '1s' });
  const cli = startCli(fleet.configPath, port);
  const samples: { t: number; rss: number }[] = [];
  const heap: { t: number; rss: number }[] = [];
  const parts: { t: number; parts: ResidentParts }[] = [];
  let inspector: LiveHeap | undefined;
  let stopJobs = false;
  try {
    await waitFor(
      'the controller to be ready',
      async () => (await api(`${cli.url}/readyz`)) !== null,
      60_000,
    );
    await sim.setWebhook(`${cli.url}/webhook`);
    inspector = await LiveHeap.attach(cli.controller());
    const started = Date.now();
    const cpuAtStart = cpuSeconds(cli.controller());
    const feeder = (async () => {
      while (!stopJobs) {
        await sim.createJobs({ owner: 'octo-org', repo: 'app', labels: LABELS, count: 1, durationMs: 5000 });
        await new Promise((r) => setTimeout(r, 1000 / SOAK_RATE_PER_S));
      }
    })();
    const end = started + SOAK_MINUTES * 60_000;
    let last = 0;
    while (Date.now() < end) {
      await new Promise((r) => setTimeout(r, 5000));
      try {
        samples.push({ t: (Date.now() - started) / 3_600_000, rss: mb(rssBytes(cli.controller())) });
      } catch {
        // exited
      }
      if (Date.now() - last > 60_000) {
        last = Date.now();
        const live = await inspector.measure();
        const t = (Date.now() - started) / 3_600_000;
        heap.push({ t, rss: mb(live.usedBytes) });
        parts.push({ t, parts: residentParts(cli.controller(), live.process) });
        log(
          `soak: ${Math.round((Date.now() - started) / 1000)} s, RSS ${samples[samples.length - 1]?.rss} MB, ` +
            `live heap ${heap[heap.length - 1]!.rss} MB; after it ${JSON.stringify(parts[parts.length - 1]!.parts)}`,
        );
      }
    }
    const cpu = cpuSeconds(cli.controller()) - cpuAtStart;
    stopJobs = true;
    await feeder;
    const stats = await sim.stats();
    const fit = samples.filter((s) => s.t * 60 >= WARMUP_MINUTES);
    const heapFit = heap.filter((s) => s.t * 60 >= WARMUP_MINUTES);
    return {
      heapSlope: slopeFrom(heap, WARMUP_MINUTES),
      heapFirst: heapFit[0]?.rss ?? NaN,
      heapLast: heapFit[heapFit.length - 1]?.rss ?? NaN,
      heapSamples: heap.length,
      parts: partsChange(parts, WARMUP_MINUTES),
      slope: slopeFrom(samples, WARMUP_MINUTES),
      slopeAfterFirstMinute: slopeFrom(samples, 1),
      slopeSecondHalf: slopeFrom(samples, SOAK_MINUTES / 2),
      lows: lows(samples, WARMUP_MINUTES, LOWS_WINDOW_MINUTES),
      cpu,
      first: fit[0]?.rss ?? NaN,
      last: fit[fit.length - 1]?.rss ?? NaN,
      max: Math.max(...samples.map((s) => s.rss)),
      jobs: stats.jobs.completed,
      calls: stats.apiCalls.total,
      refusals: stats.rateLimit,
    };
  } finally {
    stopJobs = true;
    inspector?.close();
    await cli.stop();
    await sim.stop();
    rmSync(fleet.dir, { recursive: true, force: true });
  }
}

export const benchmark: Benchmark = {
  id: 'memory',
  title: 'Controller memory under its own default settings: 10,000 runners, and a soak of steady jobs',
  limits: GITHUB_DEFAULT_LIMITS,
  async run(log) {
    const m = await tenThousand(log);
    log(`soak: ${SOAK_MINUTES} min of ${SOAK_RATE_PER_S} jobs a second`);
    const s = await soak(log);
    const results: BenchResult[] = [
      {
        name: 'memory.rss-10k-runners',
        value: m.trackingMb,
        unit: 'MB',
        target: `<= ${RSS_LIMIT_MB} MB`,
        pass: m.trackingMb <= RSS_LIMIT_MB && m.tracked >= RUNNERS,
        notes:
          `runner-fleet start with no NODE_OPTIONS (the 160 MiB heap limit it sets itself${m.separate ? ', in the child it runs the controller in' : ''}): ` +
          `${m.tracked} runners registered and their instances created over ${ORGS} organizations (installations), ` +
          `created in ${Math.round(m.createdMs / 1000)} s at 180 a minute each; largest controller VmRSS over ` +
          `${m.resyncs} full resyncs after that (${Math.round(m.trackingS)} s, ${m.trackingCpu.toFixed(1)} s of controller ` +
          `CPU). Largest while creating them: ${m.creationMb} MB (${m.createdCpu.toFixed(1)} s of CPU). The waiting ` +
          `parent process: ${m.parentMb} MB more. Refusals: primary ${m.refusals.primaryRefusals}, secondary ` +
          `${m.refusals.secondaryRefusals}`,
      },
      {
        name: 'memory.soak-slope',
        value: s.slope,
        unit: 'MB/h',
        target: `<= ${SLOPE_LIMIT_MB_PER_HOUR} MB/h`,
        pass: Math.abs(s.slope) <= SLOPE_LIMIT_MB_PER_HOUR,
        notes:
          `${SOAK_MINUTES}-minute soak (SOAK_MINUTES=${SOAK_MINUTES} npm run bench -- memory), ${SOAK_RATE_PER_S} jobs ` +
          `a second of 5 s each, ${s.jobs} completed with ${s.calls} GitHub calls; controller VmRSS every 5 s, ` +
          `least-squares slope after a warm-up of ${WARMUP_MINUTES} min; ${s.first} MB then, ${s.last} MB at the ` +
          `end, ${s.max} MB largest. Slope from the first minute on: ${s.slopeAfterFirstMinute} MB/h; over the ` +
          `second half: ${s.slopeSecondHalf} MB/h. Lowest VmRSS in each ${LOWS_WINDOW_MINUTES} minutes after the ` +
          `warm-up: ${s.lows.join(', ')} MB. Controller CPU: ${s.cpu.toFixed(1)} s ` +
          `(${s.jobs > 0 ? ((s.cpu * 1000) / s.jobs).toFixed(1) : '–'} ms a job). Refusals: primary ` +
          `${s.refusals.primaryRefusals}, secondary ${s.refusals.secondaryRefusals}`,
      },
      {
        name: 'memory.soak-live-heap-slope',
        value: s.heapSlope,
        unit: 'MB/h',
        target: `<= ${SLOPE_LIMIT_MB_PER_HOUR} MB/h`,
        pass: Math.abs(s.heapSlope) <= SLOPE_LIMIT_MB_PER_HOUR,
        notes:
          `the same soak: the controller's JavaScript heap left after a full collection, asked for once a minute ` +
          `through its inspector (SIGUSR1, HeapProfiler.collectGarbage, Runtime.getHeapUsage; bench/live-heap.ts), ` +
          `${s.heapSamples} samples; least-squares slope after the warm-up: ${s.heapFirst} MB then, ${s.heapLast} MB ` +
          `at the end. Resident memory by kind after those collections, then and at the end (MB): ${s.parts}. ` +
          `What a leak grows; the resident slope above also follows V8 sizing its generations. These ` +
          `collections are the measurement's (one a minute), not the product's, and the resident samples include them`,
      },
    ];
    return results;
  },
};
