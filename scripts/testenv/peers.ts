/**
 * Where the test control plane's binaries live: a cache outside the repository, keyed by the versions pinned in
 * versions.env. build-peers.sh fills it; this module only locates binaries and runs that script when asked.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export const testenvDir = path.dirname(fileURLToPath(import.meta.url));
export const repoRoot = path.resolve(testenvDir, '..', '..');

export interface PeerVersions {
  readonly kubernetes: string;
  readonly etcd: string;
  readonly kwok: string;
}

export interface PeerBinaries {
  readonly kubeApiserver: string;
  readonly kubeControllerManager: string;
  readonly kubeScheduler: string;
  readonly etcd: string;
  readonly kwok: string;
}

export class TestenvError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TestenvError';
    this.code = code;
  }
}

/** The cold build time build-peers.sh records in the cache (record-build.ts); `npm run bench` adopts it. */
export const RECORDED_BUILD_FILE = 'testenv-build.json';

export function cacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.RUNNER_FLEET_CACHE ?? path.join(os.homedir(), '.cache', 'runner-fleet');
}

/** Run directory of the hand-started control plane: $RUNNER_FLEET_TESTENV_DIR or <repo>/.testenv (gitignored). */
export function defaultRunDir(env: NodeJS.ProcessEnv = process.env): string {
  return path.resolve(env.RUNNER_FLEET_TESTENV_DIR ?? path.join(repoRoot, '.testenv'));
}

export function readVersions(file = path.join(testenvDir, 'versions.env')): PeerVersions {
  const vars = new Map<string, string>();
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const m = /^([A-Z0-9_]+)=(\S+)\s*$/.exec(line);
    if (m) vars.set(m[1] as string, m[2] as string);
  }
  const get = (name: string): string => {
    const v = vars.get(name);
    if (!v) throw new TestenvError('TESTENV_VERSIONS', `${file} does not set ${name}`);
    return v;
  };
  return { kubernetes: get('KUBERNETES_VERSION'), etcd: get('ETCD_VERSION'), kwok: get('KWOK_VERSION') };
}

export function peerBinaries(cache = cacheDir(), versions = readVersions()): PeerBinaries {
  const k8s = path.join(cache, `k8s-${versions.kubernetes}`, 'bin');
  return {
    kubeApiserver: path.join(k8s, 'kube-apiserver'),
    kubeControllerManager: path.join(k8s, 'kube-controller-manager'),
    kubeScheduler: path.join(k8s, 'kube-scheduler'),
    etcd: path.join(cache, `etcd-${versions.etcd}`, 'bin', 'etcd'),
    kwok: path.join(cache, `kwok-${versions.kwok}`, 'bin', 'kwok'),
  };
}

/** Peers whose build is not complete (build-peers.sh stamps each finished peer directory with `.complete`). */
export function missingPeers(cache = cacheDir(), versions = readVersions()): string[] {
  const dirs: [string, string][] = [
    [`kubernetes ${versions.kubernetes}`, `k8s-${versions.kubernetes}`],
    [`etcd ${versions.etcd}`, `etcd-${versions.etcd}`],
    [`kwok ${versions.kwok}`, `kwok-${versions.kwok}`],
  ];
  return dirs.filter(([, dir]) => !existsSync(path.join(cache, dir, '.complete'))).map(([name]) => name);
}

/** Runs build-peers.sh (a no-op when everything is cached), streaming its progress to `log`. */
export async function buildPeers(
  log: (line: string) => void,
  env: NodeJS.ProcessEnv = process.env,
): Promise<void> {
  const script = path.join(testenvDir, 'build-peers.sh');
  const child = spawn(script, [], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  createInterface({ input: child.stdout }).on('line', log);
  createInterface({ input: child.stderr }).on('line', log);
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', resolve);
  });
  if (code !== 0) {
    throw new TestenvError('TESTENV_BUILD_FAILED', `${script} exited with ${code}; see its output above`);
  }
}
