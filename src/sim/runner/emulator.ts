/**
 * An emulated actions/runner. From the outside it behaves like the real one: it starts from a JIT config (or a
 * config step with a registration token), authenticates with the RSA credentials it holds, opens a session,
 * long-polls for a job, runs it (sleeps for the job's duration while renewing it), reports the result, and exits
 * 0 after one job when ephemeral. Exit codes are the real runner's (exit-codes.ts).
 *
 * Stopping: aborting `signal` stops it like SIGINT/SIGTERM (the session is deleted; a running job is reported as
 * failed). An abort whose reason is the string 'SIGKILL' makes it vanish without another call, like a killed
 * process: the broker then takes the runner offline and fails its job after the timeout.
 *
 * Job hooks: like actions/runner with ACTIONS_RUNNER_HOOK_JOB_STARTED / _COMPLETED, it runs `bash -e <script>` before
 * and after each job it takes (hooks.ts), renewing the job meanwhile. A failing started hook fails the job without
 * running it; a failing completed hook fails the job.
 */
import type { KeyObject } from 'node:crypto';
import { clientAssertion, newRunnerKey, privateKeyFromParams, rsaParamsOf } from './credentials.js';
import type { RunnerConfigFiles } from './config-files.js';
import { ExitCode } from './exit-codes.js';
import { runJobHook } from './hooks.js';
import type { JobHooks } from './hooks.js';
import { HttpTransport } from './http-transport.js';
import { decodeJitConfig } from './jit-config.js';
import type { DecodedJitConfig } from './jit-config.js';
import type { BrokerTransport, JobMessage, SessionReply } from './protocol.js';
import { BrokerCallError } from './protocol.js';
import { sleepUnlessAborted } from '../../lib/async.js';

export const EMULATOR_VERSION = '2.330.0';

/** Token mode: what config.sh takes. */
export interface TokenRegistration {
  /** Web URL of the scope: <server>/ORG, <server>/OWNER/REPO or <server>/enterprises/ENT. */
  readonly url: string;
  /** Registration token. Secret. */
  readonly token: string;
  readonly name: string;
  readonly labels?: readonly string[];
  readonly runnerGroup?: string;
  readonly ephemeral?: boolean;
  readonly noDefaultLabels?: boolean;
  readonly replace?: boolean;
}

export type EmulatorRegistration =
  | { readonly jitConfig: string }
  /** The settings config.sh wrote (`.runner`, `.credentials`, `.credentials_rsaparams`): run.sh after config.sh. */
  | { readonly configured: DecodedJitConfig }
  | TokenRegistration;

export type EmulatorEvent =
  | { readonly type: 'configured'; readonly runnerId: number; readonly runnerName: string }
  | { readonly type: 'online'; readonly runnerId: number; readonly runnerName: string }
  | { readonly type: 'job-started'; readonly jobId: number }
  | { readonly type: 'job-completed'; readonly jobId: number; readonly conclusion: string };

export interface EmulatorOptions {
  readonly signal?: AbortSignal;
  /** fetch for the HTTP transport. */
  readonly fetch?: typeof fetch;
  /** Transport to the broker; default HTTP. The simulator passes a direct one to runners it hosts. */
  readonly transport?: BrokerTransport;
  /** One line per event, for stderr or a log file. Never receives a secret. */
  readonly log?: (line: string) => void;
  readonly onEvent?: (event: EmulatorEvent) => void;
  readonly now?: () => number;
  /** How long unreachable or failing broker calls are retried before exiting 2. Default 60 s. */
  readonly retryBudgetMs?: number;
  /** Scripts run before and after each job, as ACTIONS_RUNNER_HOOK_JOB_STARTED / _COMPLETED make actions/runner do. */
  readonly hooks?: JobHooks;
}

/** What `configureEmulatedRunner` (config.sh) did: exit code, and the runner's settings files when it succeeded. */
export interface ConfigureResult {
  readonly exitCode: number;
  /** Contains the runner's private key: write it where only the runner can read it. */
  readonly files?: RunnerConfigFiles;
}

/**
 * config.sh alone: trades the registration token for a runner registration with a key of its own and returns the
 * files the real config.sh writes, from which a later run (`{ configured }`) starts, any number of times.
 */
export async function configureEmulatedRunner(
  registration: TokenRegistration,
  options: EmulatorOptions = {},
): Promise<ConfigureResult> {
  const runner = new EmulatedRunner(registration, options);
  try {
    return { exitCode: ExitCode.Success, files: await runner.configureOnly() };
  } catch (error) {
    if (error instanceof Stop) return { exitCode: error.exitCode };
    options.log?.(`Configuration failed: ${error instanceof Error ? error.message : String(error)}`);
    return { exitCode: ExitCode.TerminatedError };
  }
}

class Stop extends Error {
  constructor(readonly exitCode: number) {
    super(`stop ${exitCode}`);
  }
}

/** The signal fired during a broker call. */
class Aborted extends Error {}

const KILL = 'SIGKILL';
const SESSION_CONFLICT_RETRIES = 3;

export async function runEmulatedRunner(
  registration: EmulatorRegistration,
  options: EmulatorOptions = {},
): Promise<number> {
  const runner = new EmulatedRunner(registration, options);
  try {
    return await runner.run();
  } catch (error) {
    if (error instanceof Stop) return error.exitCode;
    options.log?.(`Runner failed: ${error instanceof Error ? error.message : String(error)}`);
    return ExitCode.TerminatedError;
  }
}

interface Identity {
  runnerId: number;
  runnerName: string;
  poolId: number;
  poolName: string;
  gitHubUrl: string;
  serverUrl: string;
  ephemeral: boolean;
  clientId: string;
  authorizationUrl: string;
  key: KeyObject;
  mode: 'jit' | 'token';
}

class EmulatedRunner {
  readonly #registration: EmulatorRegistration;
  readonly #transport: BrokerTransport;
  readonly #signal: AbortSignal;
  readonly #log: (line: string) => void;
  readonly #onEvent: (event: EmulatorEvent) => void;
  readonly #now: () => number;
  readonly #retryBudgetMs: number;
  readonly #hooks: JobHooks;
  #accessToken = '';
  #session: SessionReply | null = null;

  constructor(registration: EmulatorRegistration, options: EmulatorOptions) {
    this.#registration = registration;
    this.#transport = options.transport ?? new HttpTransport(options.fetch);
    this.#signal = options.signal ?? new AbortController().signal;
    this.#log = options.log ?? (() => undefined);
    this.#onEvent = options.onEvent ?? (() => undefined);
    this.#now = options.now ?? Date.now;
    this.#retryBudgetMs = options.retryBudgetMs ?? 60_000;
    this.#hooks = options.hooks ?? {};
  }

  get #killed(): boolean {
    return this.#signal.aborted && this.#signal.reason === KILL;
  }

  async run(): Promise<number> {
    let identity: Identity;
    try {
      identity =
        'jitConfig' in this.#registration
          ? this.#fromJitConfig(this.#registration.jitConfig)
          : 'configured' in this.#registration
            ? this.#fromSettings(this.#registration.configured, 'token')
            : await this.#configure();
      if (this.#signal.aborted) throw new Aborted();
      await this.#authenticate(identity);
      await this.#openSession(identity);
    } catch (error) {
      if (error instanceof Aborted) return this.#killed ? 137 : ExitCode.Success;
      throw error;
    }
    this.#log(`√ Connected to GitHub`);
    this.#log(`Listening for Jobs`);
    this.#onEvent({ type: 'online', runnerId: identity.runnerId, runnerName: identity.runnerName });
    try {
      while (!this.#signal.aborted) {
        const message = await this.#poll(identity);
        if (!message) continue;
        const conclusion = await this.#runJob(identity, message);
        if (this.#killed) return 137;
        const reply = await this.#complete(identity, message, conclusion);
        if (identity.ephemeral || reply.runnerDeleted) {
          this.#log('Runner is ephemeral: exiting after its job');
          return ExitCode.Success;
        }
      }
    } catch (error) {
      if (!(error instanceof Aborted)) throw error;
    }
    return this.#stop(identity);
  }

  /** config.sh's part, without running: the settings files of the new registration. */
  async configureOnly(): Promise<RunnerConfigFiles> {
    const identity = await this.#configure();
    return {
      runner: {
        agentId: identity.runnerId,
        agentName: identity.runnerName,
        poolId: identity.poolId,
        poolName: identity.poolName,
        serverUrl: identity.serverUrl,
        gitHubUrl: identity.gitHubUrl,
        workFolder: '_work',
        ephemeral: identity.ephemeral,
      },
      credentials: {
        scheme: 'OAuth',
        data: { clientId: identity.clientId, authorizationUrl: identity.authorizationUrl },
      },
      rsaParams: rsaParamsOf(identity.key),
    };
  }

  #fromJitConfig(encoded: string): Identity {
    let decoded;
    try {
      decoded = decodeJitConfig(encoded);
    } catch (error) {
      this.#log(
        `The JIT configuration is invalid: ${error instanceof Error ? error.message : String(error)}`,
      );
      throw new Stop(ExitCode.TerminatedError);
    }
    return this.#fromSettings(decoded, 'jit');
  }

  #fromSettings(decoded: DecodedJitConfig, mode: 'jit' | 'token'): Identity {
    let key: KeyObject;
    try {
      key = privateKeyFromParams(decoded.rsaParams);
    } catch (error) {
      this.#log(`The runner's key is invalid: ${error instanceof Error ? error.message : String(error)}`);
      throw new Stop(ExitCode.TerminatedError);
    }
    this.#log(
      mode === 'jit'
        ? `Runner ${decoded.settings.agentName} (id ${decoded.settings.agentId}) starting from a JIT configuration`
        : `Runner ${decoded.settings.agentName} (id ${decoded.settings.agentId}) starting from its settings`,
    );
    return {
      runnerId: decoded.settings.agentId,
      runnerName: decoded.settings.agentName,
      poolId: decoded.settings.poolId,
      poolName: decoded.settings.poolName,
      gitHubUrl: decoded.settings.gitHubUrl,
      serverUrl: decoded.settings.serverUrl,
      ephemeral: decoded.settings.ephemeral,
      clientId: decoded.credentials.clientId,
      authorizationUrl: decoded.credentials.authorizationUrl,
      key,
      mode,
    };
  }

  /** config.sh: trade the registration token for a runner registration with our own key. */
  async #configure(): Promise<Identity> {
    const reg = this.#registration as TokenRegistration;
    let web: URL;
    try {
      web = new URL(reg.url);
    } catch {
      this.#log(`Invalid configuration URL: ${reg.url}`);
      throw new Stop(ExitCode.TerminatedError);
    }
    if (!reg.name || !reg.token) {
      this.#log('A runner name and a registration token are required');
      throw new Stop(ExitCode.TerminatedError);
    }
    // Like the runner: github.com registers through api.github.com, any other host through <host>/api/v3.
    const apiUrl = /^(www\.)?github\.com$/i.test(web.hostname)
      ? 'https://api.github.com'
      : `${web.origin}/api/v3`;
    const registration = await this.#call('register', () =>
      this.#transport.runnerRegistration(apiUrl, reg.token, reg.url),
    );
    const { privateKey, modulus, exponent } = await newRunnerKey();
    const agent = await this.#call('add runner', () =>
      this.#transport.addAgent(registration.url, registration.token, {
        name: reg.name,
        labels: reg.labels ?? [],
        runnerGroup: reg.runnerGroup ?? 'Default',
        ephemeral: reg.ephemeral ?? false,
        noDefaultLabels: reg.noDefaultLabels ?? false,
        replace: reg.replace ?? false,
        publicKey: { modulus, exponent },
        version: EMULATOR_VERSION,
      }),
    );
    this.#log(`Runner successfully added: ${agent.agentName} (id ${agent.agentId})`);
    this.#onEvent({ type: 'configured', runnerId: agent.agentId, runnerName: agent.agentName });
    return {
      runnerId: agent.agentId,
      runnerName: agent.agentName,
      poolId: agent.poolId,
      poolName: agent.poolName,
      gitHubUrl: agent.gitHubUrl,
      serverUrl: agent.serverUrl,
      ephemeral: agent.ephemeral,
      clientId: agent.clientId,
      authorizationUrl: agent.authorizationUrl,
      key: privateKey,
      mode: 'token',
    };
  }

  async #authenticate(identity: Identity): Promise<void> {
    const reply = await this.#call('authenticate', () =>
      this.#transport.exchangeToken(
        identity.authorizationUrl,
        clientAssertion(identity.clientId, identity.authorizationUrl, identity.key, this.#now()),
      ),
    );
    this.#accessToken = reply.access_token;
  }

  async #openSession(identity: Identity): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        this.#session = await this.#call('create session', () =>
          this.#transport.createSession(identity.serverUrl, this.#accessToken, {
            name: identity.runnerName,
            version: EMULATOR_VERSION,
            osDescription: `${process.platform} ${process.arch}`,
          }),
        );
        return;
      } catch (error) {
        if (!(error instanceof BrokerCallError) || error.status !== 409) throw error;
        if (attempt >= SESSION_CONFLICT_RETRIES) {
          this.#log('A session for this runner already exists.');
          throw new Stop(ExitCode.SessionConflict);
        }
        await this.#sleep(1_000 * (attempt + 1));
      }
    }
  }

  async #poll(identity: Identity): Promise<JobMessage | null> {
    const session = this.#session!;
    try {
      return await this.#call('get message', () =>
        this.#transport.getMessage(
          identity.serverUrl,
          this.#accessToken,
          session.sessionId,
          session.pollTimeoutMs,
          this.#signal,
        ),
      );
    } catch (error) {
      if (error instanceof BrokerCallError && error.status === 404) {
        // The broker dropped our session (we were silent too long): open a new one, as the runner does.
        this.#log('Session expired: creating a new session');
        await this.#openSession(identity);
        return null;
      }
      throw error;
    }
  }

  async #runJob(identity: Identity, message: JobMessage): Promise<Conclusion> {
    this.#log(`Running job: ${message.jobName}`);
    this.#onEvent({ type: 'job-started', jobId: message.jobId });
    let conclusion: Conclusion | 'aborted';
    const started = await this.#hook('started', identity, message);
    if (started === 'ok') conclusion = await this.#runSteps(identity, message);
    else if (started === 'failed') conclusion = 'failure';
    else return started === 'cancelled' ? 'cancelled' : 'failure';
    if (conclusion === 'aborted') return 'failure';
    const completed = await this.#hook('completed', identity, message);
    if (completed === 'aborted') return 'failure';
    if (completed === 'cancelled') return 'cancelled';
    return completed === 'failed' && conclusion === 'success' ? 'failure' : conclusion;
  }

  /**
   * Runs a job hook, if one is set, renewing the job while it runs (the broker would take a silent runner offline).
   * 'failed' is a non-zero exit; 'cancelled' the job ended on the server; 'aborted' the runner is stopping.
   */
  async #hook(
    which: 'started' | 'completed',
    identity: Identity,
    message: JobMessage,
  ): Promise<'ok' | 'failed' | 'cancelled' | 'aborted'> {
    const script = which === 'started' ? this.#hooks.jobStarted : this.#hooks.jobCompleted;
    if (script === undefined || script === '') return 'ok';
    if (this.#signal.aborted) return 'aborted';
    const env: Record<string, string | undefined> = {
      ...this.#hooks.env,
      CI: 'true',
      GITHUB_ACTIONS: 'true',
      GITHUB_JOB: message.jobName,
      GITHUB_RUN_ID: String(message.runId),
      GITHUB_REPOSITORY: `${message.owner}/${message.repo}`,
      GITHUB_REPOSITORY_OWNER: message.owner,
      RUNNER_NAME: identity.runnerName,
    };
    this.#log(`Running the job ${which} hook: ${script}`);
    const stop = new AbortController();
    const abort = () => stop.abort();
    this.#signal.addEventListener('abort', abort, { once: true });
    let code: number | undefined;
    const exited = runJobHook(script, {
      env,
      signal: stop.signal,
      log: (line) => this.#log(`[job ${which} hook] ${line}`),
    }).then((c) => {
      code = c;
    });
    try {
      const session = this.#session!;
      while (code === undefined) {
        const renewal = this.#call('renew job', () =>
          this.#transport.renewJob(
            identity.serverUrl,
            this.#accessToken,
            message.jobId,
            session.renewIntervalMs,
            this.#signal,
          ),
        );
        const first = await Promise.race([exited.then(() => 'exited' as const), renewal]).catch((error) => {
          if (error instanceof Aborted) return 'aborted' as const;
          throw error;
        });
        if (first === 'exited') {
          // The renewal in flight ends by itself within the renew interval; nothing waits for it.
          renewal.catch(() => undefined);
          break;
        }
        if (first === 'aborted' || this.#signal.aborted) {
          stop.abort();
          await exited;
          return 'aborted';
        }
        if (first.cancelled) {
          this.#log(`The job ended while its ${which} hook ran`);
          stop.abort();
          await exited;
          return 'cancelled';
        }
      }
    } finally {
      this.#signal.removeEventListener('abort', abort);
    }
    if (this.#signal.aborted) return 'aborted';
    if (code === 0) return 'ok';
    this.#log(
      which === 'started'
        ? `The job started hook failed with exit code ${code}: the job does not run`
        : `The job completed hook failed with exit code ${code}: the job fails`,
    );
    return 'failed';
  }

  /** The job itself: it "runs" for its duration, renewing its lock, unless it is cancelled or the runner stops. */
  async #runSteps(identity: Identity, message: JobMessage): Promise<Conclusion | 'aborted'> {
    const end = this.#now() + message.durationMs;
    const session = this.#session!;
    for (;;) {
      if (this.#signal.aborted) {
        if (!this.#killed) this.#log('The runner has received a shutdown signal.');
        return 'aborted';
      }
      const remaining = end - this.#now();
      if (remaining <= 0) return message.outcome;
      let reply;
      try {
        reply = await this.#call('renew job', () =>
          this.#transport.renewJob(
            identity.serverUrl,
            this.#accessToken,
            message.jobId,
            Math.min(remaining, session.renewIntervalMs),
            this.#signal,
          ),
        );
      } catch (error) {
        if (error instanceof Aborted) continue;
        throw error;
      }
      if (reply.cancelled) return 'cancelled';
    }
  }

  async #complete(identity: Identity, message: JobMessage, conclusion: Conclusion) {
    try {
      const reply = await this.#call('complete job', () =>
        this.#transport.completeJob(identity.serverUrl, this.#accessToken, message.jobId, conclusion),
      );
      this.#log(`Job ${message.jobName} completed with result: ${RESULT_WORDS[conclusion]}`);
      this.#onEvent({ type: 'job-completed', jobId: message.jobId, conclusion });
      return reply;
    } catch (error) {
      // The job ended on the server already (cancelled, or failed while we were unreachable).
      if (error instanceof BrokerCallError && error.status === 404) return { runnerDeleted: false };
      throw error;
    }
  }

  async #stop(identity: Identity): Promise<number> {
    if (this.#killed) return 137;
    this.#log('Exiting...');
    const session = this.#session;
    if (session) {
      try {
        await this.#transport.deleteSession(identity.serverUrl, this.#accessToken, session.sessionId);
      } catch {
        // Best effort: the broker takes a silent runner offline anyway.
      }
    }
    return ExitCode.Success;
  }

  /** Runs a broker call, retrying transient failures; maps final failures to the runner's exit codes. */
  async #call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    const deadline = this.#now() + this.#retryBudgetMs;
    for (let attempt = 0; ; attempt++) {
      try {
        return await fn();
      } catch (error) {
        if (!(error instanceof BrokerCallError)) throw error;
        if (this.#signal.aborted) throw new Aborted();
        const transient = error.status === 0 || error.status === 429 || error.status >= 500;
        if (!transient) {
          if (error.status === 401) {
            this.#log(`${what} refused: ${error.message}`);
            throw new Stop(ExitCode.TerminatedError);
          }
          if (error.status === 409 || error.status === 404) {
            if (what === 'register' || what === 'add runner') {
              this.#log(`${what} failed: ${error.message}`);
              throw new Stop(ExitCode.TerminatedError);
            }
          }
          throw error;
        }
        if (this.#now() >= deadline) {
          this.#log(`${what} failed: ${error.message}; giving up`);
          throw new Stop(ExitCode.RetryableError);
        }
        await this.#sleep(Math.min(5_000, 250 * 2 ** attempt));
      }
    }
  }

  #sleep(ms: number): Promise<void> {
    return sleepUnlessAborted(ms, this.#signal);
  }
}

type Conclusion = 'success' | 'failure' | 'cancelled';

const RESULT_WORDS = { success: 'Succeeded', failure: 'Failed', cancelled: 'Canceled' } as const;
