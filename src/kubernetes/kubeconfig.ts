/** Loading a KubeConfig for the controller, its provider and its leader election: the one place that reads one. */
import { KubeConfig } from '@kubernetes/client-node';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { reuseConnections } from './connections.js';

/** Where a pod finds its ServiceAccount token (client-node's in-cluster configuration reads it). */
const SERVICE_ACCOUNT_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token';

export class KubeOptionsError extends Error {
  readonly code = 'kubeconfig-invalid';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'KubeOptionsError';
  }
}

/**
 * `--kubeconfig F` when given; otherwise $KUBECONFIG, ~/.kube/config or, inside a pod, its ServiceAccount
 * (client-node's loadFromDefault). With none of them, client-node would fall back to http://localhost:8080 and fail
 * later with an unrelated message; this says what is missing instead.
 */
export function loadKubeConfig(file: string | undefined, env: NodeJS.ProcessEnv = process.env): KubeConfig {
  if (file === undefined && !env.KUBECONFIG) {
    const home = path.join(env.HOME ?? os.homedir(), '.kube', 'config');
    if (!existsSync(home) && !existsSync(SERVICE_ACCOUNT_TOKEN)) {
      throw new KubeOptionsError(
        `no kubeconfig found: KUBECONFIG is not set, there is no ${home}, and this is not a pod with a ` +
          'ServiceAccount; pass --kubeconfig FILE or set KUBECONFIG for the kubernetes scale sets',
      );
    }
  }
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
  // One keep-alive connection per setting, not a new connection (and TLS handshake) per call.
  return reuseConnections(kubeConfig);
}
