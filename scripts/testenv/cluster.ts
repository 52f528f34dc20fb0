/**
 * Starts, inspects and stops a test control plane: etcd, kube-apiserver (RBAC, token file, service-account keys),
 * kube-controller-manager (garbage collector, service-account and token controllers), kube-scheduler and kwok with
 * fake nodes, all on 127.0.0.1. Everything a run needs lives in one run directory:
 *
 *   state.json                 pids, ports, paths (what `status` and `down` read)
 *   admin.kubeconfig           cluster-admin (system:masters) via a bearer token; admin.token holds the token
 *   pki/                       CA, apiserver serving certificate, service-account key pair
 *   tokens.csv                 the apiserver's --token-auth-file
 *   *.kubeconfig, kwok.yaml    per-component credentials and kwok's Stages
 *   etcd/                      etcd's data
 *   logs/<component>.log
 */
import { randomBytes } from 'node:crypto';
import {
  appendFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { stringify } from 'yaml';
import { httpsRequest, type Endpoint } from './kube-http.js';
import { KWOK_NODE_LABEL, kwokConfigYaml } from './kwok-stages.js';
import {
  TestenvError,
  peerBinaries,
  readVersions,
  testenvDir,
  type PeerBinaries,
  type PeerVersions,
} from './peers.js';
import { createPki } from './pki.js';
import {
  freePorts,
  isRunning,
  pidAlive,
  startComponent,
  stopComponents,
  tailLog,
  type ComponentRecord,
  type Started,
} from './processes.js';

export interface ClusterState {
  readonly version: 1;
  readonly dir: string;
  /** https://127.0.0.1:<port> */
  readonly server: string;
  readonly kubeconfig: string;
  readonly caCert: string;
  readonly adminTokenFile: string;
  readonly ports: Readonly<
    Record<'etcdClient' | 'etcdPeer' | 'apiserver' | 'controllerManager' | 'scheduler', number>
  >;
  readonly nodes: readonly string[];
  /** Pid whose exit tears the cluster down (a test worker); absent for a cluster started by hand. */
  readonly owner?: number;
  readonly versions: PeerVersions;
  readonly startedAt: string;
  /** Whether start-up finished; a state with `ready: false` is a failed or interrupted start. */
  readonly ready: boolean;
  readonly components: readonly ComponentRecord[];
}

export interface StartClusterOptions {
  /** Run directory; created if needed, and must not hold a live cluster. */
  readonly dir: string;
  /** Number of kwok nodes (default 2). */
  readonly nodes?: number;
  /** When set, a watchdog stops the cluster once this process exits (and removes `dir` if asked to). */
  readonly ownerPid?: number;
  readonly removeDirOnOwnerExit?: boolean;
  readonly log?: (line: string) => void;
  readonly binaries?: PeerBinaries;
  readonly versions?: PeerVersions;
  /** Budget for the whole start-up (default 180 s: apiserver start-up is slow on a loaded 2-core machine). */
  readonly timeoutMs?: number;
}

export interface RunningCluster {
  readonly state: ClusterState;
  readonly adminToken: string;
}

const STATE_FILE = 'state.json';
const SERVICE_CIDR = '10.0.0.0/24';
const POD_CIDR = '10.64.0.0/10';
const ISSUER = 'https://kubernetes.default.svc.cluster.local';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export function readState(dir: string): ClusterState | undefined {
  const file = path.join(dir, STATE_FILE);
  if (!existsSync(file)) return undefined;
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as ClusterState;
  } catch (err) {
    throw new TestenvError('TESTENV_STATE', `cannot read ${file}`, { cause: err });
  }
}

function writeState(state: ClusterState): void {
  writeFileSync(path.join(state.dir, STATE_FILE), `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
}

export function readAdminToken(state: ClusterState): string {
  return readFileSync(state.adminTokenFile, 'utf8').trim();
}

function kubeconfigYaml(server: string, caFile: string, user: string, token: string): string {
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'runner-fleet-testenv', cluster: { server, 'certificate-authority': caFile } }],
    users: [{ name: user, user: { token } }],
    contexts: [{ name: 'runner-fleet-testenv', context: { cluster: 'runner-fleet-testenv', user } }],
    'current-context': 'runner-fleet-testenv',
  });
}

const token = (): string => randomBytes(24).toString('hex');

interface Waiter {
  readonly what: string;
  readonly started?: Started;
  check(): Promise<boolean>;
}

/** Polls every waiter until all pass; fails early (with the log tail) when a component exits. */
async function waitAll(waiters: readonly Waiter[], deadline: number): Promise<void> {
  const pending = new Set(waiters);
  while (pending.size > 0) {
    for (const w of [...pending]) {
      const exit = w.started?.exit();
      if (exit) {
        throw new TestenvError(
          'TESTENV_COMPONENT_EXITED',
          `${w.started?.record.name} exited (code ${exit.code}, signal ${exit.signal}) while waiting for ${w.what}; ` +
            `last lines of ${w.started?.record.log}:\n${tailLog(w.started?.record.log ?? '')}`,
        );
      }
      if (await w.check().catch(() => false)) pending.delete(w);
    }
    if (pending.size === 0) return;
    if (Date.now() > deadline) {
      const names = [...pending].map((w) => w.what).join(', ');
      const logs = [...pending]
        .filter((w) => w.started)
        .map((w) => `--- ${w.started?.record.log}\n${tailLog(w.started?.record.log ?? '')}`)
        .join('\n');
      throw new TestenvError('TESTENV_TIMEOUT', `timed out waiting for ${names}\n${logs}`);
    }
    await sleep(250);
  }
}

/** Starts a control plane in `opts.dir`. On failure everything started so far is stopped before the error is thrown. */
export async function startCluster(opts: StartClusterOptions): Promise<RunningCluster> {
  const log = opts.log ?? (() => {});
  const versions = opts.versions ?? readVersions();
  const bins = opts.binaries ?? peerBinaries(undefined, versions);
  const deadline = Date.now() + (opts.timeoutMs ?? 180_000);
  const dir = path.resolve(opts.dir);
  const existing = readState(dir);
  if (existing && existing.components.some((c) => isRunning(c))) {
    throw new TestenvError('TESTENV_RUNNING', `a control plane is already running in ${dir}; stop it first`);
  }
  for (const [name, bin] of Object.entries(bins)) {
    if (!existsSync(bin)) throw new TestenvError('TESTENV_MISSING_PEER', `${name} is not built (${bin})`);
  }
  // The directory is wiped, so it must be empty or a former run directory: never a path someone mistyped.
  if (!existing && existsSync(dir) && readdirSync(dir).length > 0) {
    throw new TestenvError(
      'TESTENV_DIR_NOT_EMPTY',
      `${dir} is not empty and holds no control plane; not using it`,
    );
  }
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(path.join(dir, 'logs'), { recursive: true, mode: 0o700 });

  const pki = await createPki(path.join(dir, 'pki'));
  const [etcdClient, etcdPeer, apiserver, controllerManager, scheduler] = (await freePorts(5)) as [
    number,
    number,
    number,
    number,
    number,
  ];
  const server = `https://127.0.0.1:${apiserver}`;
  const tokens = { admin: token(), controllerManager: token(), scheduler: token(), kwok: token() };
  // token,user,uid,"groups": the admin and kwok (which plays the kubelet of every fake node) are cluster-admins;
  // the controller-manager and scheduler get the identities the apiserver's bootstrap RBAC policy binds.
  writeFileSync(
    path.join(dir, 'tokens.csv'),
    [
      `${tokens.admin},runner-fleet-admin,runner-fleet-admin,"system:masters"`,
      `${tokens.controllerManager},system:kube-controller-manager,system:kube-controller-manager,""`,
      `${tokens.scheduler},system:kube-scheduler,system:kube-scheduler,""`,
      `${tokens.kwok},runner-fleet-kwok,runner-fleet-kwok,"system:masters"`,
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
  const adminTokenFile = path.join(dir, 'admin.token');
  writeFileSync(adminTokenFile, `${tokens.admin}\n`, { mode: 0o600 });
  const kubeconfig = path.join(dir, 'admin.kubeconfig');
  const kc = (file: string, user: string, tok: string): string => {
    const p = path.join(dir, file);
    writeFileSync(p, kubeconfigYaml(server, pki.caCert, user, tok), { mode: 0o600 });
    return p;
  };
  kc('admin.kubeconfig', 'runner-fleet-admin', tokens.admin);
  const cmKubeconfig = kc(
    'controller-manager.kubeconfig',
    'system:kube-controller-manager',
    tokens.controllerManager,
  );
  const schedKubeconfig = kc('scheduler.kubeconfig', 'system:kube-scheduler', tokens.scheduler);
  const kwokKubeconfig = kc('kwok.kubeconfig', 'runner-fleet-kwok', tokens.kwok);
  writeFileSync(path.join(dir, 'kwok.yaml'), kwokConfigYaml(versions.kubernetes));

  const nodeNames = Array.from({ length: opts.nodes ?? 2 }, (_, i) => `kwok-node-${i}`);
  let state: ClusterState = {
    version: 1,
    dir,
    server,
    kubeconfig,
    caCert: pki.caCert,
    adminTokenFile,
    ports: { etcdClient, etcdPeer, apiserver, controllerManager, scheduler },
    nodes: nodeNames,
    ...(opts.ownerPid === undefined ? {} : { owner: opts.ownerPid }),
    versions,
    startedAt: new Date().toISOString(),
    ready: false,
    components: [],
  };
  const start = (name: string, bin: string, args: string[], env?: NodeJS.ProcessEnv): Started => {
    // An orphaned start-up (its owner was killed) must not launch components its watchdog may already have missed.
    if (opts.ownerPid !== undefined && !pidAlive(opts.ownerPid)) {
      throw new TestenvError(
        'TESTENV_OWNER_GONE',
        `process ${opts.ownerPid}, which owns this control plane, exited`,
      );
    }
    log(`starting ${name}`);
    const s = startComponent({
      name,
      bin,
      args,
      log: path.join(dir, 'logs', `${name}.log`),
      ...(env ? { env } : {}),
    });
    appendFileSync(path.join(dir, 'pgids'), `${s.record.pid}\n`);
    // Recorded at once, so `down` (or the next `up`) can clean up even if this process dies mid-start.
    state = { ...state, components: [...state.components, s.record] };
    writeState(state);
    return s;
  };
  const ca = readFileSync(pki.caCert, 'utf8');
  const admin: Endpoint = { server, ca, token: tokens.admin };

  try {
    if (opts.ownerPid !== undefined) {
      // Started first and stopped last: if the owner dies at any point, whatever has been started goes too.
      const watchdog = path.join(testenvDir, 'watchdog.sh');
      const s = startComponent({
        name: 'watchdog',
        bin: watchdog,
        args: [String(opts.ownerPid), dir, opts.removeDirOnOwnerExit ? 'remove' : 'keep'],
        log: path.join(dir, 'logs', 'watchdog.log'),
      });
      state = { ...state, components: [s.record] };
      writeState(state);
    }

    const etcd = start('etcd', bins.etcd, [
      '--name=testenv',
      `--data-dir=${path.join(dir, 'etcd')}`,
      `--listen-client-urls=http://127.0.0.1:${etcdClient}`,
      `--advertise-client-urls=http://127.0.0.1:${etcdClient}`,
      `--listen-peer-urls=http://127.0.0.1:${etcdPeer}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeer}`,
      `--initial-cluster=testenv=http://127.0.0.1:${etcdPeer}`,
      // Throwaway data: durability is not worth the fsync latency on a shared disk.
      '--unsafe-no-fsync',
      '--log-level=warn',
    ]);
    await waitAll(
      [
        {
          what: 'etcd /health',
          started: etcd,
          check: async () => {
            const res = await fetch(`http://127.0.0.1:${etcdClient}/health`, {
              signal: AbortSignal.timeout(2_000),
            });
            return res.ok && ((await res.json()) as { health?: string }).health === 'true';
          },
        },
      ],
      deadline,
    );

    const apiserverProc = start('kube-apiserver', bins.kubeApiserver, [
      `--etcd-servers=http://127.0.0.1:${etcdClient}`,
      '--bind-address=127.0.0.1',
      '--advertise-address=127.0.0.1',
      `--secure-port=${apiserver}`,
      `--cert-dir=${path.join(dir, 'apiserver')}`,
      `--tls-cert-file=${pki.serverCert}`,
      `--tls-private-key-file=${pki.serverKey}`,
      `--client-ca-file=${pki.caCert}`,
      `--token-auth-file=${path.join(dir, 'tokens.csv')}`,
      '--authorization-mode=Node,RBAC',
      // Bound service-account tokens (TokenRequest) are signed with sa.key and verified with sa.pub.
      `--service-account-issuer=${ISSUER}`,
      `--service-account-key-file=${pki.serviceAccountPub}`,
      `--service-account-signing-key-file=${pki.serviceAccountKey}`,
      `--service-cluster-ip-range=${SERVICE_CIDR}`,
      // The default admission chain (NamespaceLifecycle, ServiceAccount, LimitRanger, ResourceQuota, PodSecurity,
      // DefaultTolerationSeconds, webhooks, ...) plus NodeRestriction, as a production cluster runs it.
      '--enable-admission-plugins=NodeRestriction',
      // dind runner pods need a privileged sidecar.
      '--allow-privileged=true',
      // The lease reconciler would publish 127.0.0.1 as the `kubernetes` Service's endpoint, which is invalid.
      '--endpoint-reconciler-type=none',
      '--profiling=false',
    ]);
    await waitAll(
      [
        {
          what: 'kube-apiserver /readyz',
          started: apiserverProc,
          check: async () => (await httpsRequest(admin, 'GET', '/readyz', undefined, 5_000)).status === 200,
        },
      ],
      deadline,
    );

    const cm = start('kube-controller-manager', bins.kubeControllerManager, [
      `--kubeconfig=${cmKubeconfig}`,
      '--bind-address=127.0.0.1',
      `--secure-port=${controllerManager}`,
      `--cert-dir=${path.join(dir, 'controller-manager')}`,
      '--leader-elect=false',
      // Each controller acts as its own ServiceAccount in kube-system, as in production; RBAC gaps show up here too.
      '--use-service-account-credentials=true',
      // Signs the tokens of legacy service-account-token Secrets; root-ca-file goes into kube-root-ca.crt ConfigMaps.
      `--service-account-private-key-file=${pki.serviceAccountKey}`,
      `--root-ca-file=${pki.caCert}`,
      `--cluster-signing-cert-file=${pki.caCert}`,
      `--cluster-signing-key-file=${pki.caKey}`,
      `--service-cluster-ip-range=${SERVICE_CIDR}`,
      // Enough client throughput that garbage collection keeps up with benchmark bursts.
      '--kube-api-qps=100',
      '--kube-api-burst=200',
      '--profiling=false',
    ]);
    const sched = start('kube-scheduler', bins.kubeScheduler, [
      `--kubeconfig=${schedKubeconfig}`,
      '--bind-address=127.0.0.1',
      `--secure-port=${scheduler}`,
      `--cert-dir=${path.join(dir, 'scheduler')}`,
      '--leader-elect=false',
    ]);
    const kwok = start(
      'kwok',
      bins.kwok,
      [
        `--kubeconfig=${kwokKubeconfig}`,
        `--config=${path.join(dir, 'kwok.yaml')}`,
        `--manage-nodes-with-label-selector=${KWOK_NODE_LABEL}=true`,
        `--cidr=${POD_CIDR}`,
      ],
      // kwok also reads $KWOK_WORKDIR/kwok.yaml (default ~/.kwok); point it at the run directory so a developer's own
      // kwok configuration cannot change the stages.
      { ...process.env, KWOK_WORKDIR: path.join(dir, 'kwok') },
    );

    for (const name of nodeNames) {
      const res = await httpsRequest(admin, 'POST', '/api/v1/nodes', {
        apiVersion: 'v1',
        kind: 'Node',
        metadata: {
          name,
          labels: {
            [KWOK_NODE_LABEL]: 'true',
            'kubernetes.io/hostname': name,
            'kubernetes.io/os': 'linux',
            'kubernetes.io/arch': 'amd64',
            type: 'kwok',
          },
        },
        // Room for the 2,000-pod benchmark on the default two nodes.
        status: {
          capacity: { cpu: '1000', memory: '4Ti', pods: '2000' },
          allocatable: { cpu: '1000', memory: '4Ti', pods: '2000' },
        },
      });
      if (res.status !== 201) {
        throw new TestenvError('TESTENV_NODE', `creating node ${name}: HTTP ${res.status} ${res.body}`);
      }
    }

    const healthz = (port: number) => async () =>
      (await httpsRequest({ server: `https://127.0.0.1:${port}` }, 'GET', '/healthz', undefined, 5_000))
        .status === 200;
    await waitAll(
      [
        { what: 'kube-controller-manager /healthz', started: cm, check: healthz(controllerManager) },
        { what: 'kube-scheduler /healthz', started: sched, check: healthz(scheduler) },
        {
          what: `kwok nodes Ready (${nodeNames.join(', ')})`,
          started: kwok,
          check: async () => {
            const res = await httpsRequest(
              admin,
              'GET',
              `/api/v1/nodes?labelSelector=${KWOK_NODE_LABEL}%3Dtrue`,
            );
            const list = JSON.parse(res.body) as {
              items?: { status?: { conditions?: { type: string; status: string }[] } }[];
            };
            const ready = (list.items ?? []).filter((n) =>
              n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
            );
            return ready.length === nodeNames.length;
          },
        },
        {
          // Pods are admitted only once their namespace's `default` ServiceAccount exists (ServiceAccount
          // admission); the controller-manager's serviceaccount controller creates it.
          what: 'ServiceAccount default/default',
          started: cm,
          check: async () =>
            (await httpsRequest(admin, 'GET', '/api/v1/namespaces/default/serviceaccounts/default'))
              .status === 200,
        },
      ],
      deadline,
    );
    state = { ...state, ready: true };
    writeState(state);
    log(`control plane ready at ${server}`);
    return { state, adminToken: tokens.admin };
  } catch (err) {
    log(`start-up failed; stopping what was started (logs kept in ${path.join(dir, 'logs')})`);
    await stopComponents([...state.components].reverse());
    throw err;
  }
}

export interface ComponentStatus {
  readonly name: string;
  readonly pid: number;
  readonly running: boolean;
}

export interface ClusterHealth {
  readonly components: readonly ComponentStatus[];
  /** HTTP status of the apiserver's /readyz with the admin token, or the error text. */
  readonly readyz: number | string;
  readonly healthy: boolean;
}

export async function clusterHealth(state: ClusterState): Promise<ClusterHealth> {
  const components = state.components.map((c) => ({ name: c.name, pid: c.pid, running: isRunning(c) }));
  let readyz: number | string;
  try {
    const endpoint: Endpoint = {
      server: state.server,
      ca: readFileSync(state.caCert, 'utf8'),
      token: readAdminToken(state),
    };
    readyz = (await httpsRequest(endpoint, 'GET', '/readyz', undefined, 5_000)).status;
  } catch (err) {
    readyz = err instanceof Error ? err.message : String(err);
  }
  return { components, readyz, healthy: state.ready && readyz === 200 && components.every((c) => c.running) };
}

/** Stops every recorded component (the watchdog last) and, when asked, removes the run directory. */
export async function stopCluster(dir: string, opts: { removeDir?: boolean } = {}): Promise<boolean> {
  const state = readState(dir);
  if (!state) return false;
  const byOrder = [...state.components].reverse();
  const watchdog = byOrder.filter((c) => c.name === 'watchdog');
  await stopComponents(byOrder.filter((c) => c.name !== 'watchdog'));
  await stopComponents(watchdog, 1_000);
  if (opts.removeDir) rmSync(dir, { recursive: true, force: true });
  return true;
}
