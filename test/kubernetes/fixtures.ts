/** Small builders shared by the kubernetes suites. */
import type { CoreV1Api, V1Pod, V1PodTemplateSpec } from '@kubernetes/client-node';
import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { parse } from 'yaml';

export { scaleSetConfig } from '../../src/providers/kubernetes/scale-set.test-helpers.js';

/** Request options for a JSON merge patch. */
export const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

/**
 * What actions/runner-container-hooks does with ACTIONS_RUNNER_CONTAINER_HOOK_TEMPLATE: start from its own job pod
 * and apply the template: labels and annotations merged, every other spec field taken from the template.
 */
export function jobPodFromTemplate(name: string, template: V1PodTemplateSpec): V1Pod {
  const pod: V1Pod = {
    metadata: { name, labels: { 'runner-pod': 'x' }, annotations: {} },
    spec: {
      restartPolicy: 'Never',
      containers: [{ name: 'job', image: 'node:20', command: ['tail', '-f', '/dev/null'] }],
    },
  };
  Object.assign(pod.metadata!.labels!, template.metadata?.labels ?? {});
  Object.assign(pod.metadata!.annotations!, template.metadata?.annotations ?? {});
  for (const [key, value] of Object.entries(template.spec ?? {})) {
    if (key !== 'containers') (pod.spec as unknown as Record<string, unknown>)[key] = value;
  }
  return pod;
}

/**
 * The pod template the container hooks read for a runner pod: the file ACTIONS_RUNNER_CONTAINER_HOOK_TEMPLATE names,
 * from the ConfigMap volume mounted there.
 */
export async function hookTemplateOf(core: CoreV1Api, runnerPod: V1Pod): Promise<V1PodTemplateSpec> {
  const container = runnerPod.spec?.containers[0];
  const file = container?.env?.find((e) => e.name === 'ACTIONS_RUNNER_CONTAINER_HOOK_TEMPLATE')?.value ?? '';
  const mount = container?.volumeMounts?.find((m) => file.startsWith(`${m.mountPath}/`));
  const volume = runnerPod.spec?.volumes?.find((v) => v.name === mount?.name);
  if (!mount || !volume?.configMap?.name)
    throw new Error(`runner pod ${runnerPod.metadata?.name} mounts no hook template`);
  const cm = await core.readNamespacedConfigMap({
    name: volume.configMap.name,
    namespace: runnerPod.metadata!.namespace!,
  });
  return parse(cm.data?.[file.slice(mount.mountPath.length + 1)] ?? '') as V1PodTemplateSpec;
}
