/**
 * The kubernetes provider on the real control plane, beyond the shared contract: the secret channel, garbage
 * collection of runner Secrets, the API write budget, the informer's view of pods deleted or evicted by others and
 * its relist after 410 Gone, and the start-up checks of prepare().
 */
import { randomBytes } from 'node:crypto';
import { CoreV1Api } from '@kubernetes/client-node';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IdentityConfig } from '../../src/core/fleet-config.js';
import type { NamespaceNeeds } from '../../src/kubernetes/rbac-manifests.js';
import type { KubernetesProvider, KubernetesProviderFactory } from '../../src/providers/kubernetes/index.js';
import { createKubernetesProviderFactory } from '../../src/providers/kubernetes/index.js';
import { kubernetesProviderSchema } from '../../src/providers/kubernetes/schema.js';
import type { Instance, InstanceSpec } from '../../src/providers/provider.js';
import { ProviderError } from '../../src/providers/provider.js';
import { createTestNamespace, isApiStatus, requireCluster, useTestCluster, waitFor } from './helpers.js';
import { mergePatch, scaleSetConfig } from './fixtures.js';
import type { ControllerIdentity } from './rbac-fixture.js';
import { installController } from './rbac-fixture.js';
import { startVolumeProvisioner } from './volume-provisioner.js';

const logger = pino({ level: 'silent' });
const signal = () => AbortSignal.timeout(60_000);

describe.skipIf(!requireCluster('kubernetes provider'))('kubernetes provider', () => {
  const cluster = useTestCluster();
  let core: CoreV1Api;
  let namespace: string;
  let home: string;
  let controller: ControllerIdentity;
  const factories: KubernetesProviderFactory[] = [];
  const fleet = `prov-${randomBytes(3).toString('hex')}`;

  function provider(
    name: string,
    block: Record<string, unknown> = {},
    identity?: IdentityConfig,
    kubeConfig = controller.kubeConfig,
  ): KubernetesProvider {
    const factory = createKubernetesProviderFactory({
      kubeConfig,
      informer: { backoff: { initialMs: 100, maxMs: 1_000 } },
    });
    factories.push(factory);
    const scaleSet = scaleSetConfig(name, { namespace, ...block }, identity ? { identity } : {});
    return factory.create(kubernetesProviderSchema.parse(scaleSet.provider), { fleet, scaleSet, logger });
  }

  const spec = (scaleSet: string, secret = `jit-${randomBytes(16).toString('hex')}`): InstanceSpec => ({
    name: `${scaleSet}-${randomBytes(4).toString('hex')}`,
    fleet,
    scaleSet,
    registration: { mode: 'jit', jitConfig: secret },
  });

  beforeAll(async () => {
    core = cluster.kubeConfig().makeApiClient(CoreV1Api);
    namespace = await createTestNamespace(cluster, 'rf-prov');
    home = await createTestNamespace(cluster, 'rf-home');
    const needs: NamespaceNeeds[] = [
      { namespace, runners: true, controller: false, features: ['createServiceAccount', 'kubernetesMode'] },
    ];
    controller = await installController(cluster, home, needs);
  });

  afterAll(async () => {
    await Promise.all(factories.map((f) => f.close()));
    for (const name of [namespace, home])
      if (name) await core.deleteNamespace({ name }).catch(() => undefined);
  });

  it('the pod references its JIT config by secretKeyRef; the Secret is owned by the pod and collected with it', async () => {
    const p = provider('gc');
    await p.prepare(signal());
    const s = spec('gc');
    const instance = await p.create(s, signal());
    expect(instance.providerId).toBeTruthy();

    const pod = await core.readNamespacedPod({ name: s.name, namespace });
    const runner = pod.spec?.containers.find((c) => c.name === 'runner');
    expect(runner?.env?.find((e) => e.name === 'ACTIONS_RUNNER_INPUT_JITCONFIG')).toEqual({
      name: 'ACTIONS_RUNNER_INPUT_JITCONFIG',
      valueFrom: { secretKeyRef: { name: s.name, key: 'jitconfig' } },
    });
    expect(JSON.stringify(pod)).not.toContain((s.registration as { jitConfig: string }).jitConfig);

    const secret = await core.readNamespacedSecret({ name: s.name, namespace });
    expect(secret.immutable).toBe(true);
    expect(secret.metadata?.ownerReferences).toEqual([
      { apiVersion: 'v1', kind: 'Pod', name: s.name, uid: pod.metadata?.uid },
    ]);
    expect(Buffer.from(secret.data?.jitconfig ?? '', 'base64').toString()).toBe(
      (s.registration as { jitConfig: string }).jitConfig,
    );

    await p.delete(s.name, signal());
    // The garbage collector (kube-controller-manager) removes the Secret once its owner is gone.
    await waitFor(
      'the runner Secret to be garbage-collected',
      async () => {
        try {
          await core.readNamespacedSecret({ name: s.name, namespace });
          return false;
        } catch (error) {
          return isApiStatus(error, 404);
        }
      },
      { timeoutMs: 60_000 },
    );
    expect(p.stats).toMatchObject({ podCreates: 1, secretCreates: 1, podDeletes: 1, secretDeletes: 0 });
  }, 90_000);

  it('costs 3 API writes per runner over its life, retries and repeated deletes included', async () => {
    const p = provider('budget');
    await p.prepare(signal());
    const specs = Array.from({ length: 5 }, () => spec('budget'));
    await Promise.all(specs.map((s) => p.create(s, signal())));
    await Promise.all(specs.map((s) => p.create(s, signal()))); // idempotent retries: reads only
    await Promise.all(specs.map((s) => p.delete(s.name, signal())));
    await Promise.all(specs.map((s) => p.delete(s.name, signal()))); // already deleting: the API answers 200 or 404
    const { podCreates, secretCreates, secretDeletes } = p.stats;
    expect(podCreates + secretCreates + secretDeletes).toBe(10);
    expect(p.stats.podDeletes).toBeLessThanOrEqual(10);
    const writes = podCreates + secretCreates + secretDeletes + p.stats.podDeletes;
    expect(writes / specs.length).toBeLessThanOrEqual(4);
  }, 90_000);

  it('never deletes a pod that is not a runner pod, even when it has the name', async () => {
    const p = provider('foreign');
    await p.prepare(signal());
    const name = `foreign-${randomBytes(4).toString('hex')}`;
    await core.createNamespacedPod({
      namespace,
      body: { metadata: { name }, spec: { containers: [{ name: 'app', image: 'app' }] } },
    });
    await expect(p.delete(name, signal())).rejects.toMatchObject({ code: 'not-owned', retryable: false });
    expect((await core.readNamespacedPod({ name, namespace })).metadata?.deletionTimestamp).toBeUndefined();
    await core.deleteNamespacedPod({ name, namespace });
  });

  it('reports a pod deleted by someone else, and an evicted one, as failed instances', async () => {
    const p = provider('others');
    await p.prepare(signal());
    const seen: Instance[] = [];
    const stop = p.watch((i) => seen.push(i));
    try {
      const [a, b] = [spec('others'), spec('others')];
      await p.create(a, signal());
      await p.create(b, signal());
      await waitFor('both pods running', async () => {
        const list = await p.list({ fleet, scaleSet: 'others' }, signal());
        return list.filter((i) => i.state === 'running').length === 2;
      });

      await core.deleteNamespacedPod({ name: a.name, namespace });
      const deleted = await waitFor('the external deletion to be reported', async () =>
        seen.find((i) => i.name === a.name && i.state === 'failed'),
      );
      expect(deleted.message).toBe('pod was deleted outside runner-fleet');
      await waitFor('the deleted pod to leave list()', async () =>
        (await p.list({ fleet }, signal())).every((i) => i.name !== a.name),
      );

      await core.patchNamespacedPodStatus(
        {
          name: b.name,
          namespace,
          body: {
            status: { phase: 'Failed', reason: 'Evicted', message: 'The node was low on resource: memory.' },
          },
        },
        mergePatch,
      );
      const evicted = await waitFor('the eviction to be reported', async () =>
        seen.find((i) => i.name === b.name && i.state === 'failed'),
      );
      expect(evicted.message).toBe('Evicted: The node was low on resource: memory.');
      expect(seen.filter((i) => i.name === b.name && i.state === 'failed').length).toBeGreaterThan(0);
      // What this provider deletes itself is not reported back as a failure.
      await p.delete(b.name, signal());
      const before = seen.length;
      await new Promise((r) => setTimeout(r, 1_000));
      expect(seen.slice(before).filter((i) => i.name === b.name)).toEqual([]);
    } finally {
      stop();
    }
  }, 90_000);

  it('prepare refuses an existing ServiceAccount without the identity annotation, naming it and the fix', async () => {
    await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: 'plain-sa' } } });
    const identity = { aws: { roleArn: 'arn:aws:iam::123456789012:role/ci-runner' } };
    const p = provider('existing', { serviceAccount: { name: 'plain-sa' } }, identity);
    const error = await p.prepare(signal()).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ProviderError);
    expect((error as ProviderError).code).toBe('identity-annotation-mismatch');
    expect((error as ProviderError).message).toContain('annotation eks.amazonaws.com/role-arn is missing');
    expect((error as ProviderError).message).toContain('kubectl -n');

    await core.patchNamespacedServiceAccount(
      {
        name: 'plain-sa',
        namespace,
        body: { metadata: { annotations: { 'eks.amazonaws.com/role-arn': identity.aws.roleArn } } },
      },
      mergePatch,
    );
    await expect(p.prepare(signal())).resolves.toBeUndefined();
  }, 60_000);

  it('prepare names a missing namespace and an invalid pod template', async () => {
    const missing = provider('nons', { namespace: `missing-${randomBytes(3).toString('hex')}` });
    await expect(missing.prepare(signal())).rejects.toMatchObject({
      code: expect.stringMatching(/namespace-not-found|forbidden/),
    });

    for (const [name, container, says] of [
      ['badqty', { name: 'runner', resources: { requests: { cpu: 'lots' } } }, /quantities must match/],
      [
        'badport',
        { name: 'runner', ports: [{ containerPort: 99999 }] },
        /containerPort: Invalid value: 99999/,
      ],
    ] as const) {
      const invalid = provider(name, { template: { spec: { containers: [container] } } });
      const error = await invalid.prepare(signal()).then(
        () => undefined,
        (e: unknown) => e as ProviderError,
      );
      expect(error?.code).toBe('invalid-pod-template');
      expect(error?.message).toMatch(says);
    }
  }, 60_000);

  it('a kubernetes-mode runner pod runs once its ephemeral work claim is bound', async () => {
    const provisioner = startVolumeProvisioner(cluster.kubeConfig(), namespace);
    try {
      const p = provider('kmode', { containerMode: 'kubernetes', workVolume: { size: '2Gi' } });
      await p.prepare(signal());
      const s = spec('kmode');
      await p.create(s, signal());
      const running = await waitFor('the kubernetes-mode runner to run', async () =>
        (await p.list({ fleet, scaleSet: 'kmode' }, signal())).find(
          (i) => i.name === s.name && i.state === 'running',
        ),
      );
      expect(running.state).toBe('running');
      const claim = await core.readNamespacedPersistentVolumeClaim({ name: `${s.name}-work`, namespace });
      expect(claim.spec?.resources?.requests?.storage).toBe('2Gi');
      expect(claim.metadata?.ownerReferences?.[0]).toMatchObject({ kind: 'Pod', name: s.name });
      expect(provisioner.provisioned).toBeGreaterThanOrEqual(1);
      await p.delete(s.name, signal());
    } finally {
      await provisioner.stop();
    }
  }, 60_000);

  it('dind runs as a native sidecar on this (1.29+) API server, and the API server accepts the pod', async () => {
    const p = provider('dind', { containerMode: 'dind' });
    await p.prepare(signal());
    const s = spec('dind');
    await p.create(s, signal());
    const pod = await core.readNamespacedPod({ name: s.name, namespace });
    const dind = pod.spec?.initContainers?.find((c) => c.name === 'dind');
    expect(dind?.restartPolicy).toBe('Always');
    expect(dind?.securityContext?.privileged).toBe(true);
    expect(pod.spec?.containers.map((c) => c.name)).toEqual(['runner']);
    await p.delete(s.name, signal());
  }, 60_000);
});
