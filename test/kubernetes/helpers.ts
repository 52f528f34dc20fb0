/**
 * The real Kubernetes control plane for test suites (see docs/testing.md).
 *
 *   describe.skipIf(!requireCluster('my suite'))('my suite', () => {
 *     const cluster = useTestCluster();           // started in beforeAll, stopped in afterAll
 *     it('...', async () => {
 *       const core = cluster.kubeConfig().makeApiClient(CoreV1Api);
 *       const ns = await createTestNamespace(cluster, 'my-suite');
 *       ...
 *     });
 *   });
 *
 * A control plane already started with `npm run testenv -- up` (or the one in $RUNNER_FLEET_TESTENV_DIR) is reused
 * when it is healthy and built from the pinned versions; otherwise the first test file that asks starts one that
 * every file of the same vitest run shares, and a watchdog stops it when vitest exits. Suites that disturb the
 * control plane itself ask for a private one. Shared control planes mean: use createTestNamespace, never assume an
 * empty cluster.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isMainThread } from 'node:worker_threads';
import { ApiException, CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll } from 'vitest';
import {
  clusterHealth,
  readAdminToken,
  readState,
  startCluster,
  stopCluster,
  type ClusterState,
} from '../../scripts/testenv/cluster.js';
import { EXIT_CODE_ANNOTATION, KWOK_NODE_LABEL } from '../../scripts/testenv/kwok-stages.js';
import { defaultRunDir, missingPeers, readVersions } from '../../scripts/testenv/peers.js';
import { isRunning, pidAlive } from '../../scripts/testenv/processes.js';
import { reportSkip } from '../support/skips.js';

export { EXIT_CODE_ANNOTATION, KWOK_NODE_LABEL };

export interface TestCluster {
  /** https://127.0.0.1:<port> */
  readonly server: string;
  /** Admin kubeconfig (bearer token of a system:masters user). */
  readonly kubeconfigPath: string;
  readonly adminToken: string;
  readonly caCertPath: string;
  /** PEM of the CA that signed the apiserver's serving certificate. */
  readonly caCert: string;
  /** Names of the kwok nodes (Ready, labelled `runner-fleet.test/kwok=true`). */
  readonly nodeNames: readonly string[];
  /** Run directory (logs under logs/). */
  readonly dir: string;
  /** True when a control plane started elsewhere was reused; stop() then leaves it running. */
  readonly shared: boolean;
  /** A client configuration for the admin, or for any bearer token (a ServiceAccount's, for least-privilege tests). */
  kubeConfig(token?: string): KubeConfig;
  stop(): Promise<void>;
}

export interface StartTestClusterOptions {
  /** Start a private control plane even when a shared one is running (tests that disturb the control plane). */
  readonly private?: boolean;
  /** kwok nodes in a private control plane (default 2). */
  readonly nodes?: number;
  readonly log?: (line: string) => void;
}

export type Availability =
  | { readonly available: true; readonly via: 'shared' | 'binaries' }
  | { readonly available: false; readonly reason: string; readonly fix: string };

const PRIVATE_PREFIX = 'runner-fleet-testenv-';

function opensslPresent(): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Whether a control plane can be had: a shared one is up, or the peers are built (no network, no build here). */
function readStateOrNothing(dir: string): ClusterState | undefined {
  try {
    return readState(dir);
  } catch {
    // Half-written by a concurrent start, or garbage: not a control plane to use.
    return undefined;
  }
}

export function clusterAvailability(): Availability {
  const state = readStateOrNothing(defaultRunDir());
  if (state?.ready && state.components.every((c) => isRunning(c))) return { available: true, via: 'shared' };
  const missing = missingPeers();
  if (missing.length > 0) {
    return {
      available: false,
      reason: `the Kubernetes test peers are not built (${missing.join(', ')})`,
      fix: 'scripts/install-peers.sh (Go 1.26 or newer, or it fetches one; see docs/testing.md)',
    };
  }
  if (!opensslPresent()) {
    return {
      available: false,
      reason: 'openssl is not installed (it issues the test certificates)',
      fix: 'sudo apt-get install -y openssl',
    };
  }
  return { available: true, via: 'binaries' };
}

/**
 * For `describe.skipIf(!requireCluster(name))`: true when a control plane is available. Otherwise, on a developer
 * machine it prints a loud notice and returns false (the suite is skipped); under CI=true it throws, so the test file
 * fails: a missing peer in CI is an error, never a silent skip.
 */
export function requireCluster(suite: string): boolean {
  const availability = clusterAvailability();
  if (availability.available) return true;
  return reportSkip(suite, availability.reason, availability.fix);
}

function view(
  state: ClusterState,
  adminToken: string,
  shared: boolean,
  stop: () => Promise<void>,
): TestCluster {
  const caCert = readFileSync(state.caCert, 'utf8');
  return {
    server: state.server,
    kubeconfigPath: state.kubeconfig,
    adminToken,
    caCertPath: state.caCert,
    caCert,
    nodeNames: state.nodes,
    dir: state.dir,
    shared,
    kubeConfig(token = adminToken) {
      const kc = new KubeConfig();
      kc.loadFromOptions({
        clusters: [{ name: 'testenv', server: state.server, caData: Buffer.from(caCert).toString('base64') }],
        users: [{ name: 'user', token }],
        contexts: [{ name: 'testenv', cluster: 'testenv', user: 'user' }],
        currentContext: 'testenv',
      });
      return kc;
    },
    stop,
  };
}

/** Private control planes whose owning test worker died: stop them (their watchdog normally already has). */
async function reapOrphans(): Promise<void> {
  const tmp = os.tmpdir();
  for (const entry of readdirSync(tmp)) {
    if (!entry.startsWith(PRIVATE_PREFIX)) continue;
    const dir = path.join(tmp, entry);
    const state = readStateOrNothing(dir);
    if (state?.owner !== undefined && !pidAlive(state.owner)) {
      await stopCluster(dir, { removeDir: process.env.RUNNER_FLEET_TESTENV_KEEP !== '1' });
    }
  }
}

function sameVersions(state: ClusterState): boolean {
  const v = readVersions();
  return (
    state.versions.kubernetes === v.kubernetes &&
    state.versions.etcd === v.etcd &&
    state.versions.kwok === v.kwok
  );
}

async function reusable(state: ClusterState | undefined): Promise<boolean> {
  return state?.ready === true && sameVersions(state) && (await clusterHealth(state)).healthy;
}

/**
 * The process whose lifetime a run-wide control plane follows: the vitest main process. Test files run in forked
 * child processes of it (pool "forks", the default) or in worker threads of it (pool "threads").
 */
function testRunPid(): number | undefined {
  if (!isMainThread) return process.pid;
  return process.ppid > 1 ? process.ppid : undefined;
}

/** A crude cross-process lock: mkdir is atomic. A lock whose holder died is broken. */
async function withLock<T>(lockDir: string, fn: () => Promise<T>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      mkdirSync(lockDir);
      writeFileSync(path.join(lockDir, 'pid'), String(process.pid));
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const holder = Number(readFileOr(path.join(lockDir, 'pid')));
      if (Number.isInteger(holder) && holder > 0 && !pidAlive(holder)) {
        rmSync(lockDir, { recursive: true, force: true });
        continue;
      }
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${lockDir}`, { cause: err });
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(lockDir, { recursive: true, force: true });
  }
}

function readFileOr(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

async function startOwned(
  dir: string,
  ownerPid: number,
  opts: StartTestClusterOptions,
): Promise<{ state: ClusterState; adminToken: string }> {
  const keep = process.env.RUNNER_FLEET_TESTENV_KEEP === '1';
  return startCluster({
    dir,
    ownerPid,
    removeDirOnOwnerExit: !keep,
    ...(opts.nodes === undefined ? {} : { nodes: opts.nodes }),
    ...(opts.log ? { log: opts.log } : {}),
  });
}

/**
 * Gets a control plane for a test file, in this order (never building; see requireCluster):
 * 1. the one in $RUNNER_FLEET_TESTENV_DIR or <repo>/.testenv (`npm run testenv -- up`), when healthy;
 * 2. the one shared by every test file of this vitest run, started by whichever file asks first and stopped by its
 *    watchdog when the vitest process exits;
 * 3. with `private: true`, one of its own, stopped by `stop()` (or by its watchdog if the worker dies).
 */
export async function startTestCluster(opts: StartTestClusterOptions = {}): Promise<TestCluster> {
  await reapOrphans();
  if (!opts.private) {
    const handStarted = readStateOrNothing(defaultRunDir());
    if (await reusable(handStarted)) {
      const state = handStarted as ClusterState;
      return view(state, readAdminToken(state), true, async () => {});
    }
    const runPid = testRunPid();
    if (runPid !== undefined) {
      const dir = path.join(os.tmpdir(), `${PRIVATE_PREFIX}run-${runPid}`);
      const state = await withLock(
        `${dir}.lock`,
        async () => {
          const existing = readState(dir);
          if (await reusable(existing)) return existing as ClusterState;
          if (existing) await stopCluster(dir, { removeDir: true });
          return (await startOwned(dir, runPid, opts)).state;
        },
        300_000,
      );
      return view(state, readAdminToken(state), true, async () => {});
    }
  }
  const dir = mkdtempSync(path.join(os.tmpdir(), PRIVATE_PREFIX));
  const started = await startOwned(dir, process.pid, opts);
  return view(started.state, started.adminToken, false, async () => {
    await stopCluster(dir, { removeDir: process.env.RUNNER_FLEET_TESTENV_KEEP !== '1' });
  });
}

/**
 * Starts (or reuses) a control plane in beforeAll and stops it in afterAll of the enclosing describe block. The
 * returned object reads through to the cluster once beforeAll has run.
 */
export function useTestCluster(opts: StartTestClusterOptions = {}): TestCluster {
  let cluster: TestCluster | undefined;
  const get = (): TestCluster => {
    if (!cluster) throw new Error('the test cluster is not started yet: use it inside tests or hooks');
    return cluster;
  };
  beforeAll(async () => {
    cluster = await startTestCluster(opts);
  }, 240_000);
  afterAll(async () => {
    await cluster?.stop();
  }, 60_000);
  return {
    get server() {
      return get().server;
    },
    get kubeconfigPath() {
      return get().kubeconfigPath;
    },
    get adminToken() {
      return get().adminToken;
    },
    get caCertPath() {
      return get().caCertPath;
    },
    get caCert() {
      return get().caCert;
    },
    get nodeNames() {
      return get().nodeNames;
    },
    get dir() {
      return get().dir;
    },
    get shared() {
      return get().shared;
    },
    kubeConfig: (token?: string) => get().kubeConfig(token),
    stop: () => get().stop(),
  };
}

/** Polls `check` until it returns a value other than undefined/false. */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined | false>,
  opts: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<T> {
  const deadline = Date.now() + (opts.timeoutMs ?? 30_000);
  let lastError: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}`, { cause: lastError });
    }
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 200));
  }
}

/** True when `err` is an API error with HTTP status `code`. */
export function isApiStatus(err: unknown, code: number): boolean {
  return err instanceof ApiException && err.code === code;
}

/**
 * Creates a namespace with a unique name (tests share control planes) and waits for its `default` ServiceAccount,
 * without which pods in it are refused by ServiceAccount admission.
 */
export async function createTestNamespace(cluster: TestCluster, prefix = 'test'): Promise<string> {
  const core = cluster.kubeConfig().makeApiClient(CoreV1Api);
  const name = `${prefix}-${randomBytes(3).toString('hex')}`.toLowerCase();
  await core.createNamespace({
    body: { metadata: { name, labels: { 'runner-fleet.test/namespace': 'true' } } },
  });
  await waitFor(`ServiceAccount ${name}/default`, async () => {
    try {
      return await core.readNamespacedServiceAccount({ name: 'default', namespace: name });
    } catch (err) {
      if (isApiStatus(err, 404)) return undefined;
      throw err;
    }
  });
  return name;
}

/** Paths of the control plane's log files, to point at when a test fails. */
export function clusterLogs(cluster: TestCluster): string[] {
  const logs = path.join(cluster.dir, 'logs');
  return existsSync(logs) ? readdirSync(logs).map((f) => path.join(logs, f)) : [];
}
