/**
 * Cloud identity for runner pods and, in kubernetes container mode, for the job pods the container hooks start:
 * the runner ServiceAccount carries the identity annotation, the hook template gives job pods that same
 * ServiceAccount, and a job pod created from the template with the runner's own credentials (as the hook does)
 * runs as it. The controller sets all of this up with its least-privilege token.
 */
import { randomBytes } from 'node:crypto';
import type { V1PodTemplateSpec } from '@kubernetes/client-node';
import { CoreV1Api, RbacAuthorizationV1Api } from '@kubernetes/client-node';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import type { IdentityConfig } from '../../src/core/fleet-config.js';
import { HOOKS_ROLE_NAME } from '../../src/kubernetes/rbac-rules.js';
import type { KubernetesProviderFactory } from '../../src/providers/kubernetes/index.js';
import { createKubernetesProviderFactory } from '../../src/providers/kubernetes/index.js';
import { kubernetesProviderSchema } from '../../src/providers/kubernetes/schema.js';
import { jobPodFromTemplate, scaleSetConfig } from './fixtures.js';
import { createTestNamespace, requireCluster, useTestCluster, waitFor } from './helpers.js';
import type { ControllerIdentity } from './rbac-fixture.js';
import { installController, serviceAccountKubeConfig } from './rbac-fixture.js';

const logger = pino({ level: 'silent' });
const signal = () => AbortSignal.timeout(60_000);
const ROLE_ARN = 'arn:aws:iam::123456789012:role/ci-runner';

describe.skipIf(!requireCluster('kubernetes identity'))('cloud identity for runner and job pods', () => {
  const cluster = useTestCluster();
  let core: CoreV1Api;
  let namespace: string;
  let home: string;
  let controller: ControllerIdentity;
  const factories: KubernetesProviderFactory[] = [];
  const fleet = `id-${randomBytes(3).toString('hex')}`;

  function kubeProvider(name: string, identity: IdentityConfig, extra: Record<string, unknown> = {}) {
    const factory = createKubernetesProviderFactory({ kubeConfig: controller.kubeConfig });
    factories.push(factory);
    const scaleSet = scaleSetConfig(name, { namespace, containerMode: 'kubernetes', ...extra }, { identity });
    return factory.create(kubernetesProviderSchema.parse(scaleSet.provider), { fleet, scaleSet, logger });
  }

  beforeAll(async () => {
    core = cluster.kubeConfig().makeApiClient(CoreV1Api);
    namespace = await createTestNamespace(cluster, 'rf-id');
    home = await createTestNamespace(cluster, 'rf-home');
    controller = await installController(cluster, home, [
      { namespace, runners: true, controller: false, features: ['createServiceAccount', 'kubernetesMode'] },
    ]);
  });

  afterAll(async () => {
    await Promise.all(factories.map((f) => f.close()));
    for (const name of [namespace, home])
      if (name) await core.deleteNamespace({ name }).catch(() => undefined);
  });

  it('IRSA: the runner ServiceAccount carries the role, and job pods from the hook template run as it', async () => {
    const provider = kubeProvider('k8s-kube', { aws: { roleArn: ROLE_ARN } }, { podLabels: { team: 'ci' } });
    await provider.prepare(signal());

    const sa = await core.readNamespacedServiceAccount({ name: 'k8s-kube-runner', namespace });
    expect(sa.metadata?.annotations?.['eks.amazonaws.com/role-arn']).toBe(ROLE_ARN);

    const rbac = cluster.kubeConfig().makeApiClient(RbacAuthorizationV1Api);
    const binding = await rbac.readNamespacedRoleBinding({ name: 'k8s-kube-runner-hooks', namespace });
    expect(binding.roleRef.name).toBe(HOOKS_ROLE_NAME);
    expect(binding.subjects).toEqual([{ kind: 'ServiceAccount', name: 'k8s-kube-runner', namespace }]);

    // The runner pod runs as that ServiceAccount and points the hooks at the template.
    const runnerName = `k8s-kube-${randomBytes(4).toString('hex')}`;
    await provider.create(
      {
        name: runnerName,
        fleet,
        scaleSet: 'k8s-kube',
        registration: { mode: 'jit', jitConfig: 'jit-value-x' },
      },
      signal(),
    );
    const runnerPod = await core.readNamespacedPod({ name: runnerName, namespace });
    expect(runnerPod.spec?.serviceAccountName).toBe('k8s-kube-runner');
    const hookEnv = runnerPod.spec?.containers[0]?.env?.find(
      (e) => e.name === 'ACTIONS_RUNNER_CONTAINER_HOOK_TEMPLATE',
    );
    const mount = runnerPod.spec?.containers[0]?.volumeMounts?.find((m) =>
      hookEnv?.value?.startsWith(m.mountPath),
    );
    const volume = runnerPod.spec?.volumes?.find((v) => v.name === mount?.name);
    expect(volume?.configMap?.name).toBe('k8s-kube-hook-template');

    // The file the hook reads, from the ConfigMap the pod mounts.
    const cm = await core.readNamespacedConfigMap({ name: 'k8s-kube-hook-template', namespace });
    const fileName = (hookEnv?.value ?? '').slice((mount?.mountPath ?? '').length + 1);
    const template = parse(cm.data?.[fileName] ?? '') as V1PodTemplateSpec;
    expect(template.spec?.serviceAccountName).toBe('k8s-kube-runner');

    // Create a job pod as the hook does: with the runner ServiceAccount's own credentials.
    const runnerCreds = await serviceAccountKubeConfig(cluster, namespace, 'k8s-kube-runner');
    const asRunner = runnerCreds.kubeConfig.makeApiClient(CoreV1Api);
    const jobName = `${runnerName}-workflow`;
    await asRunner.createNamespacedPod({ namespace, body: jobPodFromTemplate(jobName, template) });
    const job = await waitFor('the job pod to run', async () => {
      const pod = await core.readNamespacedPod({ name: jobName, namespace });
      return pod.status?.phase === 'Running' ? pod : undefined;
    });
    expect(job.spec?.serviceAccountName).toBe('k8s-kube-runner');
    expect(job.spec?.automountServiceAccountToken).toBe(false);
    expect(job.metadata?.labels?.team).toBe('ci');
    // A job pod is not a runner pod: the provider does not list it.
    const listed = await provider.list({ fleet }, signal());
    expect(listed.map((i) => i.name)).toEqual([runnerName]);
    await asRunner.deleteNamespacedPod({ name: jobName, namespace });
    await provider.delete(runnerName, signal());
  }, 90_000);

  it('Azure: client-id annotation on the ServiceAccount, use label on runner and job pods', async () => {
    const clientId = '00000000-1111-2222-3333-444444444444';
    const provider = kubeProvider('k8s-azure', { azure: { clientId } });
    await provider.prepare(signal());
    const sa = await core.readNamespacedServiceAccount({ name: 'k8s-azure-runner', namespace });
    expect(sa.metadata?.annotations?.['azure.workload.identity/client-id']).toBe(clientId);
    const name = `k8s-azure-${randomBytes(4).toString('hex')}`;
    await provider.create(
      { name, fleet, scaleSet: 'k8s-azure', registration: { mode: 'jit', jitConfig: 'j' } },
      signal(),
    );
    const pod = await core.readNamespacedPod({ name, namespace });
    expect(pod.metadata?.labels?.['azure.workload.identity/use']).toBe('true');
    const cm = await core.readNamespacedConfigMap({ name: 'k8s-azure-hook-template', namespace });
    const template = parse(Object.values(cm.data ?? {})[0] ?? '') as V1PodTemplateSpec;
    expect(template.metadata?.labels?.['azure.workload.identity/use']).toBe('true');
    await provider.delete(name, signal());
  }, 60_000);

  it('switching from IRSA to EKS Pod Identity removes the role annotation (the SDKs would use it first)', async () => {
    const irsa = kubeProvider('k8s-switch', { aws: { roleArn: ROLE_ARN } });
    await irsa.prepare(signal());
    const annotated = await core.readNamespacedServiceAccount({ name: 'k8s-switch-runner', namespace });
    expect(annotated.metadata?.annotations?.['eks.amazonaws.com/role-arn']).toBe(ROLE_ARN);

    const podIdentity = kubeProvider('k8s-switch', { aws: { roleArn: ROLE_ARN, podIdentity: true } });
    await podIdentity.prepare(signal());
    expect(podIdentity.stats.setupWrites).toBe(1);
    const plain = await core.readNamespacedServiceAccount({ name: 'k8s-switch-runner', namespace });
    expect(plain.metadata?.annotations?.['eks.amazonaws.com/role-arn']).toBeUndefined();

    const again = kubeProvider('k8s-switch', { aws: { roleArn: ROLE_ARN, podIdentity: true } });
    await again.prepare(signal());
    expect(again.stats.setupWrites).toBe(0);
  }, 60_000);

  it('a restart costs no setup writes; a changed identity is patched onto the ServiceAccount', async () => {
    const first = kubeProvider('k8s-gcp', { gcp: { serviceAccount: 'ci@proj.iam.gserviceaccount.com' } });
    await first.prepare(signal());
    expect(first.stats.setupWrites).toBe(3); // ServiceAccount, RoleBinding, ConfigMap

    const again = kubeProvider('k8s-gcp', { gcp: { serviceAccount: 'ci@proj.iam.gserviceaccount.com' } });
    await again.prepare(signal());
    expect(again.stats.setupWrites).toBe(0);

    const changed = kubeProvider('k8s-gcp', {
      gcp: { serviceAccount: 'other@proj.iam.gserviceaccount.com' },
    });
    await changed.prepare(signal());
    expect(changed.stats.setupWrites).toBe(1);
    const sa = await core.readNamespacedServiceAccount({ name: 'k8s-gcp-runner', namespace });
    expect(sa.metadata?.annotations?.['iam.gke.io/gcp-service-account']).toBe(
      'other@proj.iam.gserviceaccount.com',
    );
  }, 60_000);
});
