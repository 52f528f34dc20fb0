/**
 * The controller's Kubernetes client reuses its connections: a KubeConfig from loadKubeConfig (what `start`, the
 * provider and leader election use) sends its API calls over kept-alive connections, where client-node alone opens
 * a new connection (against a real API server: with its TLS handshake) for every call. The calls go to the real API
 * server through a forwarding proxy, which counts the connections it accepts.
 */
import type { Socket } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadKubeConfig } from '../../src/kubernetes/kubeconfig.js';
import type { ApiServerProxy } from '../support/api-server-proxy.js';
import { startApiServerProxy } from '../support/api-server-proxy.js';
import { createTestNamespace, requireCluster, useTestCluster } from './helpers.js';

describe.skipIf(!requireCluster('connection reuse'))('Kubernetes client connections', () => {
  const cluster = useTestCluster();
  const dir = mkdtempSync(path.join(tmpdir(), 'rf-kube-conn-'));
  const file = path.join(dir, 'kubeconfig');
  let namespace: string;
  let proxy: ApiServerProxy;
  const sockets = new Set<Socket>();

  beforeAll(async () => {
    proxy = await startApiServerProxy({
      target: cluster.server,
      caCert: cluster.caCert,
      onRequest: (req) => {
        sockets.add(req.socket);
        return undefined;
      },
    });
    writeFileSync(file, proxy.kubeConfig(cluster.adminToken).exportConfig(), { mode: 0o600 });
    namespace = await createTestNamespace(cluster, 'rf-conn');
  });
  afterAll(async () => {
    await proxy.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** New connections the proxy accepted while `work` ran. */
  async function connections(work: () => Promise<unknown>): Promise<number> {
    const before = sockets.size;
    await work();
    return sockets.size - before;
  }

  it('sends sequential and concurrent calls over kept-alive connections', async () => {
    const core = loadKubeConfig(file).makeApiClient(CoreV1Api);
    await core.listNamespacedPod({ namespace });
    // Twenty calls one after the other: the connection of the first call serves them all.
    expect(
      await connections(async () => {
        for (let i = 0; i < 20; i++) await core.listNamespacedPod({ namespace });
      }),
    ).toBe(0);
    // Sixteen at once open at most sixteen; sixteen more at once reuse them.
    const burst = () =>
      Promise.all(
        Array.from({ length: 16 }, (_, i) =>
          core.createNamespacedConfigMap({
            namespace,
            body: { metadata: { generateName: `c${i}-` }, data: { a: 'b' } },
          }),
        ),
      );
    expect(await connections(burst)).toBeLessThanOrEqual(16);
    expect(await connections(burst)).toBe(0);
  });

  it('is what makes the difference: client-node alone opens a connection per call', async () => {
    const plain = new KubeConfig();
    plain.loadFromFile(file);
    const core = plain.makeApiClient(CoreV1Api);
    expect(
      await connections(async () => {
        for (let i = 0; i < 5; i++) await core.listNamespacedPod({ namespace });
      }),
    ).toBe(5);
  });
});
