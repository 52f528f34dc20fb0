/**
 * Shared pieces of the end-to-end suites: a recording simulator with captured logs, the three-scale-set fleet.yaml
 * pointed at it, condition waits with deadlines, and the leak census (simulator runners and instances, process
 * instances on disk and live runner processes).
 */
import { mkdtempSync, readdirSync, readlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pino } from 'pino';
import { stringify } from 'yaml';
import { expect } from 'vitest';
import { isRunnerOf } from '../../src/core/names.js';
import type { ScaleSetView } from '../../src/core/read-models.js';
import { ProcessProvider } from '../../src/providers/process/index.js';
import { processProviderSchema } from '../../src/providers/process/schema.js';
import type { SimRunnerView, Simulator, SimulatorOptions } from '../../src/sim/github/index.js';
import type { InstanceView } from '../../src/sim/github/index.js';
import { freePort } from '../support/free-port.js';
import { LogSink } from '../support/log-sink.js';
import {
  jitRegistrations,
  runnersThatRan,
  simulatorCredentials,
  startFleetSimulator,
} from '../support/sim-fleet.js';
import { untilEvery } from '../support/until.js';

export { freePort, jitRegistrations, LogSink, runnersThatRan };

/** Polls every 50 ms: the checks here read the in-process simulator and store, which costs little. */
export const until = untilEvery(50);

export const REPO_ROOT = resolve(import.meta.dirname, '../..');
export const CLI = join(REPO_ROOT, 'dist/cli/main.js');
export const TEE_RUNNER = join(import.meta.dirname, 'fixtures/tee-runner.sh');
export const FLEET = 'e2e';

export interface E2eSimulator {
  readonly sim: Simulator;
  /** The simulator's own log lines (it is `runner-fleet simulate` in production: its logs count too). */
  readonly logs: LogSink;
}

/** A simulator that records every REST exchange (the secrets it issued are read from them). */
export async function startE2eSimulator(options: SimulatorOptions = {}): Promise<E2eSimulator> {
  const logs = new LogSink();
  const sim = await startFleetSimulator({ logger: pino({ level: 'debug' }, logs), ...options });
  return { sim, logs };
}

export interface ScaleSetShape {
  readonly name: string;
  readonly max: number;
  readonly minIdle: number;
  readonly ephemeral: boolean;
  readonly provider: 'process' | 'sim';
}

export interface FleetFiles {
  readonly dir: string;
  readonly configPath: string;
  readonly storePath: string;
  /** Parent of the process provider's per-runner directories. */
  readonly workDir: string;
  /** Where every process runner's output is copied (see fixtures/tee-runner.sh). */
  readonly runnerLog: string;
  readonly scaleSets: readonly ScaleSetShape[];
}

/**
 * The three scale sets of the end-to-end suites, covering org and repo scope, jit and token registration, ephemeral
 * and persistent runners, process and sim providers.
 */
export const STANDARD_SETS = [
  { name: 'proc', max: 4, minIdle: 0, ephemeral: true, provider: 'process' },
  { name: 'cloud', max: 25, minIdle: 0, ephemeral: true, provider: 'sim' },
  { name: 'persist', max: 4, minIdle: 1, ephemeral: false, provider: 'sim' },
] as const satisfies readonly ScaleSetShape[];

/** Labels per scale set; the workload (workload.ts) draws job labels from subsets of these. */
const LABELS: Record<(typeof STANDARD_SETS)[number]['name'], string[]> = {
  proc: ['linux', 'x64', 'proc'],
  cloud: ['linux', 'x64', 'cloud'],
  persist: ['linux', 'persistent'],
};

/**
 * Writes fleet.yaml (and the App key and webhook secret beside it, 0600, read through `${file:...}`) into a fresh
 * temporary directory. `port` 0 lets the OS choose (in-process runs read the URL from `start()`).
 */
export function writeFleetConfig(
  sim: Simulator,
  options: { port?: number; resyncInterval?: string; orphanGracePeriod?: string } = {},
): FleetFiles {
  const dir = mkdtempSync(join(tmpdir(), 'runner-fleet-e2e-'));
  const credentials = simulatorCredentials(sim, dir);
  const workDir = join(dir, 'runners');
  const runnerLog = join(dir, 'runner-output.log');
  const storePath = join(dir, 'fleet.db');
  const doc = {
    name: FLEET,
    ...credentials,
    server: { host: '127.0.0.1', port: options.port ?? 0 },
    store: { path: storePath },
    controller: {
      // Short: missed webhooks are repaired by resyncs and job status checks, and the tests wait for that.
      resyncInterval: options.resyncInterval ?? '2s',
      orphanGracePeriod: options.orphanGracePeriod ?? '10s',
      failureBackoff: '1s',
    },
    scaleSets: STANDARD_SETS.map((set) => ({
      name: set.name,
      scope: set.name === 'persist' ? { repo: 'octo-org/app' } : { org: 'octo-org' },
      labels: LABELS[set.name],
      minIdle: set.minIdle,
      max: set.max,
      ephemeral: set.ephemeral,
      registration: set.ephemeral ? 'jit' : 'token',
      bootstrapTimeout: '60s',
      idleTimeout: '3s',
      provider:
        set.provider === 'sim'
          ? { kind: 'sim', bootDelay: set.ephemeral ? '100ms' : '50ms' }
          : {
              kind: 'process',
              command: 'bash',
              args: [TEE_RUNNER],
              workDir,
              stopGracePeriod: '3s',
              env: {
                RF_E2E_NODE: process.execPath,
                RF_E2E_CLI: CLI,
                RF_E2E_RUNNER_LOG: runnerLog,
                // A runner orphaned by a failed test gives up on a vanished simulator within seconds.
                RUNNER_FLEET_EMULATOR_RETRY_MS: '10000',
              },
            },
    })),
  };
  const configPath = join(dir, 'fleet.yaml');
  writeFileSync(configPath, stringify(doc));
  return { dir, configPath, storePath, workDir, runnerLog, scaleSets: STANDARD_SETS };
}

export interface Leftovers {
  /** Registrations in the simulator named by one of our scale sets. */
  readonly runners: readonly SimRunnerView[];
  /** Simulated-cloud instances tagged with our fleet. */
  readonly instances: readonly InstanceView[];
  /** Process provider instances (records on disk). */
  readonly processInstances: readonly string[];
  /** Live OS processes whose working directory is under the process provider's work directory. */
  readonly processPids: readonly number[];
}

/** Everything of this fleet that still exists anywhere. */
export async function leftovers(sim: Simulator, files: FleetFiles): Promise<Leftovers> {
  const names = files.scaleSets.map((s) => s.name);
  const runners = sim.runners().filter((r) => names.some((s) => isRunnerOf(s, r.name)));
  const instances = sim.instances({ fleet: FLEET });
  const provider = new ProcessProvider(
    processProviderSchema.parse({ kind: 'process', command: 'bash', workDir: files.workDir }),
    {
      fleet: FLEET,
      scaleSet: { name: 'proc' } as never,
      logger: pino({ level: 'silent' }),
    },
  );
  const processInstances = (await provider.list({ fleet: FLEET }, AbortSignal.timeout(10_000))).map(
    (i) => i.name,
  );
  await provider.close?.();
  return { runners, instances, processInstances, processPids: pidsUnder(files.workDir) };
}

/** Processes whose current directory is inside `dir` (runner processes run in their instance directory). */
export function pidsUnder(dir: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cwd = readlinkSync(`/proc/${entry}/cwd`);
      if (cwd === dir || cwd.startsWith(`${dir}/`)) pids.push(Number(entry));
    } catch {
      // gone, or not ours to read
    }
  }
  return pids;
}

/** Waits until nothing of the fleet is left but the persistent sets' `minIdle` runners; returns that last census. */
export async function untilClean(sim: Simulator, files: FleetFiles, timeoutMs: number): Promise<Leftovers> {
  let left = await leftovers(sim, files);
  await until(
    async () => isClean((left = await leftovers(sim, files)), files),
    timeoutMs,
    'every runner and instance removed (persistent set at minIdle)',
    () => summarize(left),
  );
  return left;
}

/** Summary of leftovers for assertions and messages: names only, never anything secret. */
export function summarize(l: Leftovers): Record<string, unknown> {
  return {
    runners: l.runners.map((r) => `${r.name}:${r.status}${r.busy ? ':busy' : ''}`),
    instances: l.instances.map((i) => `${i.name}:${i.state}`),
    processInstances: l.processInstances,
    processPids: l.processPids,
  };
}

/** Nothing left but the persistent scale sets' `minIdle` runners (registered, online, idle, hosted). */
export function isClean(l: Leftovers, files: FleetFiles): boolean {
  for (const set of files.scaleSets) {
    const keep = set.ephemeral ? 0 : set.minIdle;
    const runners = l.runners.filter((r) => isRunnerOf(set.name, r.name));
    const instances = l.instances.filter((i) => i.tags.scaleSet === set.name);
    if (runners.length !== keep || instances.length !== (set.provider === 'sim' ? keep : 0)) return false;
    if (runners.some((r) => r.status !== 'online' || r.busy)) return false;
    if (instances.some((i) => i.state !== 'running')) return false;
    if (!runners.every((r) => instances.some((i) => i.name === r.name) || set.provider !== 'sim'))
      return false;
  }
  return l.processInstances.length === 0 && l.processPids.length === 0;
}

/** Asserts isClean, and names any process instance or runner process left (isClean only says there is one). */
export function expectClean(left: Leftovers, files: FleetFiles): void {
  expect(isClean(left, files), JSON.stringify(summarize(left))).toBe(true);
  expect(left.processInstances).toEqual([]);
  expect(left.processPids).toEqual([]);
}

/** A simple in-memory counter of the largest value seen per key. */
export class MaxTracker {
  readonly max = new Map<string, number>();
  samples = 0;

  see(key: string, value: number): void {
    if (value > (this.max.get(key) ?? 0)) this.max.set(key, value);
  }

  get(key: string): number {
    return this.max.get(key) ?? 0;
  }
}

/** Counts what exists per scale set on the simulator's side and on disk right now, into `tracker`. */
export function sampleWorld(sim: Simulator, files: FleetFiles, tracker: MaxTracker): void {
  tracker.samples++;
  const runners = sim.runners();
  const instances = sim.instances({ fleet: FLEET });
  for (const set of files.scaleSets) {
    tracker.see(`sim-runners:${set.name}`, runners.filter((r) => isRunnerOf(set.name, r.name)).length);
    tracker.see(`sim-instances:${set.name}`, instances.filter((i) => i.tags.scaleSet === set.name).length);
  }
  let dirs: string[] = [];
  try {
    dirs = readdirSync(files.workDir).filter((d) => !d.startsWith('.'));
  } catch {
    // not created yet
  }
  tracker.see('process-instances:proc', dirs.length);
}

/** Runner records of a scale set in any state but deleted, as the controller's API reports them. */
export function liveRunners(view: Pick<ScaleSetView, 'runners'>): number {
  return Object.values(view.runners).reduce((a, b) => a + b, 0);
}

/** Counts each scale set's live runners as the controller's API reports them, into `tracker`. */
export function sampleApi(tracker: MaxTracker, views: readonly ScaleSetView[]): void {
  for (const s of views) tracker.see(`api:${s.name}`, liveRunners(s));
}

/**
 * Asserts that no count of `set`'s runners ever went past its max: `fromStore` (the controller's own count, however
 * the suite took it) and every live sample of the API, the simulator's runners and instances and the process
 * instances on disk. Returns them by where they were seen.
 */
export function expectAtMostMax(
  tracker: MaxTracker,
  set: ScaleSetShape,
  fromStore: Record<string, number>,
): Record<string, number> {
  const seen = {
    ...fromStore,
    api: tracker.get(`api:${set.name}`),
    simRunners: tracker.get(`sim-runners:${set.name}`),
    simInstances: tracker.get(`sim-instances:${set.name}`),
    processes: set.provider === 'process' ? tracker.get(`process-instances:${set.name}`) : 0,
  };
  for (const [where, n] of Object.entries(seen)) {
    expect(n, `${set.name}: most runners seen in ${where}`).toBeLessThanOrEqual(set.max);
  }
  return seen;
}

/** Runs a suite's cleanup steps in order, each even when one before it failed, and empties the list. */
export async function runCleanup(steps: (() => Promise<void>)[]): Promise<void> {
  for (const step of steps.splice(0)) await step().catch(() => undefined);
}

/** The suite's run, for a test; fails the test when beforeAll did not finish the run. */
export function finished<T>(run: T | undefined, what: string): T {
  if (run === undefined) throw new Error(`${what} did not finish (see beforeAll)`);
  return run;
}
