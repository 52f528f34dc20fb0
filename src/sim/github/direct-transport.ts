/**
 * The broker protocol by direct calls, for emulated runners hosted in the simulator's own process (the simulated
 * cloud). It reaches the same Broker methods as the HTTP routes, so the same credentials are checked; it only skips
 * the sockets, which lets thousands of runners live on two cores.
 */
import type { Broker } from './broker.js';
import type {
  AddAgentReply,
  AddAgentRequest,
  AgentInfo,
  BrokerTransport,
  CompleteReply,
  JobMessage,
  RenewReply,
  RunnerRegistrationReply,
  SessionReply,
  TokenReply,
} from '../runner/protocol.js';
import { BrokerCallError } from '../runner/protocol.js';

/** Calls are asynchronous like HTTP ones (never re-entrant within the caller's tick). */
const async = <T>(fn: () => T): Promise<T> => Promise.resolve().then(fn);

export class DirectTransport implements BrokerTransport {
  readonly #broker: Broker;

  constructor(broker: Broker) {
    this.#broker = broker;
  }

  /** A URL that does not point at this simulator is as unreachable as a wrong host. */
  #check(url: string): void {
    let origin: string;
    try {
      origin = new URL(url).origin;
    } catch {
      throw new BrokerCallError(0, 'unreachable', `cannot reach ${url}`);
    }
    if (origin !== new URL(this.#broker.urls.web).origin)
      throw new BrokerCallError(0, 'unreachable', `cannot reach ${origin}`);
  }

  /** Checks the URL and makes the broker call on a later tick, never within the caller's (as over HTTP). */
  #via<T>(url: string, call: () => T): Promise<T> {
    return async(() => {
      this.#check(url);
      return call();
    });
  }

  runnerRegistration(
    apiUrl: string,
    registrationToken: string,
    webUrl: string,
  ): Promise<RunnerRegistrationReply> {
    return this.#via(apiUrl, () => this.#broker.runnerRegistration(registrationToken, webUrl));
  }

  addAgent(serverUrl: string, adminToken: string, request: AddAgentRequest): Promise<AddAgentReply> {
    return this.#via(serverUrl, () => this.#broker.addAgent(adminToken, request));
  }

  exchangeToken(authorizationUrl: string, clientAssertion: string): Promise<TokenReply> {
    return this.#via(authorizationUrl, () =>
      this.#broker.exchangeToken({
        grant_type: 'client_credentials',
        client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
        client_assertion: clientAssertion,
      }),
    );
  }

  createSession(serverUrl: string, accessToken: string, agent: AgentInfo): Promise<SessionReply> {
    return this.#via(serverUrl, () => this.#broker.createSession(accessToken, agent));
  }

  deleteSession(serverUrl: string, accessToken: string, sessionId: string): Promise<void> {
    return this.#via(serverUrl, () => this.#broker.deleteSession(accessToken, sessionId));
  }

  async getMessage(
    serverUrl: string,
    accessToken: string,
    sessionId: string,
    waitMs: number,
    signal: AbortSignal,
  ): Promise<JobMessage | null> {
    await async(() => this.#check(serverUrl));
    return this.#broker.getMessage(accessToken, sessionId, waitMs, signal);
  }

  async renewJob(
    serverUrl: string,
    accessToken: string,
    jobId: number,
    waitMs: number,
    signal: AbortSignal,
  ): Promise<RenewReply> {
    await async(() => this.#check(serverUrl));
    return this.#broker.renewJob(accessToken, jobId, waitMs, signal);
  }

  completeJob(
    serverUrl: string,
    accessToken: string,
    jobId: number,
    conclusion: 'success' | 'failure' | 'cancelled',
  ): Promise<CompleteReply> {
    return this.#via(serverUrl, () => this.#broker.completeJob(accessToken, jobId, conclusion));
  }
}
