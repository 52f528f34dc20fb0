/**
 * `runner-fleet demo` end to end, in one process: the GitHub simulator, a controller built from a FleetConfig
 * exactly as `start` builds one (with the dashboard), and a workload. It waits for every routable job to complete,
 * then for the drain (ephemeral runners gone, persistent sets back to minIdle), measures leaks, and tears everything
 * down: controller, simulator, and every runner process.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FleetConfig } from '../core/fleet-config.js';
import { scaleSetOf } from '../core/names.js';
import { sleepUnlessAborted } from '../lib/async.js';
import { kubernetesRunners } from '../providers/kubernetes/rbac-needs.js';
import type { Provider } from '../providers/provider.js';
import type { ReadModel } from '../server/read-model.js';
import { startSimulator } from '../sim/github/index.js';
import type { Simulator } from '../sim/github/index.js';
import type { Logger } from '../telemetry/logger.js';
import type { Ec2Census } from './ec2.js';
import { builtInScaleSets, demoConfig, readUserFleet, simulatorWorld, workloadTargets } from './fleet.js';
import type { DemoConfig, DemoEc2World } from './fleet.js';
import type { ProgressFrame, SetProgress } from './progress.js';
import { summarize } from './summary.js';
import type { DemoSummary } from './summary.js';
import { planWorkload, runWorkload } from './workload.js';
import type { WorkloadRun } from './workload.js';

/** What the demo needs of a running controller (see controller.ts for the one `start` builds). */
export interface DemoController {
  /** Base URL of the controller's HTTP server (webhook, API, dashboard). */
  readonly url: string;
  readonly readModel: ReadModel;
  /** The provider of each scale set, by scale set name. */
  readonly providers: ReadonlyMap<string, Provider>;
  /** The controller's own count of its GitHub calls by HTTP status (to see rate-limit refusals). */
  apiCallsByStatus?(): Readonly<Record<string, number>>;
  stop(): Promise<void>;
}

export interface ControllerFactoryInput {
  readonly config: FleetConfig;
  readonly logger: Logger;
  /** Secret values to scrub from logs and the dashboard. */
  readonly secrets: readonly string[];
}

export type ControllerFactory = (input: ControllerFactoryInput) => Promise<DemoController>;

export interface DemoOptions {
  readonly jobs: number;
  /** Span of the workload's trickle, ms. */
  readonly durationMs: number;
  /** A fleet.yaml to run instead of the built-in scale sets. */
  readonly configPath?: string;
  /** Controller port; 0 picks a free one. */
  readonly port: number;
  readonly controllerFactory: ControllerFactory;
  /** Builds the logger (controller, simulator) writing to `file`. */
  readonly createLogger: (
    file: string,
    secrets: readonly string[],
  ) => { logger: Logger; close(): Promise<void> };
  /** Environment for references left in a user's fleet.yaml. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** dist/cli/main.js (its emulate-runner command is the process provider's runner). */
  readonly cliPath?: string;
  readonly signal?: AbortSignal;
  /** Told the dashboard URL as soon as the controller listens. */
  readonly onReady?: (info: { url: string; dir: string; logFile: string; notes: readonly string[] }) => void;
  readonly onProgress?: (frame: ProgressFrame) => void;
  /** Progress sample period; default 250 ms. */
  readonly tickMs?: number;
  /** Longest wait for the last jobs after the workload; default 60 s. */
  readonly completionTimeoutMs?: number;
  /** Longest wait for the drain; default 45 s. */
  readonly drainTimeoutMs?: number;
  /** Keep serving after the summary until this resolves (`--keep`). */
  readonly keepUntil?: (info: { url: string; summary: DemoSummary }) => Promise<void>;
  /**
   * `--provider kubernetes`: the fleet's kubernetes scale sets run on a cluster (the built-in ones as pods in
   * `namespace`), and `startRunners` runs the runners of their pods (the kwok bridge); it returns how to stop them.
   */
  readonly kubernetes?: {
    readonly namespace: string;
    readonly startRunners: (fleet: string, namespaces: readonly string[]) => Promise<() => Promise<void>>;
  };
  /**
   * `--provider ec2`: the fleet's ec2 scale sets launch instances in an AWS endpoint such as moto (the built-in
   * sets, or the user's with their launch settings pointed at `world`), `startRunners` plays their machines (the EC2
   * bridge) and `census` reads what of the fleet is left there. The demo fails unless, at the end, no instance of
   * the fleet is pending or running and no runner parameter is left.
   */
  readonly ec2?: {
    readonly world: DemoEc2World;
    readonly startRunners: (fleet: string) => Promise<() => Promise<void>>;
    readonly census: (config: FleetConfig, since: number) => Promise<Ec2Census>;
    /** The controller's EC2 and SSM calls so far, by operation. */
    readonly awsCalls?: () => Readonly<Record<string, number>>;
    /** What the machines printed, written beside the controller log when the demo fails. */
    readonly machineOutput?: () => string;
  };
  /** Keep the temporary directory (logs, store) even when the demo succeeds. */
  readonly keepFiles?: boolean;
  /** For tests: simulator options (e.g. recordExchanges) and a look at the parts while they run. */
  readonly simulatorOptions?: Parameters<typeof startSimulator>[0];
  readonly onParts?: (parts: {
    simulator: Simulator;
    controller: DemoController;
    config: DemoConfig;
  }) => void;
}

export interface DemoResult {
  readonly summary: DemoSummary;
  readonly url: string;
  /** The temporary directory, when it was kept. */
  readonly dir: string | null;
  readonly logFile: string;
  readonly interrupted: boolean;
}

export class DemoError extends Error {
  override readonly name = 'DemoError';
  readonly code: string;
  constructor(message: string, code: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/** dist/cli/main.js next to this module when built, or the repository's build when running from source. */
export function defaultCliPath(): string {
  const sibling = fileURLToPath(new URL('../cli/main.js', import.meta.url));
  if (existsSync(sibling)) return sibling;
  return fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
}

const sleep = sleepUnlessAborted;

interface Leaks {
  readonly runners: number;
  readonly instances: number;
  readonly details: string[];
}

/** What remains beyond each scale set's minIdle: runner registrations (GitHub) and instances (cloud, processes). */
async function measureLeaks(config: FleetConfig, sim: Simulator, controller: DemoController): Promise<Leaks> {
  const names = config.scaleSets.map((s) => s.name);
  const minIdle = new Map(config.scaleSets.map((s) => [s.name, s.minIdle]));
  const details: string[] = [];
  const count = (items: readonly string[], what: string): number => {
    const bySet = new Map<string, string[]>();
    let leaked = 0;
    for (const name of items) {
      const set = scaleSetOf(name, names);
      if (set === null) {
        leaked++;
        details.push(`${what} ${name} belongs to no scale set`);
        continue;
      }
      bySet.set(set, [...(bySet.get(set) ?? []), name]);
    }
    for (const [set, list] of bySet) {
      const extra = list.length - (minIdle.get(set) ?? 0);
      if (extra > 0) {
        leaked += extra;
        details.push(
          `${set}: ${list.length} ${what}(s) left, minIdle ${minIdle.get(set)}: ${list.join(', ')}`,
        );
      }
    }
    return leaked;
  };
  const runners = count(
    sim.runners().map((r) => r.name),
    'runner',
  );
  const instanceNames = sim.instances({ fleet: config.name }).map((i) => i.name);
  const signal = AbortSignal.timeout(10_000);
  for (const set of config.scaleSets) {
    if (set.provider.kind === 'sim') continue;
    const provider = controller.providers.get(set.name);
    if (!provider) continue;
    const listed = await provider.list({ fleet: config.name, scaleSet: set.name }, signal);
    instanceNames.push(
      ...listed.filter((i) => i.state === 'pending' || i.state === 'running').map((i) => i.name),
    );
  }
  return { runners, instances: count(instanceNames, 'instance'), details };
}

/** Kills every runner process the demo's process providers still have (the simulator takes its instances along). */
async function removeProcessRunners(config: FleetConfig, controller: DemoController): Promise<void> {
  const signal = AbortSignal.timeout(15_000);
  await Promise.all(
    config.scaleSets
      .filter((s) => s.provider.kind === 'process')
      .map(async (set) => {
        const provider = controller.providers.get(set.name);
        if (!provider) return;
        const listed = await provider
          .list({ fleet: config.name, scaleSet: set.name }, signal)
          .catch(() => []);
        await Promise.all(listed.map((i) => provider.delete(i.name, signal).catch(() => undefined)));
      }),
  );
}

/**
 * Closes the simulator once no instance is still in its boot delay: stopping one there leaves the simulator's close
 * waiting for a runner that never started. Bounded, so a stuck close cannot hold the demo.
 */
async function closeSimulator(sim: Simulator): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (Date.now() < deadline && sim.instances().some((i) => i.state === 'pending')) await sleep(50);
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    sim.close().catch(() => undefined),
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, 10_000);
    }),
  ]);
  clearTimeout(timer);
}

export async function runDemo(options: DemoOptions): Promise<DemoResult> {
  const started = Date.now();
  const signal = options.signal;
  const fleet = options.configPath ? readUserFleet(options.configPath, options.env ?? {}) : null;
  const dir = await mkdtemp(join(tmpdir(), 'runner-fleet-demo-'));
  const logFile = join(dir, 'controller.log');
  let logging: { logger: Logger; close(): Promise<void> } | null = null;
  let sim: Simulator | null = null;
  let controller: DemoController | null = null;
  let config: DemoConfig | null = null;
  let stopRunners: (() => Promise<void>) | null = null;
  let ok = false;
  try {
    const kubernetes = options.kubernetes ? { namespace: options.kubernetes.namespace } : undefined;
    const ec2World = options.ec2?.world;
    const world = simulatorWorld(
      fleet?.scaleSets ??
        builtInScaleSets({ ...(kubernetes ? { kubernetes } : {}), ...(ec2World ? { ec2: ec2World } : {}) }),
    );
    // The logger needs the secrets, which exist once the simulator does: start it first, log through a late-bound
    // logger afterwards.
    sim = await startSimulator({
      orgs: world.orgs,
      ...(world.enterprise ? { enterprise: world.enterprise } : {}),
      runnerGroups: world.runnerGroups,
      ...options.simulatorOptions,
    });
    config = demoConfig({
      fleet,
      simulator: sim,
      paths: { dir, nodePath: process.execPath, cliPath: options.cliPath ?? defaultCliPath() },
      port: options.port,
      ...(options.env ? { env: options.env } : {}),
      ...(kubernetes ? { kubernetes } : {}),
      ...(ec2World ? { ec2: ec2World } : {}),
    });
    logging = options.createLogger(logFile, config.secrets);
    controller = await options.controllerFactory({
      config: config.config,
      logger: logging.logger,
      secrets: config.secrets,
    });
    const url = controller.url.replace(/\/+$/, '');
    sim.setWebhook(`${url}/webhook`, sim.webhookSecret);
    if (options.kubernetes) {
      const namespaces = kubernetesRunners(config.config).map((r) => r.namespace);
      stopRunners = await options.kubernetes.startRunners(config.config.name, [...new Set(namespaces)]);
    }
    if (options.ec2) stopRunners = await options.ec2.startRunners(config.config.name);
    options.onParts?.({ simulator: sim, controller, config });
    options.onReady?.({ url, dir, logFile, notes: config.notes });

    const result = await drive(options, config.config, sim, controller, started);
    const interrupted = signal?.aborted === true;
    ok = result.ok && !interrupted;
    if (!interrupted && options.keepUntil) await options.keepUntil({ url, summary: result });
    return {
      summary: result,
      url,
      dir: ok && !options.keepFiles ? null : dir,
      logFile,
      interrupted,
    };
  } finally {
    if (!ok && options.ec2?.machineOutput) {
      await writeFile(join(dir, 'ec2-machines.log'), options.ec2.machineOutput(), { mode: 0o600 }).catch(
        () => undefined,
      );
    }
    if (controller && config) await removeProcessRunners(config.config, controller).catch(() => undefined);
    await stopRunners?.().catch(() => undefined);
    await controller?.stop().catch(() => undefined);
    if (sim) await closeSimulator(sim);
    await logging?.close().catch(() => undefined);
    if (ok && !options.keepFiles) await rm(dir, { recursive: true, force: true }).catch(() => undefined);
  }
}

async function drive(
  options: DemoOptions,
  config: FleetConfig,
  sim: Simulator,
  controller: DemoController,
  started: number,
): Promise<DemoSummary> {
  const signal = options.signal;
  const tickMs = options.tickMs ?? 250;
  const { targets, unroutable } = workloadTargets(config);
  const plan = planWorkload({ jobs: options.jobs, durationMs: options.durationMs, targets, unroutable });
  let phase: ProgressFrame['phase'] = 'workload';
  let run: WorkloadRun | null = null;
  const submitted = new Set<number>();
  let maxConcurrent = 0;
  const peakBySet = new Map<string, number>();

  const frame = async (): Promise<ProgressFrame> => {
    const sets = await controller.readModel.scaleSets();
    const jobs = {
      total: plan.totals.jobs,
      submitted: submitted.size,
      queued: 0,
      running: 0,
      done: 0,
      unroutable: 0,
    };
    const unroutableIds = new Set(run?.byTag.unroutable ?? []);
    for (const job of sim.jobs()) {
      if (!submitted.has(job.id)) continue;
      if (unroutableIds.has(job.id)) jobs.unroutable++;
      else if (job.status === 'queued') jobs.queued++;
      else if (job.status === 'in_progress') jobs.running++;
      else jobs.done++;
    }
    maxConcurrent = Math.max(maxConcurrent, sim.stats().runners.registered);
    const setProgress: SetProgress[] = sets.map((s) => {
      peakBySet.set(s.name, Math.max(peakBySet.get(s.name) ?? 0, s.activeRunners));
      const r = s.runners;
      return {
        name: s.name,
        provider: s.provider,
        max: s.max,
        starting: r.requested + r.creating + r.starting,
        idle: r.idle,
        busy: r.busy,
        ending: r.finished + r.failed + r['bootstrap-timeout'],
      };
    });
    const now = Date.now();
    let waiting = 0;
    let oldestWaitMs: number | null = null;
    let pausedUntil: number | null = null;
    for (const s of sets) {
      waiting += s.pacing.waiting;
      if (s.pacing.oldestWaitMs !== null) oldestWaitMs = Math.max(oldestWaitMs ?? 0, s.pacing.oldestWaitMs);
      if (s.pacing.pausedUntil !== null) pausedUntil = Math.max(pausedUntil ?? 0, s.pacing.pausedUntil);
    }
    const pacing = {
      waiting,
      oldestWaitMs,
      pausedForMs: pausedUntil === null ? null : Math.max(0, pausedUntil - now),
      perMinute: config.github.createsPerMinute ?? 180,
    };
    return { phase, elapsedMs: now - started, jobs, sets: setProgress, pacing };
  };
  let ticking = true;
  const ticker = (async () => {
    while (ticking) {
      try {
        const f = await frame();
        options.onProgress?.(f);
      } catch {
        // A frame is best effort; the summary is what counts.
      }
      await sleep(tickMs);
    }
  })();

  try {
    run = await runWorkload(plan, sim, {
      ...(signal ? { signal } : {}),
      onStep: (_step, ids) => ids.forEach((id) => submitted.add(id)),
    });
    const routable = [...run.byTag.trickle, ...run.byTag.burst, ...run.byTag.cancelled];
    // Every routable job completes (GitHub's view); the unroutable one stays queued, as it would on GitHub.
    const deadline = Date.now() + (options.completionTimeoutMs ?? 60_000);
    while (!signal?.aborted && Date.now() < deadline) {
      if (routable.every((id) => sim.job(id)?.status === 'completed')) break;
      await sleep(tickMs, signal);
    }
    phase = 'draining';
    const drainDeadline = Date.now() + (options.drainTimeoutMs ?? 45_000);
    const census = options.ec2 ? () => options.ec2!.census(config, started) : undefined;
    while (!signal?.aborted && Date.now() < drainDeadline) {
      if (await drained(config, sim, controller, census)) break;
      await sleep(tickMs, signal);
    }
    const leaks = await measureLeaks(config, sim, controller);
    const ec2 = census ? await census() : undefined;
    const reported = await unroutableFromApi(controller.url);
    phase = 'done';
    const summary = summarize({
      queued: { routable, unroutable: run.byTag.unroutable, cancelled: run.cancelled },
      records: sim.jobs().filter((j) => submitted.has(j.id)),
      reportedUnroutable: reported,
      ...splitCalls(sim.stats().apiCalls.byRoute),
      githubRateLimitedCalls: rateLimited(controller),
      maxConcurrentRunners: maxConcurrent,
      peakRunnersBySet: peakBySet,
      scaleSets: config.scaleSets.map((s) => ({ name: s.name, provider: s.provider.kind, max: s.max })),
      leakedRunners: leaks.runners,
      leakedInstances: leaks.instances,
      leakDetails: leaks.details,
      ...(ec2 ? { ec2: { census: ec2, awsCalls: options.ec2?.awsCalls?.() ?? {} } } : {}),
      durationMs: Date.now() - started,
    });
    // The unroutable job stays queued (as on GitHub, for a day): a kept dashboard still shows it.
    return summary;
  } finally {
    ticking = false;
    await ticker;
    try {
      options.onProgress?.(await frame());
    } catch {
      // best effort
    }
  }
}

/** Calls GitHub refused with 403 or 429 (rate limits; the simulator answers other 403s only to bad credentials). */
function rateLimited(controller: DemoController): number {
  const byStatus = controller.apiCallsByStatus?.() ?? {};
  return (byStatus['403'] ?? 0) + (byStatus['429'] ?? 0);
}

/**
 * Ephemeral runners gone and every scale set back to minIdle, as the controller, GitHub and the providers see it;
 * with EC2, also nothing of the fleet left in the AWS endpoint.
 */
async function drained(
  config: FleetConfig,
  sim: Simulator,
  controller: DemoController,
  census?: () => Promise<Ec2Census>,
): Promise<boolean> {
  const sets = await controller.readModel.scaleSets();
  for (const set of config.scaleSets) {
    const view = sets.find((s) => s.name === set.name);
    if (!view) return false;
    const r = view.runners;
    const leaving =
      r.requested + r.creating + r.starting + r.busy + r.finished + r.failed + r['bootstrap-timeout'];
    if (leaving > 0 || r.idle > set.minIdle) return false;
  }
  const leaks = await measureLeaks(config, sim, controller);
  if (leaks.runners !== 0 || leaks.instances !== 0) return false;
  if (census === undefined) return true;
  const left = await census();
  return left.liveInstances.length === 0 && left.parameters.length === 0;
}

/** Job ids the controller's API lists as unroutable (what an operator would see). */
async function unroutableFromApi(url: string): Promise<number[]> {
  const response = await fetch(`${url.replace(/\/+$/, '')}/api/v1/jobs?unroutable=true`, {
    signal: AbortSignal.timeout(5_000),
  });
  if (!response.ok) throw new DemoError(`GET /api/v1/jobs answered ${response.status}`, 'api_failed');
  const body = (await response.json()) as { jobs: { id: number; unroutable: boolean }[] };
  return body.jobs.filter((j) => j.unroutable).map((j) => j.id);
}

/**
 * REST calls apart from the Actions service's (the runner scale set protocol, whose routes the simulator keys
 * `{actions}...`): only the former count against GitHub's REST rate limits.
 */
function splitCalls(byRoute: Readonly<Record<string, number>>): {
  githubApiCalls: number;
  actionsServiceCalls: number;
} {
  let rest = 0;
  let actions = 0;
  for (const [route, n] of Object.entries(byRoute)) {
    if (route.includes('{actions}')) actions += n;
    else rest += n;
  }
  return { githubApiCalls: rest, actionsServiceCalls: actions };
}
