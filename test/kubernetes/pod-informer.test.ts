/**
 * The pod informer against the real API server: it resumes a closed watch without a new LIST, relists after
 * 410 Gone in both of the API server's forms and reports what it missed while blind, and recovers from errors with
 * a capped backoff. The rare answers are injected by a forwarding proxy; everything else is the real API server.
 */
import { randomBytes } from 'node:crypto';
import type { V1Pod } from '@kubernetes/client-node';
import { CoreV1Api } from '@kubernetes/client-node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { InformerEvent } from '../../src/kubernetes/pod-informer.js';
import { PodInformer } from '../../src/kubernetes/pod-informer.js';
import type { FaultProxy } from './fault-proxy.js';
import { startFaultProxy } from './fault-proxy.js';
import { createTestNamespace, requireCluster, useTestCluster, waitFor } from './helpers.js';

interface Slim {
  readonly name: string;
  readonly phase: string;
}

describe.skipIf(!requireCluster('pod informer'))('pod informer', () => {
  const cluster = useTestCluster();
  let core: CoreV1Api;
  let namespace: string;
  let proxy: FaultProxy;
  let informer: PodInformer<Slim> | undefined;
  const label = `informer-${randomBytes(3).toString('hex')}`;

  const pod = (name: string): V1Pod => ({
    metadata: { name, labels: { 'runner-fleet.dev/fleet': label } },
    spec: { containers: [{ name: 'runner', image: 'runner' }] },
  });
  const newName = () => `p-${randomBytes(4).toString('hex')}`;

  function start(): { informer: PodInformer<Slim>; events: InformerEvent<Slim>[] } {
    const events: InformerEvent<Slim>[] = [];
    informer = new PodInformer<Slim>({
      kubeConfig: proxy.kubeConfig(cluster.adminToken),
      namespace,
      labelSelector: `runner-fleet.dev/fleet=${label}`,
      project: (p) => ({ name: p.metadata?.name ?? '', phase: p.status?.phase ?? '' }),
      backoff: { initialMs: 50, maxMs: 400 },
    });
    informer.subscribe((e) => events.push(e));
    informer.start();
    return { informer, events };
  }

  beforeAll(async () => {
    core = cluster.kubeConfig().makeApiClient(CoreV1Api);
    namespace = await createTestNamespace(cluster, 'rf-informer');
    proxy = await startFaultProxy(cluster.server, cluster.caCert);
  });

  afterEach(async () => {
    await informer?.stop();
    informer = undefined;
  });

  afterAll(async () => {
    await proxy?.close();
    if (namespace) await core.deleteNamespace({ name: namespace }).catch(() => undefined);
  });

  it('lists, then follows the watch; a watch that ends is resumed without a new LIST', async () => {
    const before = newName();
    await core.createNamespacedPod({ namespace, body: pod(before) });
    const { informer: inf, events } = start();
    await inf.waitForSync(AbortSignal.timeout(30_000));
    expect(inf.get(before)).toBeDefined();
    expect(inf.stats.lists).toBe(1);

    inf.interruptWatch();
    const after = newName();
    await core.createNamespacedPod({ namespace, body: pod(after) });
    await waitFor('the pod created after the watch was resumed', async () => inf.get(after));
    await waitFor('kwok to run it', async () => inf.get(after)?.phase === 'Running');
    expect(inf.stats.lists).toBe(1);
    expect(inf.stats.watches).toBeGreaterThanOrEqual(2);
    expect(events.some((e) => e.type === 'modified' && e.object.name === after)).toBe(true);
  });

  for (const form of ['event', 'status'] as const) {
    it(`relists after 410 Gone (${form === 'event' ? 'ERROR event in the stream' : 'HTTP 410'}) and reports what it missed`, async () => {
      const gone = newName();
      await core.createNamespacedPod({ namespace, body: pod(gone) });
      const watchesBefore = proxy.counts.watches;
      const { informer: inf, events } = start();
      await inf.waitForSync(AbortSignal.timeout(30_000));
      await waitFor('the first pod', async () => inf.get(gone));
      await waitFor('the first watch', async () => proxy.counts.watches > watchesBefore);

      // Blind the informer: its next watch hangs, then answers 410, as after a long disconnection.
      let release!: () => void;
      const injected = proxy.counts.injected + 1;
      proxy.goneOnNextWatch(form, new Promise<void>((r) => (release = r)));
      inf.interruptWatch();
      await waitFor('the blinded watch', async () => proxy.counts.injected === injected);
      const added = newName();
      await core.createNamespacedPod({ namespace, body: pod(added) });
      await core.deleteNamespacedPod({ name: gone, namespace, gracePeriodSeconds: 0 });
      await waitFor('the deletion to complete', async () => {
        const list = await core.listNamespacedPod({ namespace, fieldSelector: `metadata.name=${gone}` });
        return list.items.length === 0;
      });
      expect(inf.get(added)).toBeUndefined();
      expect(proxy.counts.injected).toBe(injected);
      release();

      await waitFor('the relist', async () => inf.stats.relistsAfterGone === 1);
      await waitFor(
        'the missed changes',
        async () => inf.get(added) !== undefined && inf.get(gone) === undefined,
      );
      expect(inf.stats.lists).toBe(2);
      expect(events).toContainEqual(
        expect.objectContaining({ type: 'added', object: expect.objectContaining({ name: added }) }),
      );
      expect(events).toContainEqual(
        expect.objectContaining({ type: 'deleted', object: expect.objectContaining({ name: gone }) }),
      );
    });
  }

  it('recovers from API errors with a capped backoff, relisting', async () => {
    const { informer: inf } = start();
    await inf.waitForSync(AbortSignal.timeout(30_000));
    proxy.failNext(4);
    inf.interruptWatch();
    const later = newName();
    const started = Date.now();
    await core.createNamespacedPod({ namespace, body: pod(later) });
    await waitFor('the informer to recover', async () => inf.get(later), { timeoutMs: 15_000 });
    expect(inf.stats.errors).toBe(4);
    // 50 + 100 + 200 + 400 ms (jittered by 20 %) at most, plus the requests themselves.
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(inf.stats.lists).toBeGreaterThanOrEqual(2);
  });
});
