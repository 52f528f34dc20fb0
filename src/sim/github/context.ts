/** Everything the route modules share: the simulator's state and services, built once by startSimulator. */
import type { KeyObject } from 'node:crypto';
import type { AppAuth } from './auth.js';
import type { Broker } from './broker.js';
import type { Faults } from './faults.js';
import type { RsaParams } from './jit-config.js';
import type { JobEngine } from './job-engine.js';
import type { ResolvedOptions } from './options.js';
import type { Urls } from './payloads.js';
import type { RateLimiter } from './rate-limit.js';
import type { RunnerTokens } from './runner-tokens.js';
import type { RunnerService } from './runners.js';
import type { ScaleSetService } from './scale-sets.js';
import type { WebhookDispatcher } from './webhooks.js';
import type { World } from './world.js';

export interface ApiStats {
  total: number;
  byRoute: Map<string, number>;
}

/** One REST exchange, kept when the simulator records (tests check them against GitHub's OpenAPI description). */
export interface RecordedExchange {
  readonly method: string;
  /** GitHub's path template of the route, or null for a path no route serves. */
  readonly template: string | null;
  /** Path and query as received (with /api/v3 in GHES mode). */
  readonly url: string;
  /** Request body as received (a string), or undefined. */
  readonly requestBody: string | undefined;
  readonly status: number;
  /** Response body as sent (JSON text), or undefined for no body. */
  readonly responseBody: string | undefined;
  readonly responseHeaders: Readonly<Record<string, string>>;
}

export interface AppInfo {
  readonly id: number;
  readonly slug: string;
  readonly clientId: string;
  readonly createdAt: number;
  readonly permissions: Readonly<Record<string, 'read' | 'write'>>;
  readonly events: readonly string[];
}

export interface SimContext {
  readonly options: ResolvedOptions;
  readonly urls: Urls;
  readonly prefix: string;
  readonly app: AppInfo;
  readonly world: World;
  readonly auth: AppAuth;
  readonly limiter: RateLimiter;
  readonly runners: RunnerService;
  readonly engine: JobEngine;
  readonly tokens: RunnerTokens;
  readonly broker: Broker;
  /** Runner scale sets of the Actions service (sessions, message queues). */
  readonly scaleSets: ScaleSetService;
  readonly webhooks: WebhookDispatcher;
  /** Key material written into JIT configs (`.credentials_rsaparams`) and the matching public key; generated in
   *  the background at start so that start-up waits for one RSA key only. */
  readonly jitKey: Promise<{ readonly params: RsaParams; readonly publicKey: KeyObject }>;
  faults: Faults;
  readonly stats: ApiStats;
  /** Set when the simulator records REST exchanges (option recordExchanges). */
  readonly recorded: RecordedExchange[] | null;
  readonly now: () => number;
}
