/**
 * A stand-in for the runner process inside kwok pods, for the provider contract: the kwok bridge
 * (src/sim/kube-bridge) reads each Running pod's registration the way the pod would (env + secretKeyRef -> Secret)
 * and, instead of an emulated runner, runs a function that exits as the secret asks (`...-success-...` exits 0,
 * `...-failure-...` exits 1, anything else holds until the pod is deleted); the bridge then writes the pod's status
 * as a kubelet would. A pod whose Secret never appears never exits: that is a real runner's fate too.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import { startKubeBridge } from '../../src/sim/kube-bridge/index.js';

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
  const seen = new Map<string, string>();
  const bridge = await startKubeBridge({
    kubeConfig: adminKubeConfig,
    namespaces: [namespace],
    secretRetryMs: 100,
    async run(registration, { pod, signal }) {
      const value = registration.mode === 'jit' ? registration.jitConfig : registration.token;
      seen.set(pod, value);
      const outcome = outcomeOf(value);
      if (outcome !== 'hold') return outcome === 'success' ? 0 : 1;
      await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
      return 143;
    },
  });
  return { seen, stop: () => bridge.stop() };
}
