/**
 * The GitHub simulator: a local GitHub (REST API, App auth, runners, jobs, signed webhooks), a runner broker for
 * emulated runners, and a simulated cloud. `startSimulator` builds and starts one; nothing happens at import.
 * Control API, broker protocol and limits: docs/simulator.md.
 */
import { AppAuth, appKeyMaterial, generateRsaKey } from './auth.js';
import { Broker } from './broker.js';
import type { ApiStats, RecordedExchange, SimContext } from './context.js';
import { applyFaults, createJobs, jobView, stats } from './control.js';
import type { JobsInput, SimJobView, SimStats } from './control.js';
import { DirectTransport } from './direct-transport.js';
import { NO_FAULTS, parseFaults } from './faults.js';
import type { Faults, FaultsInput } from './faults.js';
import { webhookSecret as randomWebhookSecret } from './ids.js';
import { InstanceManager } from './instances.js';
import type { InstanceInput, InstanceView } from './instances.js';
import { rsaParams, scopeWebUrl } from './jit-config.js';
import { JobEngine } from './job-engine.js';
import type { JobStatus, ScopeRef } from './model.js';
import { resolveOptions } from './options.js';
import type { SimulatorOptions } from './options.js';
import { workflowJobPayload } from './payloads.js';
import { RateLimiter } from './rate-limit.js';
import { RunnerRegistry } from './runner-registry.js';
import { RunnerTokens } from './runner-tokens.js';
import { RunnerService } from './runners.js';
import { ScaleSetService } from './scale-sets.js';
import type { SimScaleSetView } from './scale-sets.js';
import { buildServer } from './server.js';
import { WebhookDispatcher } from './webhooks.js';
import { World } from './world.js';
import type { BrokerTransport } from '../runner/protocol.js';

export type { SimulatorOptions } from './options.js';
export type { Faults, FaultsInput, RateLimitFault } from './faults.js';
export type { JobsInput, SimJobView, SimStats } from './control.js';
export type { InstanceInput, InstanceRegistration, InstanceState, InstanceView } from './instances.js';
export type { ScopeRef } from './model.js';
export type { RecordedExchange } from './context.js';
export type { ScaleSetStatistics, SimScaleSetView } from './scale-sets.js';
export { signPayload } from './webhooks.js';

export interface SimInstallation {
  readonly id: number;
  /** Organization login the App is installed on. */
  readonly account: string;
}

export interface SimRunnerView {
  readonly id: number;
  readonly name: string;
  /** `org:<org>`, `repo:<owner>/<repo>` or `enterprise:<slug>` (lower case). */
  readonly scope: string;
  readonly status: 'online' | 'offline';
  readonly busy: boolean;
  readonly ephemeral: boolean;
  readonly mode: 'jit' | 'token';
  readonly labels: readonly string[];
  readonly jobId: number | null;
}

export interface Simulator {
  /** Web root, the simulator's "https://github.com" (registration URLs live under it). */
  readonly baseUrl: string;
  /** REST root: baseUrl, or baseUrl + /api/v3 in GHES mode. */
  readonly apiUrl: string;
  readonly ghes: boolean;
  readonly appId: number;
  readonly appSlug: string;
  /** The App's private key (PKCS#1 PEM). Secret. */
  readonly privateKeyPem: string;
  readonly installations: readonly SimInstallation[];
  /** An accepted classic PAT (`ghp_...`). Secret. */
  readonly token: string;
  /** Current webhook secret. Secret. */
  readonly webhookSecret: string;
  readonly enterprise: string;
  /** In-process broker transport for emulated runners (same credential checks as HTTP, no sockets). */
  readonly transport: BrokerTransport;
  /** Points webhooks at a receiver (null: stop delivering); keeps the secret unless one is given. */
  setWebhook(url: string | null, secret?: string): void;
  /** Web URL of a scope, what config.sh --url takes: <baseUrl>/ORG, /OWNER/REPO, /enterprises/ENT. */
  webUrl(scope: ScopeRef): string;
  /** Same as POST /_sim/jobs. Throws on bad input. */
  createJobs(input: JobsInput): { id: number; runId: number }[];
  jobs(status?: JobStatus): SimJobView[];
  job(id: number): SimJobView | undefined;
  /** Same as POST /_sim/jobs/{id}/cancel; false when the job is unknown or already completed. */
  cancelJob(id: number): boolean;
  runners(): SimRunnerView[];
  stats(): SimStats;
  /** Same as POST /_sim/faults (merged into the current faults). Throws on bad input. */
  setFaults(input: FaultsInput): Faults;
  /** Same as the /_sim/instances API. */
  createInstance(input: InstanceInput): { instance: InstanceView; created: boolean };
  instances(tags?: Record<string, string>): InstanceView[];
  deleteInstance(name: string): boolean;
  /** Runner scale sets of the Actions service, with their session, unacknowledged messages and statistics. */
  scaleSets(): SimScaleSetView[];
  /** Expires every message session's queue token now: the next queue call answers 401 until the session is
   *  refreshed. */
  expireQueueTokens(): void;
  /** Admin tokens, queue tokens and JIT configs the Actions service issued (newest 10,000). Secret. */
  actionsSecrets(): readonly string[];
  /** REST exchanges kept so far (empty unless started with recordExchanges). */
  recordedExchanges(): readonly RecordedExchange[];
  /** Resolves when no webhook delivery is queued, delayed or in flight. */
  webhooksIdle(): Promise<void>;
  /** Same as POST /_sim/reset: jobs, runners, instances, deliveries, stats, faults and limits start over. */
  reset(): Promise<void>;
  close(): Promise<void>;
}

export async function startSimulator(options: SimulatorOptions = {}): Promise<Simulator> {
  const opts = resolveOptions(options);
  const now = opts.now;
  const jitKey = generateRsaKey().then(({ privateKey, publicKey }) => ({
    params: rsaParams(privateKey),
    publicKey,
  }));
  // A failure surfaces on the first generate-jitconfig; never as an unhandled rejection.
  jitKey.catch(() => undefined);
  const appKey = await appKeyMaterial(opts.appPrivateKeyPem);

  // URLs are known only once the server listens; routes read them at request time.
  const urls = { web: '', api: '' };
  const brokerUrls = { web: '', broker: '', token: '' };
  const prefix = opts.ghes ? '/api/v3' : '';

  const world = new World(opts.orgs, opts.enterprise, opts.runnerGroups, now());
  const auth = new AppAuth({
    appId: opts.appId,
    publicKey: appKey.publicKey,
    pat: opts.token,
    installations: (id) => world.installation(id),
    tokenTtlMs: opts.installationTokenTtlMs,
    now,
  });
  const rateSettings = () => ({
    perHour: opts.rateLimitPerHour,
    status: opts.rateLimitStatus,
    secondaryPerMinute: opts.secondaryLimitPerMinute,
    maxConcurrent: opts.maxConcurrentRequests,
  });
  const limiter = new RateLimiter(rateSettings(), now);
  let faults: Faults = { ...NO_FAULTS };
  const webhooks = new WebhookDispatcher({
    appId: opts.appId,
    url: opts.webhookUrl,
    secret: opts.webhookSecret ?? randomWebhookSecret(),
    fetch: opts.fetch,
    now,
    random: opts.random,
    faults: () => faults,
    concurrency: opts.webhookConcurrency,
    timeoutMs: opts.webhookTimeoutMs,
    maxDeliveries: opts.maxDeliveries,
    logger: opts.logger,
  });
  const registry = new RunnerRegistry();
  const scaleSets = new ScaleSetService({
    now,
    registry,
    enterprise: opts.enterprise,
    sessionTimeoutMs: () => opts.scaleSetSessionTimeoutMs,
    redeliveryMs: () => opts.scaleSetRedeliveryMs,
    queueTokenTtlMs: () => opts.queueTokenTtlMs,
    acquire: () => opts.scaleSetAcquireJobs,
  });
  const engine = new JobEngine({
    now,
    enterprise: opts.enterprise,
    emit: (action, job) => {
      scaleSets.onJob(action, job);
      if (!webhooks.url) return;
      webhooks.emit({
        event: 'workflow_job',
        action,
        installationId: job.repo.owner.installationId,
        repositoryId: job.repo.id,
        payload: workflowJobPayload(urls, action, job),
      });
    },
  });
  const runners = new RunnerService({
    registry,
    world,
    engine,
    now,
    jitExpiryMs: opts.jitExpiryMs,
    offlineAfterMs: opts.runnerOfflineAfterMs,
  });
  const tokens = new RunnerTokens(opts.registrationTokenTtlMs, now);
  const broker = new Broker({
    urls: brokerUrls,
    runners,
    engine,
    world,
    tokens,
    now,
    pollTimeoutMs: opts.pollTimeoutMs,
    offlineAfterMs: opts.runnerOfflineAfterMs,
    adminToken: (scope, ttlMs) => scaleSets.adminToken(scope, ttlMs),
    adminTokenTtlMs: opts.actionsAdminTokenTtlMs,
  });
  const apiStats: ApiStats = { total: 0, byRoute: new Map() };
  const ctx: SimContext = {
    options: opts,
    urls,
    prefix,
    app: {
      id: opts.appId,
      slug: 'runner-fleet-sim',
      clientId: auth.clientId,
      createdAt: now(),
      permissions: opts.permissions,
      events: opts.events,
    },
    world,
    auth,
    limiter,
    runners,
    engine,
    tokens,
    broker,
    scaleSets,
    webhooks,
    jitKey,
    get faults() {
      return faults;
    },
    set faults(value: Faults) {
      faults = value;
    },
    stats: apiStats,
    recorded: opts.recordExchanges ? [] : null,
    now,
  };

  const transport = new DirectTransport(broker);
  const instances = new InstanceManager({ transport, now });

  const reset = async () => {
    await instances.clear();
    scaleSets.clear();
    engine.reset();
    runners.clear();
    broker.clear();
    tokens.clear();
    webhooks.clear();
    apiStats.total = 0;
    apiStats.byRoute.clear();
    faults = { ...NO_FAULTS };
    limiter.reset(rateSettings());
  };

  const server = buildServer(ctx, instances, reset);
  await server.listen({ host: opts.host, port: opts.port });
  const address = server.server.address();
  if (!address || typeof address === 'string') throw new Error('the simulator did not get a TCP address');
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const web = `${opts.tls ? 'https' : 'http'}://${host}:${address.port}`;
  Object.assign(urls, { web, api: `${web}${prefix}` });
  Object.assign(brokerUrls, { web, broker: `${web}/_runner/`, token: `${web}/_runner/oauth2/token` });

  let sweeps = 0;
  const sweeper = setInterval(() => {
    runners.sweep();
    engine.sweepLost(opts.offlineJobTimeoutMs, (job) =>
      job.runnerId === null ? undefined : registry.get(job.runnerId),
    );
    // Grant garbage collection is O(grants): every 10 s is plenty.
    if (++sweeps % Math.max(1, Math.round(10_000 / opts.sweepIntervalMs)) === 0) broker.sweep();
  }, opts.sweepIntervalMs);
  sweeper.unref();

  let closed: Promise<void> | null = null;
  const installations = world.installations().map((i) => ({ id: i.id, account: i.account.login }));

  return {
    baseUrl: web,
    apiUrl: urls.api,
    ghes: opts.ghes,
    appId: opts.appId,
    appSlug: ctx.app.slug,
    privateKeyPem: appKey.privateKeyPem,
    installations,
    token: auth.pat,
    get webhookSecret() {
      return webhooks.secret ?? '';
    },
    enterprise: world.enterprise.slug,
    transport,
    setWebhook: (url, secret) => webhooks.configure(url, secret),
    webUrl: (scope) => scopeWebUrl(web, scope),
    createJobs: (input) => createJobs(ctx, input).map((j) => ({ id: j.id, runId: j.runId })),
    jobs: (status) => engine.list(status).map(jobView),
    job: (id) => {
      const job = engine.get(id);
      return job ? jobView(job) : undefined;
    },
    cancelJob: (id) => {
      const job = engine.get(id);
      return job ? engine.cancel(job) : false;
    },
    runners: () =>
      [...registry.all()].map((r) => ({
        id: r.id,
        name: r.name,
        scope: r.scopeKey,
        status: r.status,
        busy: r.busy,
        ephemeral: r.ephemeral,
        mode: r.mode,
        labels: r.labels.map((l) => l.name),
        jobId: r.jobId,
      })),
    stats: () => stats(ctx, instances),
    setFaults: (input) => {
      const parsed = parseFaults(input);
      if ('error' in parsed) throw new Error(parsed.error);
      applyFaults(ctx, parsed.change);
      return { ...faults };
    },
    createInstance: (input) => instances.create(input),
    instances: (tags) => instances.list(tags),
    deleteInstance: (name) => instances.delete(name),
    scaleSets: () => scaleSets.sets().map((set) => scaleSets.view(set)),
    expireQueueTokens: () => scaleSets.expireQueueTokens(),
    actionsSecrets: () => scaleSets.issuedSecrets(),
    recordedExchanges: () => ctx.recorded ?? [],
    webhooksIdle: () => webhooks.idle(),
    reset,
    close: () => {
      closed ??= (async () => {
        clearInterval(sweeper);
        scaleSets.clear();
        await instances.clear();
        webhooks.close();
        engine.reset();
        await server.close();
      })();
      return closed;
    },
  };
}
