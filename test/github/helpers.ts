/** Shared pieces of the GitHub client tests: a simulator, a client wired to it, and a record of every call. */
import { Writable } from 'node:stream';
import type { GitHubAuthConfig, GitHubConfig } from '../../src/core/fleet-config.js';
import { createGitHubClient } from '../../src/github/client.js';
import type { GitHubClient, GitHubClientOptions } from '../../src/github/client.js';
import type { FetchLike } from '../../src/github/transport.js';
import { startSimulator } from '../../src/sim/github/index.js';
import type { Simulator, SimulatorOptions } from '../../src/sim/github/index.js';
import { configSecrets, createLogger } from '../../src/telemetry/logger.js';

/** A clock both the simulator and the client read, so token expiry can be reached without waiting. */
export class TestClock {
  offsetMs = 0;
  readonly now = (): number => Date.now() + this.offsetMs;
  advance(ms: number): void {
    this.offsetMs += ms;
  }
}

export async function startSim(options: SimulatorOptions = {}): Promise<Simulator> {
  return startSimulator({
    runnerGroups: ['linux', 'GPU Runners'],
    orgs: ['octo-org', 'other-org'],
    ...options,
  });
}

export interface SentRequest {
  readonly method: string;
  readonly url: string;
  readonly body: string | null;
}

export interface TestClient {
  readonly client: GitHubClient;
  /** `METHOD /route/{template} STATUS`, one per HTTP attempt, as the client's onApiCall hook saw them. */
  readonly calls: string[];
  /** Raw requests as they left the client (for checking them against GitHub's OpenAPI description). */
  readonly sent: SentRequest[];
  readonly logs: () => string;
  readonly config: GitHubConfig;
  count(route: string, status?: number | 'error'): number;
}

export type AuthKind = 'app' | 'pat';

export function githubConfig(sim: Simulator, auth: AuthKind | GitHubAuthConfig = 'app'): GitHubConfig {
  const resolved: GitHubAuthConfig =
    auth === 'app'
      ? { app: { id: sim.appId, privateKey: sim.privateKeyPem } }
      : auth === 'pat'
        ? { token: sim.token }
        : auth;
  return { url: sim.baseUrl, apiUrl: sim.apiUrl, ghes: sim.ghes, auth: resolved };
}

export function clientFor(
  sim: Simulator,
  options: Partial<GitHubClientOptions> & { auth?: AuthKind | GitHubAuthConfig } = {},
): TestClient {
  const { auth, ...rest } = options;
  const config = rest.config ?? githubConfig(sim, auth ?? 'app');
  const calls: string[] = [];
  const sent: SentRequest[] = [];
  const chunks: string[] = [];
  const logger = createLogger({
    level: 'debug',
    destination: new Writable({
      write(chunk: Buffer, _enc, cb) {
        chunks.push(chunk.toString());
        cb();
      },
    }),
    knownSecrets: [...configSecrets({ github: config }), sim.webhookSecret],
  });
  // Records what is sent and passes it on untouched to the real network.
  const recordingFetch: FetchLike = async (input, init) => {
    sent.push({
      method: init?.method ?? 'GET',
      url: String(input),
      body: typeof init?.body === 'string' ? init.body : null,
    });
    return (rest.fetch ?? globalThis.fetch)(input, init);
  };
  const client = createGitHubClient({
    logger,
    retryBaseMs: 5,
    ...rest,
    config,
    fetch: recordingFetch,
    onApiCall: (route, status) => {
      calls.push(`${route} ${status}`);
      rest.onApiCall?.(route, status);
    },
  });
  return {
    client,
    calls,
    sent,
    config,
    logs: () => chunks.join(''),
    count: (route, status) =>
      calls.filter((c) => (status === undefined ? c.startsWith(`${route} `) : c === `${route} ${status}`))
        .length,
  };
}

/** Decodes an encoded JIT config: base64 JSON whose values are base64 file contents. */
export function decodeJitConfig(encoded: string): Record<string, unknown> {
  const files = JSON.parse(Buffer.from(encoded, 'base64').toString('utf8')) as Record<string, string>;
  return Object.fromEntries(
    Object.entries(files).map(([k, v]) => [k, JSON.parse(Buffer.from(v, 'base64').toString('utf8'))]),
  );
}
