/**
 * `start --leader-election` as runWithLeaderElection runs it, on a real Lease with the controller's least-privilege
 * token and a real controller against the GitHub simulator: a new leader learns the jobs it missed from the App's
 * webhook deliveries through the controller's GitHub client (counted in runner_fleet_github_api_calls_total); on
 * SIGTERM the leader stops acting first, its runner creates in flight included, and only then releases the Lease, so
 * a successor never acts beside it.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CoordinationV1Api, CoreV1Api } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { composeController } from '../../src/app/compose.js';
import { runWithLeaderElection } from '../../src/app/leadership.js';
import { loadConfig } from '../../src/config/index.js';
import type { Provider, ProviderFactory } from '../../src/providers/provider.js';
import type { SimProviderConfig } from '../../src/providers/sim/index.js';
import { simProviderFactory } from '../../src/providers/sim/index.js';
import type { Simulator } from '../../src/sim/github/index.js';
import { startSimulator } from '../../src/sim/github/index.js';
import { freePort } from '../support/free-port.js';
import { LogSink } from '../support/log-sink.js';
import { simulatorCredentials } from '../support/sim-fleet.js';
import { createTestNamespace, requireCluster, useTestCluster, waitFor } from './helpers.js';
import type { ControllerIdentity } from './rbac-fixture.js';
import { installLeaseHolder } from './rbac-fixture.js';

/** How long a create already sent takes to come back: longer than the controller's other stop steps. */
const CREATE_MS = 2_500;

interface Create {
  readonly name: string;
  finishedAt?: number;
}

interface Slowness {
  /** Each create takes CREATE_MS more, as an API call already on its way that abort cannot recall. */
  readonly creates?: Create[];
  /** prepare() fails: the controller cannot start acting. */
  readonly failPrepare?: boolean;
  /** close() takes this long, then records when it finished. */
  readonly close?: { readonly ms: number; closedAt?: number };
}

/** The sim provider, slowed down where a test needs the controller's stop to take time. */
function slowed(slowness: Slowness): ProviderFactory<SimProviderConfig> {
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  return {
    ...simProviderFactory,
    create(config, context): Provider {
      const inner = simProviderFactory.create(config, context);
      return {
        kind: inner.kind,
        async create(spec, signal) {
          if (slowness.creates === undefined) return inner.create(spec, signal);
          const entry: Create = { name: spec.name };
          slowness.creates.push(entry);
          await sleep(CREATE_MS);
          const instance = await inner.create(spec, new AbortController().signal);
          entry.finishedAt = Date.now();
          return instance;
        },
        delete: (name, signal) => inner.delete(name, signal),
        list: (selector, signal) => inner.list(selector, signal),
        ...(slowness.failPrepare
          ? {
              prepare: () => Promise.reject(new Error('the provider cannot be prepared')),
            }
          : {}),
        async close() {
          await inner.close?.();
          if (slowness.close === undefined) return;
          await sleep(slowness.close.ms);
          slowness.close.closedAt = Date.now();
        },
      };
    },
  };
}

describe.skipIf(!requireCluster('leadership'))('start --leader-election: stop, then release', () => {
  const cluster = useTestCluster();
  let namespace: string;
  let identity: ControllerIdentity;
  let sim: Simulator;
  let dir: string;
  let credentials: ReturnType<typeof simulatorCredentials>;
  const leaseName = 'rf-leadership';

  beforeAll(async () => {
    namespace = await createTestNamespace(cluster, 'rf-lead');
    identity = await installLeaseHolder(cluster, namespace, leaseName);
    sim = await startSimulator({ orgs: ['octo-org'] });
    dir = mkdtempSync(join(tmpdir(), 'runner-fleet-leadership-'));
    credentials = simulatorCredentials(sim, dir);
  });

  afterAll(async () => {
    await sim?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
    await cluster
      .kubeConfig()
      .makeApiClient(CoreV1Api)
      .deleteNamespace({ name: namespace })
      .catch(() => undefined);
  });

  /** A controller for the simulator with one sim scale set, under runWithLeaderElection as `identity`. */
  async function leader(id: string, slowness: Slowness) {
    const configPath = join(dir, `${id}.yaml`);
    writeFileSync(
      configPath,
      stringify({
        name: 'lead',
        ...credentials,
        server: { host: '127.0.0.1', port: 0 },
        store: { path: ':memory:' },
        scaleSets: [
          {
            name: 'slow',
            scope: { org: 'octo-org' },
            labels: ['linux', 'slow'],
            max: 2,
            ephemeral: true,
            registration: 'jit',
            provider: { kind: 'sim' },
          },
        ],
      }),
    );
    const loaded = loadConfig(configPath, { env: {} });
    if (!loaded.ok) throw new Error(JSON.stringify(loaded.problems));
    const logs = new LogSink();
    const controller = await composeController({
      config: loaded.config,
      logDestination: logs,
      logLevel: 'info',
      providerFactories: { sim: slowed(slowness) },
    });
    const stop = new AbortController();
    const stderr = new LogSink();
    const run = runWithLeaderElection({
      controller,
      kubeConfig: identity.kubeConfig,
      election: { enabled: true, namespace, leaseName, identity: id },
      stop: stop.signal,
      stderr,
    });
    return { controller, stop, run, logs, stderr };
  }

  const lease = async () =>
    (
      await cluster
        .kubeConfig()
        .makeApiClient(CoordinationV1Api)
        .readNamespacedLease({ name: leaseName, namespace })
    ).spec;
  const holder = async () => (await lease())?.holderIdentity ?? '';

  /** Polls the Lease until a release written after `since` (free, renewed then); when that was seen. */
  async function released(since: number): Promise<number> {
    for (;;) {
      const spec = await lease().catch(() => undefined);
      if (spec && !spec.holderIdentity && new Date(spec.renewTime ?? 0).getTime() >= since) return Date.now();
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  it('a new leader learns a missed job through its own, counted client; on SIGTERM during that job’s runner create the Lease is released only after the create has finished', async () => {
    // The job was announced while no replica was there to hear it: the new leader finds it in the deliveries.
    sim.setWebhook(`http://127.0.0.1:${await freePort()}/webhook`);
    const [job] = sim.createJobs({ owner: 'octo-org', repo: 'app', labels: ['linux', 'slow'], count: 1 });
    await sim.webhooksIdle();
    const creates: Create[] = [];
    const { controller, stop, run, logs, stderr } = await leader('replica-a', { creates });
    await waitFor('the replica to lead and be ready', async () => controller.reconciler.health().ready, {
      timeoutMs: 30_000,
    });
    expect(await holder()).toBe('replica-a');
    expect(controller.store.job(job!.id)?.status).toBe('queued');
    const { values } = await controller.metrics.githubApiCalls.get();
    expect(
      values.find(
        (v) => v.labels.route === 'GET /app/hook/deliveries/{delivery_id}' && v.labels.status === '200',
      )?.value,
    ).toBe(1);
    await waitFor('a runner create in flight', async () => creates.length > 0, { timeoutMs: 30_000 });

    const stoppedAt = Date.now();
    stop.abort('SIGTERM');
    const releasedAt = await released(stoppedAt);
    expect(await run).toBe(0);
    expect(stderr.text()).toBe('');
    const finishedAt = creates[0]!.finishedAt;
    expect(finishedAt).toBeDefined();
    // The old leader's last create came back while it still held the Lease.
    expect(releasedAt).toBeGreaterThanOrEqual(finishedAt!);
    expect(logs.text()).toMatch(/lease released/);
  }, 90_000);

  it('a leader that cannot start acting stops what it started before it releases the Lease, and exits 1', async () => {
    const close = { ms: 1_500 } as { ms: number; closedAt?: number };
    const startedAt = Date.now();
    const { run, stderr } = await leader('replica-b', { failPrepare: true, close });
    const releasedAt = await released(startedAt);
    expect(await run).toBe(1);
    expect(stderr.text()).toMatch(/the provider cannot be prepared/);
    expect(close.closedAt).toBeDefined();
    expect(releasedAt).toBeGreaterThanOrEqual(close.closedAt!);
  }, 60_000);
});
