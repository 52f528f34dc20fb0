/**
 * The composition root: the one place that builds clients (GitHub, store, providers, reconciler, HTTP server and its
 * dashboard) from a parsed FleetConfig and wires them together. `start`, `demo`, the benchmarks and the end-to-end
 * tests all build a controller here, so what they run is the same thing.
 *
 * Two guarantees live here. The store file is checked before it is used (integrity.ts) and a store that fails while
 * running makes the controller unhealthy and not ready, with SQLite's own cause. And stop() is bounded: every call
 * out is aborted at once and waited for at most `SHUTDOWN.controllerMs`, whatever GitHub or a provider does.
 */
import type { FleetConfig } from '../core/fleet-config.js';
import { LabelRouter } from '../core/labels.js';
import { FleetReadModel } from '../core/read-models.js';
import { Reconciler } from '../core/reconciler.js';
import type { ReconcilerHooks } from '../core/hooks.js';
import { CreatePacer } from '../core/pacing.js';
import { createFleetDashboard } from '../dashboard/index.js';
import { createGitHubClient } from '../github/index.js';
import type { GitHubClient } from '../github/index.js';
import type { FetchLike } from '../github/index.js';
import { WebhookRedelivery } from '../github/redelivery.js';
import type { Provider, ProviderNotice, ProviderSetupOptions } from '../providers/provider.js';
import { createProviderRegistry } from '../providers/registry.js';
import type { FactorySource } from '../providers/registry.js';
import type { DashboardPlugin, FleetServer, HealthCheck, Readiness } from '../server/index.js';
import { EventHub, createServer } from '../server/index.js';
import { checkStoreFile } from '../store/integrity.js';
import { StoreError, moveAsideAdvice } from '../store/sqlite-errors.js';
import { openStore } from '../store/store.js';
import type { Store } from '../store/store.js';
import type { Logger } from '../telemetry/index.js';
import { configSecrets, createLogger, createMetrics } from '../telemetry/index.js';
import type { FleetMetrics, LogLevel } from '../telemetry/index.js';
import { githubFetch } from './github-fetch.js';
import { ScaleSetMode } from './scale-set-mode.js';
import type { BatchableSink } from './scale-set-mode.js';

export interface ComposeOptions {
  readonly config: FleetConfig;
  /** The command's environment, read by the CLI and handed to the providers' set-up (PATH, KUBECONFIG, AWS_*). */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** How providers reach their platform (--kubeconfig, --aws-endpoint). */
  readonly connection?: ProviderSetupOptions['connection'];
  /** The Lease this controller elects a leader on, if any: the Kubernetes set-up checks its rights too. */
  readonly leaderElection?: ProviderSetupOptions['leaderElection'];
  /** Check the controller's rights on each provider's platform before starting (start does). Default false. */
  readonly checkAccess?: boolean;
  /** Where log lines go (stdout by default). */
  readonly logDestination?: NodeJS.WritableStream;
  readonly logLevel?: LogLevel;
  readonly logger?: Logger;
  /** Replacement provider factories by kind (tests, benchmarks and the demo); the others are set up as usual. */
  readonly providerFactories?: Readonly<Record<string, FactorySource>>;
  /** The dashboard served at `/`: the fleet's own by default (createFleetDashboard); false for none. */
  readonly dashboard?: DashboardPlugin | false;
  /**
   * Aborts the set-up and start() (a SIGTERM while the controller comes up): the providers' set-up and preparation
   * and the first resync end at once.
   */
  readonly signal?: AbortSignal;
  /** How long the integrity check of the store file may take before it is given up (and logged); default 60 s. */
  readonly storeCheckTimeoutMs?: number;
  /** How long stop() waits for work in flight before abandoning it; default SHUTDOWN.controllerMs. */
  readonly stopTimeoutMs?: number;
  readonly fetch?: FetchLike;
  readonly now?: () => number;
  /**
   * Options passed through to the GitHub client: timeouts and retry pacing (tests shrink them), and the
   * installation ids start's preflight already read.
   */
  readonly github?: {
    readonly retryBaseMs?: number;
    readonly timeoutMs?: number;
    readonly retries?: number;
    readonly installationIds?: ReadonlyMap<string, number>;
  };
  /** Calls out at once; default fleet.yaml's controller.concurrency. */
  readonly concurrency?: number;
  /** Retry pacing of `discovery: scale-set` listeners (first delay, longest); tests shrink it. */
  readonly scaleSetListener?: { readonly retryBaseMs?: number; readonly maxRetryMs?: number };
}

export interface Controller {
  readonly config: FleetConfig;
  readonly logger: Logger;
  readonly metrics: FleetMetrics;
  readonly github: GitHubClient;
  readonly store: Store;
  readonly providers: ReadonlyMap<string, Provider>;
  readonly reconciler: Reconciler;
  /** What the API and the dashboard show. */
  readonly readModel: FleetReadModel;
  readonly server: FleetServer;
  readonly events: EventHub;
  /** Where `workflow_job` webhooks go: the store, minus the jobs of `discovery: scale-set` scale sets. */
  readonly webhookSink: BatchableSink;
  /** The listeners of `discovery: scale-set` scale sets (none when every scale set uses webhooks). */
  readonly scaleSetMode: ScaleSetMode;
  /**
   * Listens without acting (webhooks are persisted, /healthz answers, /readyz says not ready): a standby replica
   * under leader election. Idempotent; start() listens through it.
   */
  listen(): Promise<string>;
  /** Listens, then runs the first resync; resolves to the server's URL once the controller is ready. */
  start(): Promise<string>;
  /** What /readyz answers: ready once the first resync is done, not while stopping or with a failed store. */
  readiness(): Readiness;
  /** What /healthz reports: the store's state (a failed store makes the controller unhealthy). */
  health(): { readonly store: HealthCheck };
  /**
   * Stops accepting webhooks, aborts every call out (GitHub, providers) and stops the reconciler, closes the
   * providers and the store: within `stopTimeoutMs`, abandoning what has not settled by then (the store records
   * intent before every call out, so abandoned work is what a crash leaves, and the next start repairs it).
   * Idempotent.
   */
  stop(): Promise<StopReport>;
}

/** How a stop went. */
export interface StopReport {
  /** Everything settled within the bound; false when something was abandoned. */
  readonly clean: boolean;
  readonly ms: number;
  /** What did not settle in time (`reconciler`, `provider cloud`, ...). */
  readonly abandoned: readonly string[];
}

/**
 * The shutdown bound of `start` and its parts (docs/kubernetes.md, "Shutting down"): SIGTERM to exit within
 * `totalMs`, well inside Kubernetes' default grace period of 30 s, whatever GitHub or a provider does.
 */
export const SHUTDOWN = {
  /** SIGTERM to exit; past it `start` exits anyway, with status 1. */
  totalMs: 10_000,
  /** controller.stop(): calls aborted, the reconciler, providers and store closed. */
  controllerMs: 6_000,
  /** Releasing the Lease afterwards, under leader election. */
  leaseReleaseMs: 2_000,
} as const;

/** What to do about a failed store: move a damaged file aside; look at the disk when it failed. */
function adviceFor(code: string, path: string): string {
  return code === 'store-corrupt'
    ? moveAsideAdvice(path)
    : `Check the disk and ${path} (space, permissions, I/O errors in the kernel log), then start again.`;
}

/** Resolves with true when `work` settles within `ms`, false otherwise (the work goes on, unwatched). */
async function within(work: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const settled = await Promise.race([
    work.then(
      () => true,
      () => true,
    ),
    new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), Math.max(0, ms));
    }),
  ]);
  clearTimeout(timer);
  return settled;
}

/** The scale_set label of a job's metrics: its scale set, or `unroutable` when none serves it. */
const UNROUTABLE = 'unroutable';

/** Metrics and live events from the reconciler's hooks: one place maps core events to telemetry. */
function telemetryHooks(
  metrics: FleetMetrics,
  events: EventHub,
  providerKind: (s: string) => string,
): ReconcilerHooks {
  return {
    onRunnerState: (e) => events.publish('runner', e),
    onRunnerCounts: (scaleSet, counts) => {
      for (const [state, n] of Object.entries(counts)) metrics.runners.set({ scale_set: scaleSet, state }, n);
    },
    onJobEvent: (e) => {
      const scaleSet = e.scaleSet ?? UNROUTABLE;
      metrics.jobs.inc({ scale_set: scaleSet, event: e.event });
      if (e.event === 'unroutable') metrics.unroutableJobs.inc();
      if (e.queueMs !== undefined) metrics.jobQueueSeconds.observe({ scale_set: scaleSet }, e.queueMs / 1000);
      events.publish('job', e);
    },
    onReconcile: (e) => metrics.reconcileSeconds.observe({ scale_set: e.scaleSet }, e.durationMs / 1000),
    onProviderOperation: (e) =>
      metrics.providerOperations.inc({ provider: providerKind(e.scaleSet), op: e.op, result: e.result }),
  };
}

export async function composeController(options: ComposeOptions): Promise<Controller> {
  const { config } = options;
  const logger =
    options.logger ??
    createLogger({
      level: options.logLevel ?? 'info',
      knownSecrets: configSecrets(config),
      base: { fleet: config.name },
      ...(options.logDestination ? { destination: options.logDestination } : {}),
    });
  const metrics = createMetrics({ processMetrics: true });
  const events = new EventHub(options.now);
  // Through HTTPS_PROXY (unless NO_PROXY exempts GitHub), trusting github.caFile, unless given a fetch.
  const transport = options.fetch ? undefined : githubFetch(config.github, options.env ?? {});
  const github = createGitHubClient({
    config: config.github,
    // (the client binds component: github itself)
    logger,
    metrics,
    fetch: options.fetch ?? transport!.fetch,
    ...(options.now ? { now: options.now } : {}),
    ...options.github,
  });

  const router = new LabelRouter(config.scaleSets);
  const scaleSetMode = new ScaleSetMode({
    config,
    github,
    fetch: options.fetch ?? transport!.fetch,
    logger,
    metrics,
    ...(options.now ? { now: options.now } : {}),
    ...options.scaleSetListener,
  });
  const storePath = config.store.path;
  // A damaged page is found now, not on the first webhook or write that reaches it.
  let store: Store;
  try {
    const integrity = await checkStoreFile(storePath, {
      timeoutMs: options.storeCheckTimeoutMs ?? 60_000,
      ...(options.signal !== undefined ? { signal: options.signal } : {}),
    });
    if (options.signal?.aborted) throw new Error('stopped during the start-up');
    if (integrity.checked) {
      logger.info({ store: storePath, ms: integrity.ms, bytes: integrity.bytes }, 'store file checked');
    } else {
      logger.warn({ store: storePath, reason: integrity.reason }, 'store integrity check given up; starting');
    }
    store = openStore({
      path: storePath,
      route: scaleSetMode.route(router),
      backgroundCheckpoints: {
        onFailure: (reason) =>
          logger.warn({ reason }, 'store: background checkpoints stopped; checkpointing on commits instead'),
      },
    });
  } catch (error) {
    github.close();
    if (error instanceof StoreError && (error.code === 'store-corrupt' || error.code === 'store-io')) {
      throw new StoreError(`${error.message}. ${adviceFor(error.code, storePath)}`, {
        code: error.code,
        cause: error.cause,
      });
    }
    throw error;
  }
  // Said once, with SQLite's cause; /healthz and /readyz say it for as long as the process runs.
  store.onFailure((failure) =>
    logger.error(
      { store: storePath, code: failure.code, sqliteCode: failure.sqliteCode, reason: failure.message },
      `store failed: ${failure.message} (${failure.sqliteCode}); the controller is unhealthy and does nothing ` +
        `more. ${adviceFor(failure.code, storePath)}`,
    ),
  );
  const stopSignal = options.signal;
  const setupSignal = (ms: number): AbortSignal =>
    stopSignal === undefined
      ? AbortSignal.timeout(ms)
      : AbortSignal.any([AbortSignal.timeout(ms), stopSignal]);

  const registry = createProviderRegistry({
    ...(options.providerFactories ? { overrides: options.providerFactories } : {}),
    setup: {
      fleet: config,
      env: options.env ?? {},
      connection: options.connection ?? {},
      ...(options.leaderElection ? { leaderElection: options.leaderElection } : {}),
      checkAccess: options.checkAccess ?? false,
      logger,
      signal: setupSignal(120_000),
    },
  });
  const kindOf = new Map(config.scaleSets.map((s) => [s.name, s.provider.kind]));
  const notify = (scaleSet: string) => (notice: ProviderNotice) => {
    const kind = kindOf.get(scaleSet) ?? 'unknown';
    metrics.providerNotices.inc({ provider: kind, scale_set: scaleSet, event: notice.event });
    logger.warn(
      { scaleSet, runner: notice.instance, event: notice.event, reason: notice.message },
      'provider notice',
    );
    try {
      store.recordEvent({
        kind: 'instance',
        scaleSet,
        runner: notice.instance ?? null,
        event: notice.event,
        reason: notice.message,
      });
    } catch (error) {
      logger.warn({ err: error }, 'cannot record a provider notice');
    }
    events.publish('notice', { scaleSet, ...notice });
  };
  const providers = new Map<string, Provider>();
  try {
    for (const scaleSet of config.scaleSets) {
      const provider = await registry.providerFor(scaleSet, {
        fleet: config.name,
        logger: logger.child({ scaleSet: scaleSet.name }),
        notify: notify(scaleSet.name),
        ...(options.now ? { now: options.now } : {}),
      });
      providers.set(scaleSet.name, provider);
    }
  } catch (error) {
    await closeAfterFailure();
    throw error;
  }

  /** Everything built so far, closed when the set-up fails: nothing may keep the process alive after a refusal. */
  async function closeAfterFailure(): Promise<void> {
    github.close();
    await within(Promise.allSettled([...providers.values()].map((p) => p.close?.())), 2_000);
    await within(registry.close(), 2_000);
    store.close();
    await within(store.closed(), 2_000);
  }

  const pacer = new CreatePacer({
    onWait: (e) => metrics.pacingWaitSeconds.observe({ scale_set: e.scaleSet }, e.waitMs / 1000),
  });
  const reconciler = new Reconciler({
    config,
    store,
    github: scaleSetMode.githubPort(github),
    providers,
    logger,
    assignedJobs: (scaleSet) => scaleSetMode.assignedJobs(scaleSet),
    waitingJobs: (scaleSet) => scaleSetMode.waitingJobs(scaleSet),
    pacer,
    hooks: telemetryHooks(metrics, events, (s) => kindOf.get(s) ?? 'unknown'),
    ...(options.now ? { now: options.now } : {}),
    ...(options.concurrency !== undefined ? { concurrency: options.concurrency } : {}),
  });

  const readModel = new FleetReadModel({
    config,
    store,
    reconciler,
    pacing: pacer,
    ...(options.now ? { now: options.now } : {}),
  });
  let stopping: Promise<StopReport> | null = null;
  const readiness = (): Readiness => {
    const failure = store.failure();
    if (failure !== null)
      return { ready: false, reason: `store failed: ${failure.message} (${failure.sqliteCode})` };
    if (stopping !== null) return { ready: false, reason: 'stopping' };
    const health = reconciler.health();
    if (!health.started)
      return { ready: false, reason: 'not acting (not started, or standing by for leadership)' };
    if (!health.ready) return { ready: false, reason: 'the first resync has not finished' };
    return { ready: true };
  };
  const health = (): { readonly store: HealthCheck } => {
    const failure = store.failure();
    return {
      store:
        failure === null
          ? { status: 'ok' }
          : {
              status: 'failed',
              code: failure.sqliteCode,
              reason: failure.message,
              since: new Date(failure.at).toISOString(),
            },
    };
  };
  const dashboard =
    options.dashboard === false
      ? undefined
      : (options.dashboard ??
        createFleetDashboard({
          fleetName: config.name,
          knownSecrets: configSecrets(config),
          github: () => github,
        }));
  const webhookSink: BatchableSink = scaleSetMode.active ? scaleSetMode.webhookSink(store, router) : store;
  let server: FleetServer;
  try {
    server = await createServer({
      config,
      sink: webhookSink,
      readModel,
      isReady: readiness,
      health,
      metrics,
      logger,
      events,
      ...(dashboard !== undefined ? { dashboard } : {}),
    });
  } catch (error) {
    await closeAfterFailure();
    throw error;
  }

  // GitHub never retries a delivery: events sent while the controller was down are found in the App's deliveries
  // and redelivered (a lost `queued` would otherwise leave its job without a runner for good).
  const redelivery = github.canRedeliver
    ? new WebhookRedelivery({
        github,
        logger: logger.child({ component: 'redelivery' }),
        resumeFrom: () => store.lastDeliveryAt(),
        ...(options.now ? { now: options.now } : {}),
      })
    : null;

  let listening: Promise<string> | null = null;
  const stopTimeoutMs = options.stopTimeoutMs ?? SHUTDOWN.controllerMs;
  const listen = (): Promise<string> => (listening ??= server.listen());
  return {
    config,
    logger,
    metrics,
    github,
    store,
    providers,
    reconciler,
    readModel,
    server,
    events,
    webhookSink,
    scaleSetMode,
    listen,
    readiness,
    health,
    async start() {
      // Webhooks are accepted (and persisted) while the first resync runs; /readyz says when it is done.
      const url = await listen();
      if (stopping !== null) return url;
      if (redelivery !== null) redelivery.start(config.controller.resyncInterval);
      else
        logger.warn('PAT authentication: webhooks lost while the controller is down cannot be redelivered');
      for (const [name, provider] of providers) {
        if (provider.prepare === undefined) continue;
        logger.info({ scaleSet: name }, 'preparing provider');
        await provider.prepare(setupSignal(120_000));
        if (stopping !== null) return url;
      }
      await reconciler.start();
      // Message sessions are held only while this controller acts (under leader election: by the leader).
      if (stopping === null) scaleSetMode.start(store, (scaleSet) => reconciler.wake(scaleSet));
      if (stopping === null) logger.info({ url, scaleSets: config.scaleSets.length }, 'controller ready');
      return url;
    },
    stop() {
      stopping ??= (async (): Promise<StopReport> => {
        const started = performance.now();
        // One deadline for the whole stop: the calls out get most of it, closing providers and store the rest.
        const deadline = started + stopTimeoutMs;
        const until = (reserveMs: number, floorMs: number) =>
          Math.max(floorMs, deadline - reserveMs - performance.now());
        const abandoned: string[] = [];
        const watch = async (name: string, work: Promise<unknown>, ms: number) => {
          if (!(await within(work, ms))) abandoned.push(name);
        };
        // Nothing new is accepted or started; every GitHub call in flight, retries included, ends now.
        github.close();
        const serverClosed = server
          .close()
          .catch((error: unknown) => logger.warn({ err: error }, 'server close failed'));
        const workMs = until(1_500, 500);
        await Promise.all([
          watch('server', serverClosed, workMs),
          watch('redelivery', redelivery?.stop() ?? Promise.resolve(), workMs),
          watch('reconciler', reconciler.stop(), workMs),
          watch('scale set listeners', scaleSetMode.stop(Math.max(250, workMs - 250)), workMs),
        ]);
        // Providers and their SDKs release what they hold (watches, informers, clients).
        const closeMs = until(500, 250);
        await Promise.all([
          ...[...providers].map(([name, provider]) =>
            watch(`provider ${name}`, provider.close?.() ?? Promise.resolve(), closeMs),
          ),
          watch('provider registry', registry.close(), closeMs),
        ]);
        // The store last: webhooks answered during the stop were committed before their reply.
        store.close();
        await watch('store checkpoint worker', store.closed(), until(0, 250));
        transport?.close();
        const report = {
          clean: abandoned.length === 0,
          ms: Math.round(performance.now() - started),
          abandoned,
        };
        if (report.clean) logger.info({ ms: report.ms }, 'controller stopped');
        else
          logger.warn(
            { ms: report.ms, abandoned, boundMs: stopTimeoutMs },
            'controller stopped; work that did not end within the bound was abandoned (the next start repairs it)',
          );
        logger.flush?.();
        return report;
      })();
      return stopping;
    },
  };
}
