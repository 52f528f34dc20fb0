/**
 * The start-up self-check: asks the API server (SelfSubjectAccessReview) whether the controller holds every
 * permission of rbac-rules.ts in every namespace it uses, and, when some are missing, returns each missing rule and
 * the manifest that grants them. `start` refuses to run and `doctor` reports on the same result. The runner-side
 * check (SubjectAccessReview on a runner ServiceAccount) is here too, for `doctor`.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import { AuthenticationV1Api, AuthorizationV1Api } from '@kubernetes/client-node';
import { describeApiError, isForbidden, withSignal } from './api.js';
import type { NamespaceNeeds, Permission, RbacNames } from './rbac-manifests.js';
import {
  controllerPermissions,
  controllerRbacObjects,
  describePermission,
  runnerPermissions,
  toYamlDocuments,
} from './rbac-manifests.js';
import type { ContainerMode } from './rbac-rules.js';
import { mapLimit } from '../lib/async.js';

export type RightsCheckResult =
  | { readonly ok: true; readonly checked: number }
  | {
      readonly ok: false;
      readonly checked: number;
      readonly missing: readonly Permission[];
      /** Roles and RoleBindings (kubectl apply -f -) that grant everything the controller needs. */
      readonly manifest: string;
      /** Human-readable report: each missing rule on its own line, then the manifest. */
      readonly message: string;
    };

export interface CheckControllerRightsOptions {
  /** Names used in the suggested manifest; the ServiceAccount defaults to the caller's own identity. */
  readonly names: Omit<RbacNames, 'controllerServiceAccount'> & {
    readonly controllerServiceAccount?: RbacNames['controllerServiceAccount'];
  };
  readonly signal?: AbortSignal;
  /** Reviews in flight at once (default 8). */
  readonly concurrency?: number;
  /**
   * Check this ServiceAccount's rights (SubjectAccessReview: the caller needs `create subjectaccessreviews`)
   * instead of the caller's own (SelfSubjectAccessReview). For `doctor` run with an operator's credentials.
   */
  readonly asServiceAccount?: { readonly namespace: string; readonly name: string };
}

function resourceAttributes(p: Permission) {
  return {
    verb: p.verb,
    group: p.apiGroup,
    resource: p.resource,
    ...(p.subresource !== undefined ? { subresource: p.subresource } : {}),
    ...(p.namespace !== undefined ? { namespace: p.namespace } : {}),
    ...(p.name !== undefined ? { name: p.name } : {}),
  };
}

/** `system:serviceaccount:<ns>:<name>` of the credentials in use, when they are a ServiceAccount's. */
async function ownServiceAccount(kubeConfig: KubeConfig, signal?: AbortSignal) {
  try {
    const api = kubeConfig.makeApiClient(AuthenticationV1Api);
    const review = await api.createSelfSubjectReview(
      { body: { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' } },
      withSignal(signal),
    );
    const match = /^system:serviceaccount:([^:]+):([^:]+)$/.exec(review.status?.userInfo?.username ?? '');
    return match ? { namespace: match[1] as string, name: match[2] as string } : undefined;
  } catch {
    return undefined;
  }
}

export function formatMissing(missing: readonly Permission[], manifest: string): string {
  const lines = missing.map((p) => `  - ${describePermission(p)}`);
  return (
    `runner-fleet lacks ${missing.length} Kubernetes permission${missing.length === 1 ? '' : 's'}:\n` +
    `${lines.join('\n')}\n` +
    'Grant them with this manifest (kubectl apply -f -), or install the Helm chart deploy/helm/runner-fleet:\n' +
    manifest
  );
}

/**
 * Checks every permission the controller needs in `needs` (plus the cluster-scoped ones) with one
 * SelfSubjectAccessReview each. Never throws for a denied permission: that is the `missing` list.
 */
export async function checkControllerRights(
  kubeConfig: KubeConfig,
  needs: readonly NamespaceNeeds[],
  options: CheckControllerRightsOptions,
): Promise<RightsCheckResult> {
  const api = kubeConfig.makeApiClient(AuthorizationV1Api);
  const permissions = controllerPermissions(needs, options.names);
  const reqOptions = withSignal(options.signal);
  let reviewForbidden: unknown;
  const subject = options.asServiceAccount;
  const allowed = await mapLimit(permissions, options.concurrency ?? 8, async (p) => {
    if (subject) return subjectCan(api, subject, p, options.signal);
    try {
      const review = await api.createSelfSubjectAccessReview(
        {
          body: {
            apiVersion: 'authorization.k8s.io/v1',
            kind: 'SelfSubjectAccessReview',
            spec: { resourceAttributes: resourceAttributes(p) },
          },
        },
        reqOptions,
      );
      return review.status?.allowed === true;
    } catch (error) {
      // Without the right to ask, nothing else can be checked: report that one permission as missing.
      if (isForbidden(error)) {
        reviewForbidden = error;
        return false;
      }
      throw new Error(`cannot check Kubernetes permissions: ${describeApiError(error)}`, { cause: error });
    }
  });
  let missing = permissions.filter((_, i) => !allowed[i]);
  if (reviewForbidden !== undefined) {
    missing = permissions.filter((p) => p.resource === 'selfsubjectaccessreviews');
  }
  if (missing.length === 0) return { ok: true, checked: permissions.length };

  const bindTo = options.names.controllerServiceAccount ??
    subject ??
    (await ownServiceAccount(kubeConfig, options.signal)) ?? {
      namespace: needs.find((n) => n.controller)?.namespace ?? 'runner-fleet',
      name: 'runner-fleet',
    };
  const manifest = toYamlDocuments(
    controllerRbacObjects(needs, { ...options.names, controllerServiceAccount: bindTo }),
  );
  return {
    ok: false,
    checked: permissions.length,
    missing,
    manifest,
    message: formatMissing(missing, manifest),
  };
}

export interface RunnerRightsResult {
  readonly allowed: readonly Permission[];
  readonly missing: readonly Permission[];
}

/**
 * Whether a runner ServiceAccount holds what its container mode needs (SubjectAccessReview: the caller needs
 * `create subjectaccessreviews`, which `doctor` usually has through the operator's own credentials).
 */
export async function checkRunnerRights(
  kubeConfig: KubeConfig,
  runner: {
    readonly namespace: string;
    readonly serviceAccount: string;
    readonly containerMode: ContainerMode;
  },
  options: { readonly signal?: AbortSignal } = {},
): Promise<RunnerRightsResult> {
  const api = kubeConfig.makeApiClient(AuthorizationV1Api);
  const permissions = runnerPermissions(runner.containerMode, runner.namespace);
  const results = await mapLimit(permissions, 8, (p) =>
    subjectCan(api, { namespace: runner.namespace, name: runner.serviceAccount }, p, options.signal),
  );
  return {
    allowed: permissions.filter((_, i) => results[i]),
    missing: permissions.filter((_, i) => !results[i]),
  };
}

/** One SubjectAccessReview for a ServiceAccount (with the groups Kubernetes gives every ServiceAccount). */
export async function subjectCan(
  api: AuthorizationV1Api,
  serviceAccount: { readonly namespace: string; readonly name: string },
  p: Permission,
  signal?: AbortSignal,
): Promise<boolean> {
  const review = await api.createSubjectAccessReview(
    {
      body: {
        apiVersion: 'authorization.k8s.io/v1',
        kind: 'SubjectAccessReview',
        spec: {
          user: `system:serviceaccount:${serviceAccount.namespace}:${serviceAccount.name}`,
          groups: [
            'system:serviceaccounts',
            `system:serviceaccounts:${serviceAccount.namespace}`,
            'system:authenticated',
          ],
          resourceAttributes: resourceAttributes(p),
        },
      },
    },
    withSignal(signal),
  );
  return review.status?.allowed === true;
}
