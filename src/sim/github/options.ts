/** Options of the GitHub simulator, with the defaults every caller gets when it leaves one out. */
import type { Logger } from 'pino';

export interface SimulatorOptions {
  /** Interface to listen on. Default 127.0.0.1. */
  host?: string;
  /** Port; 0 (default) lets the OS choose. */
  port?: number;
  /** GHES mode: the REST API lives under /api/v3. */
  ghes?: boolean;
  /** Serve HTTPS with this certificate and key (PEM), e.g. one issued by a private CA, as GHES often is. */
  tls?: { readonly cert: string; readonly key: string };
  /** Organizations with the App installed. Default ['octo-org']. */
  orgs?: string[];
  /** Enterprise slug that contains every organization. Default 'octo-ent'. */
  enterprise?: string;
  /** Runner group names per organization besides `Default` (id 1). */
  runnerGroups?: string[];
  /** Webhook target (the controller's /webhook). None: events are not delivered. */
  webhookUrl?: string;
  /** HMAC secret of the App webhook. Default: random. */
  webhookSecret?: string;
  /** App id. Default 100001. */
  appId?: number;
  /** Reuse an App private key (PKCS#1 or PKCS#8 PEM) instead of generating one. */
  appPrivateKeyPem?: string;
  /** The accepted classic PAT. Default: random `ghp_...`. */
  token?: string;
  /** App permissions granted to every installation. */
  permissions?: Record<string, 'read' | 'write'>;
  /** Webhook events the App (and every installation) subscribes to. Default ['workflow_job']. */
  events?: string[];
  /** How long an unused JIT registration lives. Default 5 min. */
  jitExpiryMs?: number;
  /** Lifetime of installation tokens. Default 1 h. */
  installationTokenTtlMs?: number;
  /** Lifetime of registration and remove tokens. Default 1 h. */
  registrationTokenTtlMs?: number;
  /** A runner not heard from (poll, renew) for this long is offline. Default 10 s. */
  runnerOfflineAfterMs?: number;
  /** A job whose runner went offline completes with conclusion failure this long after. Default 5 s. */
  offlineJobTimeoutMs?: number;
  /** Longest long poll of the broker. Default 30 s. */
  pollTimeoutMs?: number;
  /** Default job duration when POST /_sim/jobs gives none. Default 1 s. */
  defaultJobDurationMs?: number;
  /** Longest long poll of a runner scale set's message queue (the service holds ~50 s). Default 50 s. */
  scaleSetPollTimeoutMs?: number;
  /** A message session neither polled nor refreshed for this long expires (another may then open). Default 2 min. */
  scaleSetSessionTimeoutMs?: number;
  /** An unacknowledged message is delivered again to the same session after this long. Default 60 s. */
  scaleSetRedeliveryMs?: number;
  /** Lifetime of a session's message queue token (401 after it; the session is refreshed). Default 1 h. */
  queueTokenTtlMs?: number;
  /** Lifetime of the admin token of `POST /actions/runner-registration` (a JWT with `exp`). Default 10 min. */
  actionsAdminTokenTtlMs?: number;
  /** Jobs are offered (JobAvailable) and must be acquired (POST acquirejobs) before they are assigned, as on
   *  GHES. Default: the value of `ghes`; otherwise jobs are assigned at once (JobAssigned). */
  scaleSetAcquireJobs?: boolean;
  /** Primary rate limit per installation (and for the PAT) per hour. Default 5000. */
  rateLimitPerHour?: number;
  /** Status of a primary rate limit refusal: 403 (default, as github.com mostly answers) or 429. */
  rateLimitStatus?: 403 | 429;
  /** Secondary limit: runner-creating POSTs per identity per minute. Default 180. */
  secondaryLimitPerMinute?: number;
  /** Secondary limit: concurrent REST requests per identity. Default 100. */
  maxConcurrentRequests?: number;
  /** Deliveries kept for the deliveries API. Default 5000. */
  maxDeliveries?: number;
  /** Concurrent webhook deliveries in flight. Default 32. */
  webhookConcurrency?: number;
  /** Webhook delivery timeout (GitHub: 10 s). */
  webhookTimeoutMs?: number;
  /** Period of the sweeper (expiry, offline detection). Default: derived from the timeouts, at most 1 s. */
  sweepIntervalMs?: number;
  /** Clock (ms epoch). Default Date.now. */
  now?: () => number;
  /** Randomness for fault injection, in [0, 1). Default Math.random. */
  random?: () => number;
  /** fetch used for webhook deliveries. Default globalThis.fetch. */
  fetch?: typeof fetch;
  /** pino logger for the simulator's own log lines. Default: silent. */
  logger?: Logger;
  /** Keep every REST exchange (request and response) for `recordedExchanges()`: for fidelity checks in tests. */
  recordExchanges?: boolean;
}

export interface ResolvedOptions {
  readonly host: string;
  readonly port: number;
  readonly ghes: boolean;
  readonly tls: { readonly cert: string; readonly key: string } | null;
  readonly orgs: readonly string[];
  readonly enterprise: string;
  readonly runnerGroups: readonly string[];
  readonly webhookUrl: string | null;
  readonly webhookSecret: string | null;
  readonly appId: number;
  readonly appPrivateKeyPem: string | null;
  readonly token: string | null;
  readonly permissions: Readonly<Record<string, 'read' | 'write'>>;
  readonly events: readonly string[];
  readonly jitExpiryMs: number;
  readonly installationTokenTtlMs: number;
  readonly registrationTokenTtlMs: number;
  readonly runnerOfflineAfterMs: number;
  readonly offlineJobTimeoutMs: number;
  readonly pollTimeoutMs: number;
  readonly defaultJobDurationMs: number;
  readonly scaleSetPollTimeoutMs: number;
  readonly scaleSetSessionTimeoutMs: number;
  readonly scaleSetRedeliveryMs: number;
  readonly queueTokenTtlMs: number;
  readonly actionsAdminTokenTtlMs: number;
  readonly scaleSetAcquireJobs: boolean;
  readonly rateLimitPerHour: number;
  readonly rateLimitStatus: 403 | 429;
  readonly secondaryLimitPerMinute: number;
  readonly maxConcurrentRequests: number;
  readonly maxDeliveries: number;
  readonly webhookConcurrency: number;
  readonly webhookTimeoutMs: number;
  readonly sweepIntervalMs: number;
  readonly now: () => number;
  readonly random: () => number;
  readonly fetch: typeof fetch;
  readonly logger: Logger | null;
  readonly recordExchanges: boolean;
}

export const DEFAULT_PERMISSIONS: Readonly<Record<string, 'read' | 'write'>> = Object.freeze({
  actions: 'read',
  administration: 'write',
  metadata: 'read',
  organization_self_hosted_runners: 'write',
});

export function resolveOptions(options: SimulatorOptions): ResolvedOptions {
  const runnerOfflineAfterMs = options.runnerOfflineAfterMs ?? 10_000;
  const offlineJobTimeoutMs = options.offlineJobTimeoutMs ?? 5_000;
  const jitExpiryMs = options.jitExpiryMs ?? 5 * 60_000;
  const orgs = options.orgs && options.orgs.length > 0 ? [...new Set(options.orgs)] : ['octo-org'];
  return {
    host: options.host ?? '127.0.0.1',
    port: options.port ?? 0,
    ghes: options.ghes ?? false,
    tls: options.tls ?? null,
    orgs,
    enterprise: options.enterprise ?? 'octo-ent',
    runnerGroups: options.runnerGroups ?? [],
    webhookUrl: options.webhookUrl ?? null,
    webhookSecret: options.webhookSecret ?? null,
    appId: options.appId ?? 100001,
    appPrivateKeyPem: options.appPrivateKeyPem ?? null,
    token: options.token ?? null,
    permissions: options.permissions ?? DEFAULT_PERMISSIONS,
    events: options.events ?? ['workflow_job'],
    jitExpiryMs,
    installationTokenTtlMs: options.installationTokenTtlMs ?? 60 * 60_000,
    registrationTokenTtlMs: options.registrationTokenTtlMs ?? 60 * 60_000,
    runnerOfflineAfterMs,
    offlineJobTimeoutMs,
    pollTimeoutMs: options.pollTimeoutMs ?? 30_000,
    defaultJobDurationMs: options.defaultJobDurationMs ?? 1_000,
    scaleSetPollTimeoutMs: options.scaleSetPollTimeoutMs ?? 50_000,
    scaleSetSessionTimeoutMs: options.scaleSetSessionTimeoutMs ?? 120_000,
    scaleSetRedeliveryMs: options.scaleSetRedeliveryMs ?? 60_000,
    queueTokenTtlMs: options.queueTokenTtlMs ?? 60 * 60_000,
    actionsAdminTokenTtlMs: options.actionsAdminTokenTtlMs ?? 10 * 60_000,
    scaleSetAcquireJobs: options.scaleSetAcquireJobs ?? options.ghes ?? false,
    rateLimitPerHour: options.rateLimitPerHour ?? 5_000,
    rateLimitStatus: options.rateLimitStatus ?? 403,
    secondaryLimitPerMinute: options.secondaryLimitPerMinute ?? 180,
    maxConcurrentRequests: options.maxConcurrentRequests ?? 100,
    maxDeliveries: options.maxDeliveries ?? 5_000,
    webhookConcurrency: options.webhookConcurrency ?? 32,
    webhookTimeoutMs: options.webhookTimeoutMs ?? 10_000,
    sweepIntervalMs:
      options.sweepIntervalMs ??
      Math.max(
        10,
        Math.min(1_000, Math.floor(Math.min(runnerOfflineAfterMs, offlineJobTimeoutMs, jitExpiryMs) / 4)),
      ),
    now: options.now ?? Date.now,
    random: options.random ?? Math.random,
    fetch: options.fetch ?? globalThis.fetch,
    logger: options.logger ?? null,
    recordExchanges: options.recordExchanges ?? false,
  };
}
