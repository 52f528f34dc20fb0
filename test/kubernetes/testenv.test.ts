/**
 * Smoke test of the test control plane itself: the real kube-apiserver with RBAC, kwok nodes, scheduling, the
 * garbage collector and ServiceAccount tokens, through @kubernetes/client-node as the provider will use them.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { request } from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import {
  AuthenticationV1Api,
  AuthorizationV1Api,
  CoreV1Api,
  RbacAuthorizationV1Api,
  VersionApi,
  type V1Pod,
} from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { readState } from '../../scripts/testenv/cluster.js';
import { readVersions } from '../../scripts/testenv/peers.js';
import { isRunning } from '../../scripts/testenv/processes.js';
import {
  EXIT_CODE_ANNOTATION,
  KWOK_NODE_LABEL,
  createTestNamespace,
  isApiStatus,
  requireCluster,
  startTestCluster,
  useTestCluster,
  waitFor,
} from './helpers.js';

const pod = (name: string): V1Pod => ({
  metadata: { name },
  spec: {
    restartPolicy: 'Never',
    containers: [
      { name: 'runner', image: 'ghcr.io/actions/actions-runner:latest', command: ['/home/runner/run.sh'] },
    ],
  },
});

/** Status code of a raw GET, optionally with a bearer token, verified against the test CA. */
function rawGet(server: string, ca: string, path: string, token?: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      new URL(path, server),
      { ca, headers: token === undefined ? {} : { authorization: `Bearer ${token}` } },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    req.on('error', reject);
    req.end();
  });
}

describe.skipIf(!requireCluster('kubernetes test control plane'))('kubernetes test control plane', () => {
  const cluster = useTestCluster();

  it('serves the pinned Kubernetes release over TLS on loopback', async () => {
    expect(cluster.server).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const info = await cluster.kubeConfig().makeApiClient(VersionApi).getCode();
    expect(info.gitVersion).toBe(readVersions().kubernetes);
  });

  it('refuses unknown tokens (401) and anonymous requests for resources (403)', async () => {
    expect(await rawGet(cluster.server, cluster.caCert, '/api/v1/namespaces', 'not-a-valid-token')).toBe(401);
    expect(await rawGet(cluster.server, cluster.caCert, '/api/v1/namespaces')).toBe(403);
    expect(await rawGet(cluster.server, cluster.caCert, '/api/v1/namespaces', cluster.adminToken)).toBe(200);
    await expect(
      cluster.kubeConfig('still-not-a-token').makeApiClient(CoreV1Api).listNamespace(),
    ).rejects.toSatisfy((err) => isApiStatus(err, 401));
  });

  it('has Ready kwok nodes', async () => {
    const api = cluster.kubeConfig().makeApiClient(CoreV1Api);
    expect(cluster.nodeNames.length).toBeGreaterThan(0);
    // Other suites sharing the control plane may add nodes of their own; the started ones must all be there, Ready
    // and untainted. On a loaded machine the node controller may mark a node not-ready for a moment (a late kwok
    // heartbeat) and lift the taint again: the nodes must come back within 20 s.
    const problems = async (): Promise<string[]> => {
      const nodes = await api.listNode({ labelSelector: `${KWOK_NODE_LABEL}=true` });
      const byName = new Map(nodes.items.map((n) => [n.metadata?.name, n]));
      return cluster.nodeNames.flatMap((name) => {
        const node = byName.get(name);
        if (node === undefined) return [`${name}: missing`];
        const ready = node.status?.conditions?.find((c) => c.type === 'Ready')?.status;
        const taints = (node.spec?.taints ?? []).map((t) => t.key);
        return ready === 'True' && taints.length === 0
          ? []
          : [`${name}: Ready ${ready}, taints ${taints.join(',')}`];
      });
    };
    await expect.poll(problems, { timeout: 20_000, interval: 500 }).toEqual([]);
  });

  it('schedules a pod onto a kwok node, runs it, and ends it when told', async () => {
    const core = cluster.kubeConfig().makeApiClient(CoreV1Api);
    const namespace = await createTestNamespace(cluster, 'smoke-pod');
    await core.createNamespacedPod({ namespace, body: pod('ok') });
    await core.createNamespacedPod({ namespace, body: pod('fails') });
    const running = await waitFor('pods Running', async () => {
      const pods = await Promise.all(
        ['ok', 'fails'].map((name) => core.readNamespacedPod({ name, namespace })),
      );
      return pods.every((p) => p.status?.phase === 'Running') && pods;
    });
    for (const p of running) {
      // Placed by kube-scheduler (the pod named no node), started by kwok.
      expect(cluster.nodeNames).toContain(p.spec?.nodeName);
      expect(p.status?.conditions?.find((c) => c.type === 'PodScheduled')?.status).toBe('True');
      expect(p.status?.containerStatuses?.[0]?.state?.running).toBeDefined();
      expect(p.status?.podIP).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    }

    for (const [name, code] of [
      ['ok', '0'],
      ['fails', '3'],
    ] as const) {
      await core.patchNamespacedPod({
        name,
        namespace,
        body: [{ op: 'add', path: `/metadata/annotations`, value: { [EXIT_CODE_ANNOTATION]: code } }],
      });
    }
    const ok = await waitFor('pod ok Succeeded', async () => {
      const p = await core.readNamespacedPod({ name: 'ok', namespace });
      return p.status?.phase === 'Succeeded' && p;
    });
    expect(ok.status?.containerStatuses?.[0]?.state?.terminated?.exitCode).toBe(0);
    const failed = await waitFor('pod fails Failed', async () => {
      const p = await core.readNamespacedPod({ name: 'fails', namespace });
      return p.status?.phase === 'Failed' && p;
    });
    expect(failed.status?.containerStatuses?.[0]?.state?.terminated?.exitCode).toBe(3);
  }, 90_000);

  it('garbage-collects a Secret owned by a pod once the pod is deleted', async () => {
    const core = cluster.kubeConfig().makeApiClient(CoreV1Api);
    const namespace = await createTestNamespace(cluster, 'smoke-gc');
    const owner = await core.createNamespacedPod({ namespace, body: pod('runner') });
    await core.createNamespacedSecret({
      namespace,
      body: {
        metadata: {
          name: 'runner-jit',
          ownerReferences: [
            { apiVersion: 'v1', kind: 'Pod', name: 'runner', uid: owner.metadata?.uid ?? '' },
          ],
        },
        stringData: { jitconfig: 'opaque' },
      },
    });
    await waitFor('pod Running', async () => {
      const p = await core.readNamespacedPod({ name: 'runner', namespace });
      return p.status?.phase === 'Running';
    });
    // A graceful delete, as the provider does: kwok confirms it like a kubelet, then the garbage collector in
    // kube-controller-manager removes the dependent Secret.
    await core.deleteNamespacedPod({ name: 'runner', namespace });
    const gone = (read: () => Promise<unknown>) => async () => {
      try {
        await read();
        return false;
      } catch (err) {
        if (isApiStatus(err, 404)) return true;
        throw err;
      }
    };
    await waitFor(
      'pod gone',
      gone(() => core.readNamespacedPod({ name: 'runner', namespace })),
      { timeoutMs: 60_000 },
    );
    await waitFor(
      'secret garbage-collected',
      gone(() => core.readNamespacedSecret({ name: 'runner-jit', namespace })),
      {
        timeoutMs: 60_000,
      },
    );
  }, 150_000);

  it('issues ServiceAccount tokens (TokenRequest) that authenticate and are bounded by RBAC', async () => {
    const admin = cluster.kubeConfig();
    const core = admin.makeApiClient(CoreV1Api);
    const rbac = admin.makeApiClient(RbacAuthorizationV1Api);
    const namespace = await createTestNamespace(cluster, 'smoke-sa');
    await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: 'limited' } } });
    await rbac.createNamespacedRole({
      namespace,
      body: {
        metadata: { name: 'read-pods' },
        rules: [{ apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch'] }],
      },
    });
    await rbac.createNamespacedRoleBinding({
      namespace,
      body: {
        metadata: { name: 'limited-read-pods' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'read-pods' },
        subjects: [{ kind: 'ServiceAccount', name: 'limited', namespace }],
      },
    });
    const tokenRequest = await core.createNamespacedServiceAccountToken({
      name: 'limited',
      namespace,
      body: { spec: { audiences: [], expirationSeconds: 600 } },
    });
    const token = tokenRequest.status?.token ?? '';
    expect(token.split('.')).toHaveLength(3);

    const asSa = cluster.kubeConfig(token);
    const review = await asSa.makeApiClient(AuthenticationV1Api).createSelfSubjectReview({ body: {} });
    expect(review.status?.userInfo?.username).toBe(`system:serviceaccount:${namespace}:limited`);

    const can = async (verb: string, resource: string, ns: string): Promise<boolean> => {
      const res = await asSa.makeApiClient(AuthorizationV1Api).createSelfSubjectAccessReview({
        body: { spec: { resourceAttributes: { verb, resource, namespace: ns } } },
      });
      return res.status?.allowed === true;
    };
    expect(await can('list', 'pods', namespace)).toBe(true);
    expect(await can('create', 'pods', namespace)).toBe(false);
    expect(await can('get', 'secrets', namespace)).toBe(false);
    expect(await can('list', 'pods', 'kube-system')).toBe(false);

    const saCore = asSa.makeApiClient(CoreV1Api);
    await expect(saCore.listNamespacedPod({ namespace })).resolves.toBeDefined();
    await expect(saCore.listNamespacedSecret({ namespace })).rejects.toSatisfy((err) =>
      isApiStatus(err, 403),
    );

    // Bound tokens die with their ServiceAccount.
    await core.deleteNamespacedServiceAccount({ name: 'limited', namespace });
    await waitFor('token rejected after the ServiceAccount is deleted', async () => {
      try {
        await saCore.listNamespacedPod({ namespace });
        return false;
      } catch (err) {
        return isApiStatus(err, 401);
      }
    });
  }, 60_000);
});

describe.skipIf(!requireCluster('kubernetes test control plane lifecycle'))(
  'kubernetes test control plane lifecycle',
  () => {
    it('stop() ends every component of a private control plane and removes its directory', async () => {
      const cluster = await startTestCluster({ private: true, nodes: 1 });
      const state = readState(cluster.dir);
      expect(cluster.shared).toBe(false);
      expect(state?.components.map((c) => c.name)).toEqual(
        expect.arrayContaining([
          'etcd',
          'kube-apiserver',
          'kube-controller-manager',
          'kube-scheduler',
          'kwok',
        ]),
      );
      expect(state?.components.every((c) => isRunning(c))).toBe(true);
      await cluster.stop();
      expect(state?.components.filter((c) => isRunning(c))).toEqual([]);
      expect(existsSync(cluster.dir)).toBe(false);
    }, 240_000);

    it('a control plane whose owner is killed is torn down by its watchdog', async () => {
      const dir = mkdtempSync(path.join(os.tmpdir(), 'runner-fleet-testenv-'));
      const clusterModule = fileURLToPath(new URL('../../scripts/testenv/cluster.ts', import.meta.url));
      // A separate process owns the control plane, as a test worker would, and is then killed without any cleanup.
      const owner = spawn(
        process.execPath,
        [
          '--import',
          'tsx',
          '--input-type=module',
          '-e',
          `const { startCluster } = await import(${JSON.stringify(clusterModule)});
           await startCluster({ dir: ${JSON.stringify(dir)}, nodes: 1, ownerPid: process.pid, removeDirOnOwnerExit: true });
           console.log('READY');
           setInterval(() => {}, 60_000);`,
        ],
        { stdio: ['ignore', 'pipe', 'inherit'] },
      );
      try {
        await new Promise<void>((resolve, reject) => {
          createInterface({ input: owner.stdout }).on('line', (line) => {
            if (line === 'READY') resolve();
          });
          owner.on('exit', (code) => reject(new Error(`owner exited early with ${code}`)));
        });
        const state = readState(dir);
        const components = state?.components ?? [];
        expect(components.filter((c) => c.name !== 'watchdog').every((c) => isRunning(c))).toBe(true);
        owner.kill('SIGKILL');
        await waitFor(
          'watchdog teardown',
          async () => components.every((c) => !isRunning(c)) && !existsSync(dir),
          {
            timeoutMs: 60_000,
          },
        );
      } finally {
        owner.kill('SIGKILL');
      }
    }, 240_000);
  },
);
