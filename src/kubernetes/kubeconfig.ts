/** Loading a KubeConfig for the controller, its provider and its leader election: the one place that reads one. */
import { KubeConfig } from '@kubernetes/client-node';

export class KubeOptionsError extends Error {
  readonly code = 'kubeconfig-invalid';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'KubeOptionsError';
  }
}

/**
 * `--kubeconfig F` when given; otherwise $KUBECONFIG, ~/.kube/config or, inside a pod, its ServiceAccount
 * (client-node's loadFromDefault).
 */
export function loadKubeConfig(file: string | undefined): KubeConfig {
  const kubeConfig = new KubeConfig();
  try {
    if (file !== undefined) kubeConfig.loadFromFile(file);
    else kubeConfig.loadFromDefault();
  } catch (error) {
    // The parser's message may quote the file; the file holds credentials, so only its name is shown.
    throw new KubeOptionsError(`cannot load the kubeconfig ${file ?? '(default)'}`, { cause: error });
  }
  if (kubeConfig.getCurrentCluster() === null) {
    throw new KubeOptionsError(`the kubeconfig ${file ?? '(default)'} names no current cluster`);
  }
  return kubeConfig;
}
