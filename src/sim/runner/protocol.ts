/**
 * The runner broker protocol between an emulated runner and the simulator (documented in docs/simulator.md). Two
 * transports carry it: HTTP (any process) and direct calls (runners hosted inside the simulator's process). Both
 * reach the same broker methods, so both go through the same credential checks.
 */

/** POST {api}/actions/runner-registration (Authorization: RemoteAuth <registration token>). */
export interface RunnerRegistrationReply {
  /** Broker base URL (the runner's serverUrl), ending in `/`. */
  readonly url: string;
  /** Short-lived token allowed to add one runner to the scope. Secret. */
  readonly token: string;
  readonly token_schema: 'OAuthAccessToken';
}

/** POST {serverUrl}agents: the config step of token mode. */
export interface AddAgentRequest {
  readonly name: string;
  readonly labels: readonly string[];
  readonly runnerGroup: string;
  readonly ephemeral: boolean;
  readonly noDefaultLabels: boolean;
  readonly replace: boolean;
  /** Public half of the runner's own RSA key (base64 big-endian integers, as in `.credentials_rsaparams`). */
  readonly publicKey: { readonly modulus: string; readonly exponent: string };
  readonly version: string;
}

export interface AddAgentReply {
  readonly agentId: number;
  readonly agentName: string;
  readonly poolId: number;
  readonly poolName: string;
  readonly ephemeral: boolean;
  readonly serverUrl: string;
  readonly gitHubUrl: string;
  readonly clientId: string;
  readonly authorizationUrl: string;
}

export interface TokenReply {
  readonly access_token: string;
  readonly token_type: 'bearer';
  readonly expires_in: number;
}

export interface SessionReply {
  readonly sessionId: string;
  readonly agent: { readonly id: number; readonly name: string };
  /** How often a running job must be renewed: the runner is offline when it is not heard from for longer. */
  readonly renewIntervalMs: number;
  /** Longest long poll the broker honours. */
  readonly pollTimeoutMs: number;
}

export interface JobMessage {
  readonly messageType: 'RunnerJobRequest';
  readonly jobId: number;
  readonly runId: number;
  readonly jobName: string;
  readonly owner: string;
  readonly repo: string;
  readonly labels: readonly string[];
  readonly durationMs: number;
  /** Conclusion to report when the job runs to its end. */
  readonly outcome: 'success' | 'failure';
}

export interface RenewReply {
  /** The job ended on the server side (cancelled, or failed after the runner was lost): stop running it. */
  readonly cancelled: boolean;
}

export interface CompleteReply {
  /** The registration was removed (ephemeral runner after its job). */
  readonly runnerDeleted: boolean;
}

export interface AgentInfo {
  readonly name: string;
  readonly version: string;
  readonly osDescription: string;
}

/** Error of a broker call. status 0: the broker could not be reached. */
export class BrokerCallError extends Error {
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'BrokerCallError';
    this.status = status;
    this.code = code;
  }
}

export interface BrokerTransport {
  runnerRegistration(
    apiUrl: string,
    registrationToken: string,
    webUrl: string,
  ): Promise<RunnerRegistrationReply>;
  addAgent(serverUrl: string, adminToken: string, request: AddAgentRequest): Promise<AddAgentReply>;
  exchangeToken(authorizationUrl: string, clientAssertion: string): Promise<TokenReply>;
  createSession(serverUrl: string, accessToken: string, agent: AgentInfo): Promise<SessionReply>;
  deleteSession(serverUrl: string, accessToken: string, sessionId: string): Promise<void>;
  /** Long poll; null when nothing arrived within waitMs. */
  getMessage(
    serverUrl: string,
    accessToken: string,
    sessionId: string,
    waitMs: number,
    signal: AbortSignal,
  ): Promise<JobMessage | null>;
  /** Long poll up to waitMs; returns early when the job ends on the server side. */
  renewJob(
    serverUrl: string,
    accessToken: string,
    jobId: number,
    waitMs: number,
    signal: AbortSignal,
  ): Promise<RenewReply>;
  completeJob(
    serverUrl: string,
    accessToken: string,
    jobId: number,
    conclusion: 'success' | 'failure' | 'cancelled',
  ): Promise<CompleteReply>;
}
