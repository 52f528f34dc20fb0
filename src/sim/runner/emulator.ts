/**
 * An emulated actions/runner. From the outside it behaves like the real one: it starts from a JIT config (or a
 * config step with a registration token), authenticates with the RSA credentials it holds, opens a session,
 * long-polls for a job, runs it (sleeps for the job's duration while renewing it), reports the result, and exits
 * 0 after one job when ephemeral. Exit codes are the real runner's (exit-codes.ts).
 *
 * Stopping: aborting `signal` stops it like SIGINT/SIGTERM (the session is deleted; a running job is reported as
 * failed). An abort whose reason is the string 'SIGKILL' makes it vanish without another call, like a killed
 * process: the broker then takes the runner offline and fails its job after the timeout.
 */
import type { KeyObject } from 'node:crypto';
import { clientAssertion, newRunnerKey, privateKeyFromParams } from './credentials.js';
import { ExitCode } from './exit-codes.js';
import { HttpTransport } from './http-transport.js';
import { decodeJitConfig } from './jit-config.js';
import type { BrokerTransport, JobMessage, SessionReply } from './protocol.js';
import { BrokerCallError } from './protocol.js';
import { sleepUnlessAborted } from '../../lib/async.js';

export const EMULATOR_VERSION = '2.330.0';

export type EmulatorRegistration =
  | { readonly jitConfig: string }
  | {
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
    };

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

  #fromJitConfig(encoded: string): Identity {
    let decoded;
    let key: KeyObject;
    try {
      decoded = decodeJitConfig(encoded);
      key = privateKeyFromParams(decoded.rsaParams);
    } catch (error) {
      this.#log(
        `The JIT configuration is invalid: ${error instanceof Error ? error.message : String(error)}`,
      );
      throw new Stop(ExitCode.TerminatedError);
    }
    this.#log(
      `Runner ${decoded.settings.agentName} (id ${decoded.settings.agentId}) starting from a JIT configuration`,
    );
    return {
      runnerId: decoded.settings.agentId,
      runnerName: decoded.settings.agentName,
      serverUrl: decoded.settings.serverUrl,
      ephemeral: decoded.settings.ephemeral,
      clientId: decoded.credentials.clientId,
      authorizationUrl: decoded.credentials.authorizationUrl,
      key,
      mode: 'jit',
    };
  }

  /** config.sh: trade the registration token for a runner registration with our own key. */
  async #configure(): Promise<Identity> {
    const reg = this.#registration as Exclude<EmulatorRegistration, { jitConfig: string }>;
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

  async #runJob(identity: Identity, message: JobMessage): Promise<'success' | 'failure' | 'cancelled'> {
    this.#log(`Running job: ${message.jobName}`);
    this.#onEvent({ type: 'job-started', jobId: message.jobId });
    const end = this.#now() + message.durationMs;
    const session = this.#session!;
    for (;;) {
      if (this.#signal.aborted) {
        if (!this.#killed) this.#log('The runner has received a shutdown signal.');
        return 'failure';
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

  async #complete(identity: Identity, message: JobMessage, conclusion: 'success' | 'failure' | 'cancelled') {
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

const RESULT_WORDS = { success: 'Succeeded', failure: 'Failed', cancelled: 'Canceled' } as const;
