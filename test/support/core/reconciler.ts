/**
 * A controller built from the real parts around the reconciler, against the real GitHub simulator: the SQLite store
 * (a file, so a restart reopens it), the GitHub client, the sim provider (instances host emulated runners inside the
 * simulator, so they outlive a controller) and a small webhook receiver that verifies and parses deliveries the way
 * the server does, with knobs to lose some.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import type { FleetConfig, ScaleSetConfig } from '../../../src/core/fleet-config.js';
import {
  createGitHubClient,
  parseWorkflowJobEvent,
  verifyWebhookSignature,
} from '../../../src/github/index.js';
import type { GitHubClient } from '../../../src/github/index.js';
import { SimProvider } from '../../../src/providers/sim/index.js';
import type { Provider } from '../../../src/providers/provider.js';
import { startSimulator, type Simulator } from '../../../src/sim/github/index.js';
import { Store } from '../../../src/store/store.js';
import type { WorkflowJobEvent } from '../../../src/core/ports.js';
import { LabelRouter } from '../../../src/core/labels.js';
import { FleetReadModel } from '../../../src/core/read-models.js';
import { Reconciler, type ReconcilerOptions } from '../../../src/core/reconciler.js';

export const silent = pino({ level: 'silent' });

export interface HarnessOptions {
  readonly scaleSets: readonly (Partial<ScaleSetConfig> & { name: string; bootDelay?: number })[];
  readonly controller?: Partial<FleetConfig['controller']>;
  readonly simulator?: Parameters<typeof startSimulator>[0];
}

export interface Controller {
  readonly store: Store;
  readonly github: GitHubClient;
  readonly reconciler: Reconciler;
  /** The API's view of the same controller. */
  readonly readModel: FleetReadModel;
  readonly providers: Map<string, Provider>;
}

export class Harness {
  readonly sim: Simulator;
  readonly config: FleetConfig;
  readonly dir: string;
  readonly dbPath: string;
  /** Which webhook actions reach the controller; the rest are answered 202 and forgotten. */
  accept: (e: WorkflowJobEvent) => boolean = () => true;
  /** Every delivery received (before `accept`). */
  readonly received: WorkflowJobEvent[] = [];
  controller: Controller | null = null;
  readonly #receiver: Server;
  readonly #bootDelays: Map<string, number>;

  private constructor(
    sim: Simulator,
    config: FleetConfig,
    receiver: Server,
    bootDelays: Map<string, number>,
  ) {
    this.sim = sim;
    this.config = config;
    this.#receiver = receiver;
    this.#bootDelays = bootDelays;
    this.dir = mkdtempSync(path.join(os.tmpdir(), 'rf-reconciler-'));
    this.dbPath = path.join(this.dir, 'fleet.db');
  }

  static async start(options: HarnessOptions): Promise<Harness> {
    const sim = await startSimulator({ orgs: ['octo-org'], ...options.simulator });
    const bootDelays = new Map(options.scaleSets.map((s) => [s.name, s.bootDelay ?? 0]));
    const config: FleetConfig = {
      name: 'test-fleet',
      github: { url: sim.baseUrl, apiUrl: sim.apiUrl, ghes: false, auth: { token: sim.token } },
      webhook: { secret: sim.webhookSecret },
      server: { host: '127.0.0.1', port: 0 },
      store: { path: ':memory:' },
      controller: {
        resyncInterval: 1000,
        orphanGracePeriod: 1500,
        failureBackoff: 200,
        concurrency: 32,
        ...options.controller,
      },
      scaleSets: options.scaleSets.map(({ bootDelay: _bootDelay, ...s }) => ({
        scope: { org: 'octo-org' },
        runnerGroup: 'Default',
        labels: ['linux', 'x64'],
        minIdle: 0,
        max: 5,
        ephemeral: true,
        registration: 'jit',
        priority: 0,
        bootstrapTimeout: 20_000,
        idleTimeout: 1000,
        provider: { kind: 'sim', url: sim.baseUrl },
        ...s,
      })),
    };
    let harness: Harness | null = null;
    const receiver = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        void (async () => {
          const body = Buffer.concat(chunks).toString('utf8');
          const ok = await verifyWebhookSignature(
            config.webhook.secret,
            body,
            req.headers['x-hub-signature-256'] as string,
          );
          if (!ok) {
            res.writeHead(401).end();
            return;
          }
          if (req.headers['x-github-event'] !== 'workflow_job') {
            res.writeHead(202).end();
            return;
          }
          const event = parseWorkflowJobEvent(JSON.parse(body), String(req.headers['x-github-delivery']));
          const h = harness;
          h?.received.push(event);
          // Persist before replying, as the server does; a stopped controller loses nothing GitHub retries.
          if (h?.controller && h.accept(event)) h.controller.store.acceptWorkflowJob(event);
          res.writeHead(202).end();
        })().catch(() => res.writeHead(500).end());
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/webhook`;
    sim.setWebhook(url);
    harness = new Harness(sim, config, receiver, bootDelays);
    return harness;
  }

  /** Builds a controller on the harness's store file and starts it. */
  async startController(extra: Partial<ReconcilerOptions> = {}): Promise<Controller> {
    const router = new LabelRouter(this.config.scaleSets);
    const store = Store.open({ path: this.dbPath, route: (job) => router.route(job) });
    const github = createGitHubClient({ config: this.config.github, logger: silent, retryBaseMs: 5 });
    const providers = new Map<string, Provider>();
    for (const set of this.config.scaleSets) {
      providers.set(
        set.name,
        new SimProvider(
          { kind: 'sim', url: this.sim.baseUrl, bootDelay: this.#bootDelays.get(set.name) ?? 0 },
          { fleet: this.config.name, scaleSet: set, logger: silent },
          { pollInterval: 100 },
        ),
      );
    }
    const reconciler = new Reconciler({
      config: this.config,
      store,
      github,
      providers,
      logger: silent,
      ...extra,
    });
    const readModel = new FleetReadModel({ config: this.config, store, reconciler });
    this.controller = { store, github, reconciler, readModel, providers };
    await reconciler.start();
    return this.controller;
  }

  /** Stops the controller the way a crash would leave things: calls out aborted, nothing cleaned up. */
  async crash(): Promise<void> {
    const c = this.controller;
    if (c === null) return;
    this.controller = null;
    await c.reconciler.stop();
    await Promise.all([...c.providers.values()].map((p) => p.close?.()));
    c.store.close();
  }

  async close(): Promise<void> {
    await this.crash();
    await new Promise((resolve) => this.#receiver.close(resolve));
    // The simulator's close waits for instances still booting; delete them so a long boot delay ends at once.
    for (const i of this.sim.instances()) this.sim.deleteInstance(i.name);
    await this.sim.close();
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** Our registrations and instances still in the simulator. */
  leftovers(): { runners: string[]; instances: string[] } {
    const ours = (name: string) => this.config.scaleSets.some((s) => name.startsWith(`${s.name}-`));
    return {
      runners: this.sim
        .runners()
        .filter((r) => ours(r.name))
        .map((r) => r.name),
      instances: this.sim.instances({ fleet: this.config.name }).map((i) => i.name),
    };
  }
}

/** Polls `check` until it returns true (or throws after `timeoutMs`), sampling `each` on every poll. */
export async function until(check: () => boolean, timeoutMs = 20_000, each?: () => void): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    each?.();
    if (check()) return;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
