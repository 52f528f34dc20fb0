/**
 * The runner broker: the simulator's stand-in for the Actions service a real runner talks to. A runner comes online
 * only with credentials the simulator issued (a JIT config, single use, or the key it registered in token mode),
 * keeps a session, long-polls for a job, renews the job while it runs and reports its completion.
 * Protocol: docs/simulator.md, types: src/sim/runner/protocol.ts.
 */
import { createPublicKey, randomUUID, verify } from 'node:crypto';
import { brokerToken } from './ids.js';
import type { JobEngine } from './job-engine.js';
import type { Job, Runner, ScopeRef } from './model.js';
import { scopeKey } from './model.js';
import { scopeWebUrl } from './jit-config.js';
import type { RunnerService } from './runners.js';
import type { RunnerTokens } from './runner-tokens.js';
import type { World } from './world.js';
import type {
  AddAgentReply,
  AddAgentRequest,
  AgentInfo,
  CompleteReply,
  JobMessage,
  RenewReply,
  RunnerRegistrationReply,
  SessionReply,
  TokenReply,
} from '../runner/protocol.js';
import { BrokerCallError } from '../runner/protocol.js';

// Long enough for the longest job; JIT credentials cannot be exchanged a second time to refresh it.
const ACCESS_TOKEN_TTL_MS = 24 * 60 * 60_000;
const ADMIN_TOKEN_TTL_MS = 10 * 60_000;
const CLIENT_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

const fail = (status: number, code: string, message: string) => new BrokerCallError(status, code, message);

export interface BrokerUrls {
  readonly web: string;
  /** `<web>/_runner/` */
  readonly broker: string;
  /** `<web>/_runner/oauth2/token` */
  readonly token: string;
}

interface AccessGrant {
  readonly runner: Runner;
  readonly expiresAt: number;
}

interface AdminGrant {
  readonly scope: ScopeRef;
  readonly expiresAt: number;
}

export class Broker {
  readonly urls: BrokerUrls;
  readonly #runners: RunnerService;
  readonly #engine: JobEngine;
  readonly #world: World;
  readonly #tokens: RunnerTokens;
  readonly #now: () => number;
  readonly #pollTimeoutMs: number;
  readonly #renewIntervalMs: number;
  #access = new Map<string, AccessGrant>();
  #admin = new Map<string, AdminGrant>();
  readonly #adminTokenFactory:
    ((scope: ScopeRef, ttlMs: number) => { token: string; expiresAt: number }) | undefined;
  readonly #adminTtlMs: number;

  constructor(options: {
    urls: BrokerUrls;
    runners: RunnerService;
    engine: JobEngine;
    world: World;
    tokens: RunnerTokens;
    now: () => number;
    pollTimeoutMs: number;
    offlineAfterMs: number;
    /** Issues the admin token of a runner registration (a JWT with `exp`, as the Actions service's); else opaque. */
    adminToken?: (scope: ScopeRef, ttlMs: number) => { token: string; expiresAt: number };
    /** Lifetime of admin tokens. Default 10 min. */
    adminTokenTtlMs?: number;
  }) {
    this.urls = options.urls;
    this.#runners = options.runners;
    this.#engine = options.engine;
    this.#world = options.world;
    this.#tokens = options.tokens;
    this.#now = options.now;
    this.#pollTimeoutMs = options.pollTimeoutMs;
    // Three renewals fit in the offline window, so one late renewal does not take a runner offline.
    this.#renewIntervalMs = Math.max(5, Math.floor(options.offlineAfterMs / 3));
    this.#adminTokenFactory = options.adminToken;
    this.#adminTtlMs = options.adminTokenTtlMs ?? ADMIN_TOKEN_TTL_MS;
  }

  /** The scope of a live admin token (what the Actions service's runner scale set calls are made with). */
  adminScope(token: string): ScopeRef | undefined {
    const grant = this.#admin.get(token);
    return grant && grant.expiresAt > this.#now() ? grant.scope : undefined;
  }

  /** Token mode, step 1 (config.sh): trade a registration token for a short-lived admin token of its scope. */
  runnerRegistration(registrationToken: string, webUrl: string): RunnerRegistrationReply {
    const record = this.#tokens.check(registrationToken, 'registration');
    if (!record)
      throw fail(
        404,
        'invalid_registration_token',
        'Not Found: the registration token is invalid or expired',
      );
    const scope = this.parseWebUrl(webUrl);
    if (!scope || scopeKey(scope) !== record.scopeKey) {
      throw fail(
        404,
        'invalid_registration_token',
        'Not Found: the registration token does not belong to this URL',
      );
    }
    const ttl = this.#adminTtlMs;
    const issued = this.#adminTokenFactory?.(record.scope, ttl);
    const token = issued?.token ?? brokerToken();
    this.#admin.set(token, { scope: record.scope, expiresAt: issued?.expiresAt ?? this.#now() + ttl });
    return { url: this.urls.broker, token, token_schema: 'OAuthAccessToken' };
  }

  /** Token mode, step 2: register the runner with its own public key. */
  addAgent(adminToken: string, request: AddAgentRequest): AddAgentReply {
    const grant = this.#admin.get(adminToken);
    if (!grant || grant.expiresAt <= this.#now())
      throw fail(401, 'unauthorized', 'The admin token is invalid or expired');
    const group = this.#world
      .groups()
      .find((g) => g.name.toLowerCase() === request.runnerGroup.toLowerCase());
    if (!group)
      throw fail(
        404,
        'runner-group-not-found',
        `Could not find any self-hosted runner group named "${request.runnerGroup}".`,
      );
    if (grant.scope.kind === 'repo' && !group.isDefault) {
      throw fail(
        400,
        'runner_group_not_allowed',
        'Repository runners can only join the Default runner group.',
      );
    }
    let publicKey;
    try {
      publicKey = createPublicKey({
        key: {
          kty: 'RSA',
          n: Buffer.from(request.publicKey.modulus, 'base64').toString('base64url'),
          e: Buffer.from(request.publicKey.exponent, 'base64').toString('base64url'),
        },
        format: 'jwk',
      });
    } catch (cause) {
      throw new BrokerCallError(400, 'bad_public_key', 'The public key is not a valid RSA key', { cause });
    }
    const existing = this.#runners.registry.byName(scopeKey(grant.scope), request.name);
    if (existing) {
      if (!request.replace) throw fail(409, 'runner-name-exists', 'A runner exists with the same name');
      this.#runners.remove(existing);
    }
    const runner = this.#runners.create({
      scope: grant.scope,
      name: request.name,
      group,
      labels: request.labels,
      readOnlyLabels: request.noDefaultLabels ? [] : ['self-hosted', 'Linux', 'X64'],
      ephemeral: request.ephemeral,
      mode: 'token',
      publicKey,
    });
    runner.version = request.version;
    return {
      agentId: runner.id,
      agentName: runner.name,
      poolId: runner.groupId,
      poolName: runner.groupName,
      ephemeral: runner.ephemeral,
      serverUrl: this.urls.broker,
      gitHubUrl: scopeWebUrl(this.urls.web, runner.scope),
      clientId: runner.clientId,
      authorizationUrl: this.urls.token,
    };
  }

  /**
   * OAuth client-credentials grant with a JWT client assertion signed by the runner's RSA key (as actions/runner
   * does). A JIT registration is consumed here: the same JIT config cannot bring a second runner online.
   */
  exchangeToken(form: Record<string, string | undefined>): TokenReply {
    if (
      form.grant_type !== 'client_credentials' ||
      form.client_assertion_type !== CLIENT_ASSERTION_TYPE ||
      !form.client_assertion
    ) {
      throw fail(400, 'invalid_request', 'Expected a client_credentials grant with a JWT client assertion');
    }
    const parts = form.client_assertion.split('.');
    if (parts.length !== 3) throw fail(401, 'invalid_client', 'The client assertion is not a JWT');
    const [headerPart, claimsPart, signaturePart] = parts as [string, string, string];
    let header: Record<string, unknown>;
    let claims: Record<string, unknown>;
    try {
      header = JSON.parse(Buffer.from(headerPart, 'base64url').toString('utf8')) as Record<string, unknown>;
      claims = JSON.parse(Buffer.from(claimsPart, 'base64url').toString('utf8')) as Record<string, unknown>;
    } catch {
      throw fail(401, 'invalid_client', 'The client assertion is not a JWT');
    }
    const runner = typeof claims.sub === 'string' ? this.#runners.byClientId(claims.sub) : undefined;
    if (!runner || header.alg !== 'RS256') throw fail(401, 'invalid_client', 'Unknown runner credentials');
    const signed = verify(
      'RSA-SHA256',
      Buffer.from(`${headerPart}.${claimsPart}`),
      runner.publicKey,
      Buffer.from(signaturePart, 'base64url'),
    );
    if (!signed)
      throw fail(401, 'invalid_client', 'The client assertion signature does not match the registered key');
    const nowS = Math.floor(this.#now() / 1000);
    if (typeof claims.exp !== 'number' || claims.exp <= nowS)
      throw fail(401, 'invalid_client', 'The client assertion has expired');
    if (claims.aud !== this.urls.token)
      throw fail(401, 'invalid_client', 'The client assertion is for another audience');
    if (runner.mode === 'jit') {
      if (runner.jitConsumed)
        throw fail(401, 'invalid_client', 'This JIT configuration has already been used');
      runner.jitConsumed = true;
      runner.jitExpiresAt = null;
    }
    const token = brokerToken();
    this.#access.set(token, { runner, expiresAt: this.#now() + ACCESS_TOKEN_TTL_MS });
    return { access_token: token, token_type: 'bearer', expires_in: ACCESS_TOKEN_TTL_MS / 1000 };
  }

  createSession(accessToken: string, agent: AgentInfo): SessionReply {
    const runner = this.#authenticate(accessToken);
    if (runner.sessionId !== null && runner.status === 'online') {
      throw fail(409, 'session_conflict', `A session for runner ${runner.name} already exists.`);
    }
    runner.version = agent.version || runner.version;
    this.#runners.goOnline(runner, randomUUID());
    if (runner.jobId !== null) {
      const job = this.#engine.get(runner.jobId);
      if (job) this.#engine.markFound(job);
    }
    return {
      sessionId: runner.sessionId!,
      agent: { id: runner.id, name: runner.name },
      renewIntervalMs: this.#renewIntervalMs,
      pollTimeoutMs: this.#pollTimeoutMs,
    };
  }

  deleteSession(accessToken: string, sessionId: string): void {
    const runner = this.#authenticate(accessToken);
    if (runner.sessionId !== sessionId) throw fail(404, 'session_not_found', 'Session not found');
    this.#runners.goOffline(runner);
  }

  /** Long poll for a job. `signal` aborts the wait (the client went away). */
  async getMessage(
    accessToken: string,
    sessionId: string,
    waitMs: number,
    signal?: AbortSignal,
  ): Promise<JobMessage | null> {
    const runner = this.#session(accessToken, sessionId);
    if (runner.busy) return null;
    const wait = Math.max(0, Math.min(waitMs, this.#pollTimeoutMs));
    runner.connections++;
    try {
      // A second poll of the same runner (a client retry) ends the first one.
      if (this.#engine.isWaiting(runner)) this.#engine.stopWaiting(runner, null);
      const result = await new Promise<Job | 'gone' | null>((resolve) => {
        const timer = setTimeout(() => this.#engine.stopWaiting(runner, null), wait);
        const onAbort = () => this.#engine.stopWaiting(runner, null);
        const deliver = (r: Job | 'gone' | null) => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
          resolve(r);
        };
        this.#engine.wait(runner, deliver);
        if (!this.#engine.isWaiting(runner)) return;
        if (signal?.aborted) onAbort();
        else signal?.addEventListener('abort', onAbort, { once: true });
      });
      if (result === 'gone')
        throw fail(401, 'runner_deleted', 'The runner registration has been deleted from the server');
      if (!result) return null;
      return {
        messageType: 'RunnerJobRequest',
        jobId: result.id,
        runId: result.runId,
        jobName: result.name,
        owner: result.repo.owner.login,
        repo: result.repo.name,
        labels: [...result.labels],
        durationMs: result.durationMs,
        outcome: result.outcome,
      };
    } finally {
      runner.connections--;
      runner.lastSeenAt = this.#now();
    }
  }

  /** Keeps a running job alive; waits up to waitMs and returns early when the job ends on the server. */
  async renewJob(
    accessToken: string,
    jobId: number,
    waitMs: number,
    signal?: AbortSignal,
  ): Promise<RenewReply> {
    const runner = this.#authenticate(accessToken);
    runner.lastSeenAt = this.#now();
    const job = this.#engine.get(jobId);
    if (!job || job.runnerId !== runner.id || job.status !== 'in_progress') return { cancelled: true };
    this.#engine.markFound(job);
    const wait = Math.max(0, Math.min(waitMs, this.#renewIntervalMs));
    runner.connections++;
    try {
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          unwatch();
          signal?.removeEventListener('abort', done);
          resolve();
        };
        const timer = setTimeout(done, wait);
        const unwatch = this.#engine.watch(job, done);
        if (signal?.aborted) done();
        else signal?.addEventListener('abort', done, { once: true });
      });
    } finally {
      runner.connections--;
      runner.lastSeenAt = this.#now();
    }
    return { cancelled: job.status !== 'in_progress' || job.runnerId !== runner.id };
  }

  completeJob(accessToken: string, jobId: number, conclusion: string): CompleteReply {
    const runner = this.#authenticate(accessToken);
    if (conclusion !== 'success' && conclusion !== 'failure' && conclusion !== 'cancelled') {
      throw fail(400, 'bad_conclusion', 'conclusion must be success, failure or cancelled');
    }
    runner.lastSeenAt = this.#now();
    const job = this.#engine.get(jobId);
    if (!job || job.runnerId !== runner.id) throw fail(404, 'job_not_found', 'Job not found for this runner');
    this.#engine.complete(job, conclusion, runner);
    if (runner.jobId === job.id) {
      runner.busy = false;
      runner.jobId = null;
    }
    if (runner.ephemeral) {
      // GitHub removes an ephemeral runner's registration once its one job is done.
      this.#runners.remove(runner);
      return { runnerDeleted: true };
    }
    return { runnerDeleted: false };
  }

  /** Web URL of a scope (config.sh --url) to the scope: /ORG, /OWNER/REPO, /enterprises/ENT. */
  parseWebUrl(webUrl: string): ScopeRef | undefined {
    let path: string;
    try {
      const url = new URL(webUrl);
      if (url.origin !== new URL(this.urls.web).origin) return undefined;
      path = url.pathname;
    } catch {
      return undefined;
    }
    const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
    if (parts.length === 2 && parts[0] === 'enterprises') {
      return parts[1]!.toLowerCase() === this.#world.enterprise.slug.toLowerCase()
        ? { kind: 'enterprise', enterprise: this.#world.enterprise.slug }
        : undefined;
    }
    if (parts.length === 1) {
      const org = this.#world.org(parts[0]!);
      return org ? { kind: 'org', org: org.login } : undefined;
    }
    if (parts.length === 2) {
      const repo = this.#world.repo(parts[0]!, parts[1]!, this.#now());
      return repo ? { kind: 'repo', owner: repo.owner.login, repo: repo.name } : undefined;
    }
    return undefined;
  }

  clear(): void {
    this.#access.clear();
    this.#admin.clear();
  }

  #authenticate(accessToken: string): Runner {
    const grant = this.#access.get(accessToken);
    if (!grant || grant.expiresAt <= this.#now())
      throw fail(401, 'unauthorized', 'The access token is invalid or expired');
    if (!this.#runners.isRegistered(grant.runner)) {
      this.#access.delete(accessToken);
      throw fail(401, 'runner_deleted', 'The runner registration has been deleted from the server');
    }
    return grant.runner;
  }

  #session(accessToken: string, sessionId: string): Runner {
    const runner = this.#authenticate(accessToken);
    if (runner.sessionId !== sessionId) throw fail(404, 'session_not_found', 'Session not found or expired');
    runner.lastSeenAt = this.#now();
    return runner;
  }

  /** Drops expired grants and grants of removed runners; called by the sweeper, never on a request path. */
  sweep(): void {
    const now = this.#now();
    for (const [t, g] of this.#access)
      if (g.expiresAt <= now || !this.#runners.isRegistered(g.runner)) this.#access.delete(t);
    for (const [t, g] of this.#admin) if (g.expiresAt <= now) this.#admin.delete(t);
  }
}
