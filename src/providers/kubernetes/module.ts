/**
 * The `kubernetes` kind: one pod per runner (src/providers/kubernetes). Setting it up loads the KubeConfig and, with
 * `checkAccess`, checks the controller's rights (SelfSubjectAccessReview) before anything starts: a controller without
 * them would fail later, one runner at a time, with opaque errors.
 */
import type { ProviderModule } from '../provider.js';
import { ProviderSetupError } from '../provider.js';
import type { KubernetesProviderConfig } from './schema.js';
import { kubernetesProviderSchema } from './schema.js';

export const kubernetesModule = {
  kind: 'kubernetes' as const,
  schema: kubernetesProviderSchema,
  async setup({ fleet, connection, leaderElection, checkAccess, signal }) {
    const [{ loadKubeConfig }, { checkControllerRightsForFleet }, { createKubernetesProviderFactory }] =
      await Promise.all([
        import('../../kubernetes/kubeconfig.js'),
        import('./doctor.js'),
        import('./index.js'),
      ]);
    let kubeConfig;
    try {
      kubeConfig = loadKubeConfig(connection.kubeconfig);
    } catch (error) {
      throw new ProviderSetupError((error as Error).message, { code: 'kubeconfig-invalid', cause: error });
    }
    if (checkAccess) {
      const server = kubeConfig.getCurrentCluster()?.server ?? 'the cluster';
      let rights;
      try {
        rights = await checkControllerRightsForFleet(kubeConfig, fleet, {
          controllerNamespace: leaderElection?.namespace ?? 'default',
          leaderElection: leaderElection !== undefined,
          ...(leaderElection ? { leaseName: leaderElection.leaseName } : {}),
          signal,
        });
      } catch (error) {
        throw new ProviderSetupError(
          `cannot check the controller's Kubernetes permissions on ${server}: ${(error as Error).message}`,
          { code: 'kubernetes-unreachable', cause: error },
        );
      }
      if (!rights.ok) {
        throw new ProviderSetupError(`refusing to start.\n${rights.message.trimEnd()}`, {
          code: 'kubernetes-rights-missing',
        });
      }
    }
    return createKubernetesProviderFactory({ kubeConfig });
  },
} satisfies ProviderModule<KubernetesProviderConfig>;
