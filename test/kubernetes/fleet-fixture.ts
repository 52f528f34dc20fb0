/**
 * A fleet on the test control plane for the end-to-end, HA and benchmark runs: the GitHub simulator, runner
 * namespaces, the controller's ServiceAccount with exactly the Roles of the RBAC data (a kubeconfig file with its
 * token: no admin), fleet.yaml, the kwok bridge that runs an emulated runner in each runner pod, and the volume
 * provisioner for kubernetes-mode work volumes. The controller itself runs as `node dist/cli/main.js start`
 * (ControllerChild), so what is tested is the shipped command.
 */
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KubeConfig } from '@kubernetes/client-node';
import { CoordinationV1Api, CoreV1Api } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { controllerNeeds } from '../../src/providers/kubernetes/rbac-needs.js';
import type { BridgeEvent, KubeBridge } from '../../src/sim/kube-bridge/index.js';
import { startKubeBridge } from '../../src/sim/kube-bridge/index.js';
import type { Simulator, SimulatorOptions } from '../../src/sim/github/index.js';
import { freePort } from '../support/free-port.js';
import { LogSink } from '../support/log-sink.js';
import {
  jitRegistrations as jitRegistrationsBySet,
  runnersThatRan as runnersThatRanBySet,
  simulatorCredentials,
  startFleetSimulator,
} from '../support/sim-fleet.js';
import { untilEvery } from '../support/until.js';
import type { TestCluster } from './helpers.js';
import { createTestNamespace } from './helpers.js';
import type { ControllerIdentity } from './rbac-fixture.js';
import { installController } from './rbac-fixture.js';
import type { VolumeProvisioner } from './volume-provisioner.js';
import { startVolumeProvisioner } from './volume-provisioner.js';

export { freePort, LogSink };

/** The built CLI: what users run. */
export const CLI = join(import.meta.dirname, '../../dist/cli/main.js');

/** Polls every 100 ms: the checks here call the controller and the Kubernetes API. */
export const until = untilEvery(100);

/** Names of the runners of `scaleSet` the simulator registered with a JIT config (generate-jitconfig answered 201). */
export function jitRegistrations(sim: Simulator, scaleSet: string): string[] {
  return jitRegistrationsBySet(sim, [scaleSet]).get(scaleSet)!;
}

/** Names of the runners of `scaleSet` that ran (completed) jobs. */
export function runnersThatRan(sim: Simulator, scaleSet: string): Set<string> {
  return runnersThatRanBySet(sim, [scaleSet]).get(scaleSet)!;
}

/** The JIT configs the simulator handed out. Secret: tests only look for them, never print them. */
export function issuedJitConfigs(sim: Simulator): string[] {
  const out: string[] = [];
  for (const x of sim.recordedExchanges()) {
    if (x.status !== 201 || !x.template?.endsWith('/generate-jitconfig') || !x.responseBody) continue;
    out.push((JSON.parse(x.responseBody) as { encoded_jit_config: string }).encoded_jit_config);
  }
  return out;
}

/** Whether `text` holds any of `secrets`, whole or a distinctive 24-character piece of one. */
export function containsSecret(text: string, secrets: readonly string[]): boolean {
  return secrets.some((s) => {
    if (text.includes(s)) return true;
    const mid = Math.floor(s.length / 2);
    return s.length >= 48 && text.includes(s.slice(mid, mid + 24));
  });
}

export interface KubeSetShape {
  readonly name: string;
  readonly labels: readonly string[];
  readonly max: number;
  readonly containerMode: 'none' | 'kubernetes';
  readonly roleArn?: string;
  /** How the scale set learns of its jobs; fleet.yaml's default (webhooks) when not given. */
  readonly discovery?: 'webhook' | 'scale-set';
}

export interface KubeFleetOptions {
  readonly fleet: string;
  readonly sets: readonly KubeSetShape[];
  readonly leaderElection?: boolean;
  readonly leaseName?: string;
  readonly resyncInterval?: string;
  readonly onBridgeEvent?: (event: BridgeEvent) => void;
  /** Simulator settings beyond startFleetSimulator's (e.g. a short message session timeout). */
  readonly simulator?: SimulatorOptions;
}

export interface KubeFleet {
  readonly fleet: string;
  readonly sim: Simulator;
  readonly dir: string;
  /** One namespace per scale set, by scale set name. */
  readonly namespaces: ReadonlyMap<string, string>;
  readonly controllerNamespace: string;
  readonly controller: ControllerIdentity;
  /** kubeconfig file with the controller ServiceAccount's token. */
  readonly kubeconfigPath: string;
  readonly bridge: KubeBridge;
  readonly provisioners: readonly VolumeProvisioner[];
  readonly leaseName: string;
  /** Writes fleet.yaml for a controller listening on `port` with its own store; returns its path. */
  writeConfig(port: number, store: string): string;
  /** `start` arguments of one replica under leader election: its fleet.yaml (port, store), kubeconfig and Lease. */
  replicaArgs(port: number, store: string): string[];
  /** The Lease's holder identity ('' when it has none). */
  leaseHolder(): Promise<string>;
  /** Waits until an identity starting with `prefix` holds the Lease; the ms from `since` until that was seen. */
  leaderSince(prefix: string, since: number, timeoutMs: number): Promise<number>;
  cleanup(): Promise<void>;
}

/** A kubeconfig file (0600) holding `kubeConfig`'s cluster and bearer token. */
export function writeKubeconfig(dir: string, kubeConfig: KubeConfig, name = 'controller.kubeconfig'): string {
  const path = join(dir, name);
  writeFileSync(path, kubeConfig.exportConfig(), { mode: 0o600 });
  return path;
}

export async function setupKubeFleet(cluster: TestCluster, options: KubeFleetOptions): Promise<KubeFleet> {
  const admin = cluster.kubeConfig();
  const sim = await startFleetSimulator(options.simulator);
  const dir = mkdtempSync(join(tmpdir(), 'runner-fleet-k8s-'));
  const credentials = simulatorCredentials(sim, dir);
  const controllerNamespace = await createTestNamespace(cluster, 'rf-ctl');
  const namespaces = new Map<string, string>();
  for (const set of options.sets)
    namespaces.set(set.name, await createTestNamespace(cluster, `rf-${set.name}`));
  const leaseName = options.leaseName ?? `${options.fleet}-leader`;

  const scaleSets = options.sets.map((set) => ({
    name: set.name,
    scope: { org: 'octo-org' },
    labels: [...set.labels],
    minIdle: 0,
    max: set.max,
    ephemeral: true,
    registration: 'jit',
    bootstrapTimeout: '90s',
    idleTimeout: '3s',
    ...(set.roleArn ? { identity: { aws: { roleArn: set.roleArn } } } : {}),
    ...(set.discovery ? { discovery: set.discovery } : {}),
    provider: {
      kind: 'kubernetes',
      namespace: namespaces.get(set.name),
      containerMode: set.containerMode,
      ...(set.containerMode === 'kubernetes' ? { workVolume: { size: '1Gi' } } : {}),
    },
  }));
  const fleetShape = { name: options.fleet, scaleSets } as never;
  const needs = controllerNeeds(fleetShape, {
    controllerNamespace,
    leaderElection: options.leaderElection ?? false,
  });
  const controller = await installController(cluster, controllerNamespace, needs, leaseName);
  const kubeconfigPath = writeKubeconfig(dir, controller.kubeConfig);

  const bridge = await startKubeBridge({
    kubeConfig: admin,
    namespaces: [...namespaces.values()],
    fleet: options.fleet,
    emulator: { retryBudgetMs: 15_000 },
    ...(options.onBridgeEvent ? { onEvent: options.onBridgeEvent } : {}),
  });
  const provisioners = options.sets
    .filter((s) => s.containerMode === 'kubernetes')
    .map((s) => startVolumeProvisioner(admin, namespaces.get(s.name)!));

  const fleet: KubeFleet = {
    fleet: options.fleet,
    sim,
    dir,
    namespaces,
    controllerNamespace,
    controller,
    kubeconfigPath,
    bridge,
    provisioners,
    leaseName,
    async leaseHolder() {
      const lease = await admin
        .makeApiClient(CoordinationV1Api)
        .readNamespacedLease({ name: leaseName, namespace: controllerNamespace });
      return lease.spec?.holderIdentity ?? '';
    },
    async leaderSince(prefix, since, timeoutMs) {
      let ms = 0;
      await until(
        async () => {
          if ((await this.leaseHolder().catch(() => '')).startsWith(prefix)) ms = Date.now() - since;
          return ms > 0;
        },
        timeoutMs,
        `${prefix} to take the Lease`,
      );
      return ms;
    },
    replicaArgs(port, store) {
      return [
        '--config',
        this.writeConfig(port, store),
        '--kubeconfig',
        kubeconfigPath,
        '--leader-election',
        '--lease-namespace',
        controllerNamespace,
        '--lease-name',
        leaseName,
      ];
    },
    writeConfig(port, store) {
      const doc = {
        name: options.fleet,
        ...credentials,
        server: { host: '127.0.0.1', port },
        store: { path: join(dir, store) },
        controller: {
          resyncInterval: options.resyncInterval ?? '2s',
          orphanGracePeriod: '10s',
          failureBackoff: '1s',
        },
        scaleSets,
      };
      const path = join(dir, `fleet-${port}.yaml`);
      writeFileSync(path, stringify(doc));
      return path;
    },
    async cleanup() {
      await bridge.stop();
      await Promise.all(provisioners.map((p) => p.stop()));
      await sim.close();
      const core = admin.makeApiClient(CoreV1Api);
      await Promise.all(
        [controllerNamespace, ...namespaces.values()].map((name) =>
          core.deleteNamespace({ name }).catch(() => undefined),
        ),
      );
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return fleet;
}

/** `runner-fleet start ...` as a child process of `node dist/cli/main.js`, with only PATH (and `env`) set. */
export class ControllerChild {
  readonly url: string;
  readonly stdout = new LogSink();
  readonly stderr = new LogSink();
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;
  readonly startedAt = Date.now();

  constructor(args: readonly string[], port: number, env: Record<string, string> = {}) {
    this.url = `http://127.0.0.1:${port}`;
    this.child = spawn(process.execPath, [CLI, 'start', ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env },
    });
    this.child.stdout!.pipe(this.stdout, { end: false });
    this.child.stderr!.pipe(this.stderr, { end: false });
    this.exited = new Promise((resolve) => this.child.once('exit', (code) => resolve(code)));
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  async status(path: '/healthz' | '/readyz'): Promise<number | null> {
    try {
      const res = await fetch(`${this.url}${path}`, { signal: AbortSignal.timeout(2000) });
      await res.body?.cancel();
      return res.status;
    } catch {
      return null;
    }
  }

  async waitReady(timeoutMs = 90_000): Promise<void> {
    await until(
      async () => {
        if (!this.running) throw new Error(`the controller exited: ${this.stderr.text().slice(-3000)}`);
        return (await this.status('/readyz')) === 200;
      },
      timeoutMs,
      'the controller to be ready',
    );
  }

  /** kill -9 */
  async kill(): Promise<void> {
    if (this.running) this.child.kill('SIGKILL');
    await this.exited;
  }

  /** SIGTERM, then SIGKILL after `timeoutMs`; resolves to the exit code. */
  async stop(timeoutMs = 20_000): Promise<number | null> {
    if (this.running) this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    const code = await this.exited;
    clearTimeout(timer);
    return code;
  }
}
