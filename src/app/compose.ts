/**
 * The composition root: the one place that builds clients (GitHub, store, providers, reconciler, HTTP server) from a
 * parsed FleetConfig and wires them together. `start`, `demo`, the benchmarks and the end-to-end tests all build a
 * controller here, so what they run is the same thing.
 */
import type { FleetConfig } from '../core/fleet-config.js';
import { LabelRouter } from '../core/labels.js';
import { FleetReadModel } from '../core/read-models.js';
import { Reconciler } from '../core/reconciler.js';
import type { ReconcilerHooks } from '../core/hooks.js';
import { createGitHubClient } from '../github/index.js';
import type { GitHubClient } from '../github/index.js';
import type { FetchLike } from '../github/index.js';
import { WebhookRedelivery } from '../github/redelivery.js';
import type { Provider, ProviderNotice, ProviderSetupOptions } from '../providers/provider.js';
import { createProviderRegistry } from '../providers/registry.js';
import type { FactorySource } from '../providers/registry.js';
import type { DashboardPlugin, FleetServer } from '../server/index.js';
import { EventHub, createServer } from '../server/index.js';
import { openStore } from '../store/store.js';
import type { Store } from '../store/store.js';
import type { Logger } from '../telemetry/index.js';
import { configSecrets, createLogger, createMetrics } from '../telemetry/index.js';
import type { FleetMetrics, LogLevel } from '../telemetry/index.js';
import { githubFetch } from './github-fetch.js';

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
  readonly dashboard?: DashboardPlugin;
  readonly fetch?: FetchLike;
  readonly now?: () => number;
  /** Options passed through to the GitHub client (timeouts, retry pacing); tests shrink them. */
  readonly github?: { readonly retryBaseMs?: number; readonly timeoutMs?: number; readonly retries?: number };
  /** Calls out at once; default fleet.yaml's controller.concurrency. */
  readonly concurrency?: number;
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
  /**
   * Listens without acting (webhooks are persisted, /healthz answers, /readyz says not ready): a standby replica
   * under leader election. Idempotent; start() listens through it.
   */
  listen(): Promise<string>;
  /** Listens, then runs the first resync; resolves to the server's URL once the controller is ready. */
  start(): Promise<string>;
  /** Stops accepting webhooks, stops the reconciler, closes providers and the store. Idempotent. */
  stop(): Promise<void>;
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
    logger: logger.child({ component: 'github' }),
    metrics,
    fetch: options.fetch ?? transport!.fetch,
    ...(options.now ? { now: options.now } : {}),
    ...options.github,
  });

  const router = new LabelRouter(config.scaleSets);
  const store = openStore({
    path: config.store.path,
    route: (job) => router.route(job),
    backgroundCheckpoints: {
      onFailure: (reason) =>
        logger.warn({ reason }, 'store: background checkpoints stopped; checkpointing on commits instead'),
    },
  });

  const registry = createProviderRegistry({
    ...(options.providerFactories ? { overrides: options.providerFactories } : {}),
    setup: {
      fleet: config,
      env: options.env ?? {},
      connection: options.connection ?? {},
      ...(options.leaderElection ? { leaderElection: options.leaderElection } : {}),
      checkAccess: options.checkAccess ?? false,
      logger,
      signal: AbortSignal.timeout(120_000),
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
    await Promise.allSettled([...providers.values()].map((p) => p.close?.()));
    await registry.close();
    store.close();
    await store.closed();
    throw error;
  }

  const reconciler = new Reconciler({
    config,
    store,
    github,
    providers,
    logger,
    hooks: telemetryHooks(metrics, events, (s) => kindOf.get(s) ?? 'unknown'),
    ...(options.now ? { now: options.now } : {}),
    ...(options.concurrency !== undefined ? { concurrency: options.concurrency } : {}),
  });

  const readModel = new FleetReadModel({
    config,
    store,
    reconciler,
    ...(options.now ? { now: options.now } : {}),
  });
  const server = await createServer({
    config,
    sink: store,
    readModel,
    isReady: () => reconciler.health().ready,
    metrics,
    logger,
    events,
    ...(options.dashboard ? { dashboard: options.dashboard } : {}),
  });

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

  let stopping: Promise<void> | null = null;
  let listening: Promise<string> | null = null;
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
    listen,
    async start() {
      // Webhooks are accepted (and persisted) while the first resync runs; /readyz says when it is done.
      const url = await listen();
      if (redelivery !== null) redelivery.start(config.controller.resyncInterval);
      else
        logger.warn('PAT authentication: webhooks lost while the controller is down cannot be redelivered');
      for (const [name, provider] of providers) {
        if (provider.prepare === undefined) continue;
        logger.info({ scaleSet: name }, 'preparing provider');
        await provider.prepare(AbortSignal.timeout(120_000));
      }
      await reconciler.start();
      logger.info({ url, scaleSets: config.scaleSets.length }, 'controller ready');
      return url;
    },
    stop() {
      stopping ??= (async () => {
        await redelivery?.stop();
        await server.close().catch((error: unknown) => logger.warn({ error }, 'server close failed'));
        await reconciler.stop();
        await Promise.allSettled([...providers.values()].map((p) => p.close?.()));
        await registry.close();
        store.close();
        await store.closed();
        transport?.close();
        logger.flush?.();
      })();
      return stopping;
    },
  };
}
