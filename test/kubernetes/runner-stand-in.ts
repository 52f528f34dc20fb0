/**
 * A stand-in for the runner process inside kwok pods (kwok runs no containers): for each runner pod that kwok
 * reports Running it reads the registration the way the pod would (env + secretKeyRef -> Secret), and when the
 * secret asks for an outcome (`...-success-...` / `...-failure-...`) it makes the pod exit with 0 or 1 through
 * kwok's exit-code annotation. A pod whose Secret never appears never exits: that is a real runner's fate too.
 */
import type { KubeConfig, V1Pod } from '@kubernetes/client-node';
import { CoreV1Api, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { PodInformer } from '../../src/kubernetes/pod-informer.js';
import { registrationFromPod } from '../../src/providers/kubernetes/manifests.js';
import { EXIT_CODE_ANNOTATION } from './helpers.js';

export function outcomeOf(secret: string): 'success' | 'failure' | 'hold' {
  if (secret.includes('-success-')) return 'success';
  if (secret.includes('-failure-')) return 'failure';
  return 'hold';
}

export interface RunnerStandIn {
  /** Registrations read from Secrets, by pod name (what an emulated runner would have received). */
  readonly seen: ReadonlyMap<string, string>;
  stop(): Promise<void>;
}

export async function startRunnerStandIn(
  adminKubeConfig: KubeConfig,
  namespace: string,
): Promise<RunnerStandIn> {
  const core = adminKubeConfig.makeApiClient(CoreV1Api);
  const seen = new Map<string, string>();
  const done = new Set<string>();
  const informer = new PodInformer<{ name: string; phase: string }>({
    kubeConfig: adminKubeConfig,
    namespace,
    labelSelector: 'runner-fleet.dev/runner',
    project: (pod: V1Pod) => ({ name: pod.metadata?.name ?? '', phase: pod.status?.phase ?? '' }),
  });
  await informer.waitForSync();
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      for (const { name, phase } of informer.list()) {
        if (phase !== 'Running' || done.has(name)) continue;
        try {
          const pod = await core.readNamespacedPod({ name, namespace });
          if (pod.metadata?.deletionTimestamp) continue;
          const secret = await core.readNamespacedSecret({ name, namespace });
          const registration = registrationFromPod(pod, secret);
          if (!registration) continue;
          const value = registration.mode === 'jit' ? registration.jitConfig : registration.token;
          seen.set(name, value);
          done.add(name);
          const outcome = outcomeOf(value);
          if (outcome === 'hold') continue;
          await core.patchNamespacedPod(
            {
              name,
              namespace,
              body: {
                metadata: { annotations: { [EXIT_CODE_ANNOTATION]: outcome === 'success' ? '0' : '1' } },
              },
            },
            setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
          );
        } catch {
          // Not there yet (the Secret follows the pod) or already gone: try again on the next round.
        }
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  return {
    seen,
    async stop() {
      stopped = true;
      await loop;
      await informer.stop();
    },
  };
}
