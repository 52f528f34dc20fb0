/**
 * Test aids for least-privilege suites: apply manifests as the admin, and give the controller (or a runner) a
 * ServiceAccount token so the code under test runs with exactly the rights the RBAC data grants.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import { AuthorizationV1Api, CoreV1Api, KubernetesObjectApi } from '@kubernetes/client-node';
import type { KubeObject, NamespaceNeeds, Permission } from '../../src/kubernetes/rbac-manifests.js';
import {
  controllerPermissions,
  controllerRbacObjects,
  describePermission,
} from '../../src/kubernetes/rbac-manifests.js';
import { subjectCan } from '../../src/kubernetes/rights-check.js';
import type { TestCluster } from './helpers.js';
import { isApiStatus, waitFor } from './helpers.js';

/** Creates each object, replacing one that exists (kubectl apply, minus the three-way merge). */
export async function applyObjects(kubeConfig: KubeConfig, objects: readonly KubeObject[]): Promise<void> {
  const api = KubernetesObjectApi.makeApiClient(kubeConfig);
  for (const object of objects) {
    try {
      await api.create(object);
    } catch (error) {
      if (!isApiStatus(error, 409)) throw error;
      const existing = await api.read(
        object as Required<Pick<KubeObject, 'apiVersion' | 'kind' | 'metadata'>>,
      );
      await api.replace({
        ...object,
        metadata: { ...object.metadata, resourceVersion: existing.metadata?.resourceVersion },
      });
    }
  }
}

/**
 * Waits until the API server's authorizer answers `allowed` for every one of `permissions` of `subject`. A Role or
 * RoleBinding write reaches the RBAC authorizer through its watch a moment after the write returns (longer on a
 * loaded machine), so a check made at once can still see the old rules. Fails after 30 s.
 */
export async function untilAuthorized(
  cluster: TestCluster,
  subject: { readonly namespace: string; readonly name: string },
  permissions: readonly Permission[],
  allowed: boolean,
): Promise<void> {
  const authz = cluster.kubeConfig().makeApiClient(AuthorizationV1Api);
  const what = permissions.map(describePermission).join(', ');
  await waitFor(
    `the authorizer to ${allowed ? 'grant' : 'refuse'} ${subject.namespace}/${subject.name}: ${what}`,
    async () =>
      (await Promise.all(permissions.map((p) => subjectCan(authz, subject, p)))).every((a) => a === allowed),
    { timeoutMs: 30_000, intervalMs: 50 },
  );
}

/** A short-lived token of a ServiceAccount (TokenRequest), and a KubeConfig that uses it. */
export async function serviceAccountKubeConfig(
  cluster: TestCluster,
  namespace: string,
  name: string,
): Promise<{ token: string; kubeConfig: KubeConfig }> {
  const core = cluster.kubeConfig().makeApiClient(CoreV1Api);
  const request = await core.createNamespacedServiceAccountToken({
    name,
    namespace,
    body: { spec: { audiences: [], expirationSeconds: 3600 } },
  });
  const token = request.status?.token;
  if (!token) throw new Error(`no token for ${namespace}/${name}`);
  return { token, kubeConfig: cluster.kubeConfig(token) };
}

export interface ControllerIdentity {
  readonly namespace: string;
  readonly name: string;
  readonly kubeConfig: KubeConfig;
  readonly objects: readonly KubeObject[];
}

/**
 * The controller's ServiceAccount in `namespace` with the Roles of rbac-rules.ts for `needs` (what the chart and
 * `runner-fleet rbac` install), and a KubeConfig holding its token: no admin rights.
 */
export async function installController(
  cluster: TestCluster,
  namespace: string,
  needs: readonly NamespaceNeeds[],
  leaseName = 'test-leader',
): Promise<ControllerIdentity> {
  const name = 'runner-fleet';
  const objects = controllerRbacObjects(
    needs,
    { controllerServiceAccount: { namespace, name }, controllerRole: 'runner-fleet-controller', leaseName },
    { includeServiceAccount: true },
  );
  await applyObjects(cluster.kubeConfig(), objects);
  await untilAuthorized(cluster, { namespace, name }, controllerPermissions(needs, { leaseName }), true);
  const { kubeConfig } = await serviceAccountKubeConfig(cluster, namespace, name);
  return { namespace, name, kubeConfig, objects };
}

/** The controller's identity with the leader-election rights alone: the one Lease `leaseName` in `namespace`. */
export function installLeaseHolder(
  cluster: TestCluster,
  namespace: string,
  leaseName: string,
): Promise<ControllerIdentity> {
  return installController(
    cluster,
    namespace,
    [{ namespace, runners: false, controller: true, features: ['leaderElection'] }],
    leaseName,
  );
}
