/**
 * `demo --provider kubernetes`: the cluster side of the demo. The runner pods go to a namespace of the cluster the
 * kubeconfig names (created if missing), the controller checks its rights first as `start` does, and the kwok bridge
 * (src/sim/kube-bridge) plays the kubelet's part of running the runners, so the cluster must be one without real
 * kubelets for runner pods: a kwok cluster such as `npm run testenv -- up`.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import { CoreV1Api } from '@kubernetes/client-node';
import { describeApiError, isConflict, isNotFound } from '../kubernetes/api.js';
import { builtInScaleSets, readUserFleet } from './fleet.js';
import { checkControllerRightsForFleet } from '../providers/kubernetes/doctor.js';
import type { KubernetesProviderFactory } from '../providers/kubernetes/index.js';
import { createKubernetesProviderFactory } from '../providers/kubernetes/index.js';
import { startKubeBridge } from '../sim/kube-bridge/index.js';
import type { FleetConfig } from '../core/fleet-config.js';
import { loadKubeConfig } from '../kubernetes/kubeconfig.js';

export interface DemoKubernetes {
  readonly factory: KubernetesProviderFactory;
  readonly namespace: string;
  startRunners(fleet: string, namespaces: readonly string[]): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

export class DemoKubernetesError extends Error {
  readonly code = 'demo-kubernetes';
}

async function ensureNamespace(kubeConfig: KubeConfig, name: string): Promise<void> {
  const core = kubeConfig.makeApiClient(CoreV1Api);
  try {
    await core.readNamespace({ name });
    return;
  } catch (error) {
    if (!isNotFound(error)) {
      throw new DemoKubernetesError(`cannot read namespace ${name}: ${describeApiError(error)}`, {
        cause: error,
      });
    }
  }
  try {
    await core.createNamespace({
      body: { metadata: { name, labels: { 'app.kubernetes.io/part-of': 'runner-fleet-demo' } } },
    });
  } catch (error) {
    if (!isConflict(error)) {
      throw new DemoKubernetesError(`cannot create namespace ${name}: ${describeApiError(error)}`, {
        cause: error,
      });
    }
  }
}

export interface DemoKubernetesOptions {
  readonly kubeconfig?: string;
  /** Namespace of the built-in scale sets' runner pods. */
  readonly namespace: string;
  /** A user's fleet.yaml (--config): its kubernetes scale sets keep their namespaces. */
  readonly configPath?: string;
  readonly env: Readonly<Record<string, string | undefined>>;
}

/** Connects, prepares the namespace and checks the controller's rights; throws DemoKubernetesError with the reason. */
export async function prepareDemoKubernetes(options: DemoKubernetesOptions): Promise<DemoKubernetes> {
  const kubeConfig = loadKubeConfig(options.kubeconfig);
  const scaleSets = options.configPath
    ? readUserFleet(options.configPath, options.env).scaleSets
    : builtInScaleSets({ kubernetes: { namespace: options.namespace } });
  if (!options.configPath) await ensureNamespace(kubeConfig, options.namespace);
  const fleet = { name: 'demo', scaleSets } as unknown as Pick<FleetConfig, 'name' | 'scaleSets'>;
  let rights;
  try {
    rights = await checkControllerRightsForFleet(kubeConfig, fleet, {
      controllerNamespace: options.namespace,
      leaderElection: false,
      signal: AbortSignal.timeout(60_000),
    });
  } catch (error) {
    throw new DemoKubernetesError(
      `cannot check the controller's Kubernetes permissions on ${kubeConfig.getCurrentCluster()?.server}: ${(error as Error).message}`,
      { cause: error },
    );
  }
  if (!rights.ok) throw new DemoKubernetesError(rights.message);
  const factory = createKubernetesProviderFactory({ kubeConfig });
  return {
    factory,
    namespace: options.namespace,
    async startRunners(fleetName, namespaces) {
      const bridge = await startKubeBridge({ kubeConfig, namespaces, fleet: fleetName });
      return () => bridge.stop();
    },
    close: () => factory.close(),
  };
}
