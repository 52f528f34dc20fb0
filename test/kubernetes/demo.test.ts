/**
 * `runner-fleet demo --provider kubernetes --kubeconfig F` on the real control plane (the built CLI, as a user runs
 * it): runner pods in a fresh namespace, the bridge runs their runners, and the demo exits 0 with every routable job
 * completed and nothing leaked, in pods as well.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CoreV1Api } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireCluster, useTestCluster } from './helpers.js';

const CLI = join(import.meta.dirname, '../../dist/cli/main.js');

function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 170_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe.skipIf(!requireCluster('demo on kubernetes'))('demo --provider kubernetes', () => {
  const cluster = useTestCluster();
  // Made when the suite runs: a skipped suite's body is still collected, and its afterAll would not remove it.
  let dir = '';
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'runner-fleet-k8s-demo-'));
  });
  const namespace = `rf-demo-${randomBytes(3).toString('hex')}`;

  afterAll(async () => {
    await cluster
      .kubeConfig()
      .makeApiClient(CoreV1Api)
      .deleteNamespace({ name: namespace })
      .catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  });

  it('runs 20 jobs as runner pods and exits 0 with nothing left', async () => {
    const kubeconfig = join(dir, 'admin.kubeconfig');
    writeFileSync(kubeconfig, cluster.kubeConfig().exportConfig(), { mode: 0o600 });
    const result = await run([
      'demo',
      '--provider',
      'kubernetes',
      '--kubeconfig',
      kubeconfig,
      '--namespace',
      namespace,
      '--jobs',
      '20',
      '--duration',
      '5s',
      '--json',
    ]);
    expect(result.stderr.slice(-2000)).not.toMatch(/Error|error:/);
    expect(result.code).toBe(0);
    const summary = JSON.parse(result.stdout.trim().split('\n').at(-1)!) as Record<string, unknown>;
    expect(summary).toMatchObject({ jobs: 20, failed: 0, leakedRunners: 0, leakedInstances: 0 });
    expect(summary.completed).toBe(19); // one job has labels no scale set serves
    const core = cluster.kubeConfig().makeApiClient(CoreV1Api);
    const pods = await core.listNamespacedPod({ namespace, labelSelector: 'runner-fleet.dev/runner' });
    expect(pods.items).toEqual([]);
    const secrets = await core.listNamespacedSecret({ namespace, labelSelector: 'runner-fleet.dev/runner' });
    expect(secrets.items).toEqual([]);
  }, 180_000);

  it('refuses a provider it does not have', async () => {
    const result = await run(['demo', '--provider', 'nomad']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('--provider must be kubernetes or ec2');
  });
});
