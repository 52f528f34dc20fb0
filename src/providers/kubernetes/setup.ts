/**
 * Per-scale-set objects ensured once at start (`prepare`): the runner ServiceAccount (created with its identity
 * annotations, or an existing one verified), and in kubernetes container mode the RoleBinding to the
 * container-hooks Role and the hook-template ConfigMap. Each is created if missing and patched only if it differs,
 * so a restart costs reads, not writes. A server-side dry run of a runner pod then proves the template valid.
 */
import type { CoreV1Api, RbacAuthorizationV1Api, V1Pod } from '@kubernetes/client-node';
import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import {
  describeApiError,
  isConflict,
  isForbidden,
  isNotFound,
  isRetryable,
  withSignal,
} from '../../kubernetes/api.js';
import { hooksRole, toYamlDocuments } from '../../kubernetes/rbac-manifests.js';
import { HOOKS_ROLE_NAME } from '../../kubernetes/rbac-rules.js';
import { ProviderError } from '../provider.js';
import {
  identityForbiddenAnnotations,
  identityProblems,
  identityServiceAccountAnnotations,
} from './identity.js';
import type { ScaleSetPlan } from './manifests.js';
import {
  buildHookConfigMap,
  buildHooksRoleBinding,
  buildRunnerPod,
  buildServiceAccount,
  desiredServiceAccountAnnotations,
} from './manifests.js';

export interface SetupClients {
  readonly core: CoreV1Api;
  readonly rbac: RbacAuthorizationV1Api;
}

export interface SetupResult {
  /** API writes spent (0 on a restart with everything in place). */
  readonly writes: number;
}

function mergePatch(signal: AbortSignal) {
  return setHeaderOptions('Content-Type', PatchStrategy.MergePatch, withSignal(signal));
}

function setupError(what: string, plan: ScaleSetPlan, error: unknown): ProviderError {
  if (error instanceof ProviderError) return error;
  const where = `namespace ${plan.namespace}, scale set ${plan.scaleSet}`;
  if (isForbidden(error)) {
    return new ProviderError(
      `${what} (${where}) was refused: ${describeApiError(error)}. Run \`runner-fleet rbac --config <file>\` for the ` +
        'Roles runner-fleet needs.',
      { code: 'forbidden', retryable: false, cause: error },
    );
  }
  return new ProviderError(`${what} (${where}) failed: ${describeApiError(error)}`, {
    code: 'kubernetes-api',
    retryable: isRetryable(error),
    cause: error,
  });
}

const sameStrings = (a: Record<string, string> | undefined, want: Record<string, string>) =>
  Object.entries(want).every(([k, v]) => a?.[k] === v);

async function ensureServiceAccount(
  clients: SetupClients,
  plan: ScaleSetPlan,
  signal: AbortSignal,
): Promise<number> {
  const { namespace, serviceAccountName: name } = plan;
  if (!plan.createServiceAccount) {
    let existing;
    try {
      existing = await clients.core.readNamespacedServiceAccount({ name, namespace }, withSignal(signal));
    } catch (error) {
      if (isNotFound(error)) {
        throw new ProviderError(
          `ServiceAccount ${namespace}/${name} (scale set ${plan.scaleSet}) does not exist` +
            ` (or namespace ${namespace} does not); create it or use \`serviceAccount: { create: true }\``,
          { code: 'service-account-not-found', retryable: false },
        );
      }
      throw error;
    }
    const problems = identityProblems(plan.identity, existing.metadata?.annotations);
    if (problems.length > 0) {
      const annotate = [
        ...Object.entries(identityServiceAccountAnnotations(plan.identity)).map(([k, v]) => `${k}=${v}`),
        ...identityForbiddenAnnotations(plan.identity).map((k) => `${k}-`),
      ].join(' ');
      throw new ProviderError(
        `ServiceAccount ${namespace}/${name} (scale set ${plan.scaleSet}) does not carry its cloud identity: ` +
          `${problems.join('; ')}. Fix: kubectl -n ${namespace} annotate serviceaccount ${name} --overwrite ${annotate}`,
        { code: 'identity-annotation-mismatch', retryable: false },
      );
    }
    return 0;
  }
  try {
    await clients.core.createNamespacedServiceAccount(
      { namespace, body: buildServiceAccount(plan) },
      withSignal(signal),
    );
    return 1;
  } catch (error) {
    if (isNotFound(error)) {
      throw new ProviderError(`namespace ${namespace} (scale set ${plan.scaleSet}) does not exist`, {
        code: 'namespace-not-found',
        retryable: false,
        cause: error,
      });
    }
    if (!isConflict(error)) throw error;
  }
  const existing = await clients.core.readNamespacedServiceAccount({ name, namespace }, withSignal(signal));
  const want = desiredServiceAccountAnnotations(plan);
  // An annotation the identity forbids (IRSA's, after a switch to EKS Pod Identity) is removed (null in a merge patch).
  const remove = identityForbiddenAnnotations(plan.identity).filter(
    (key) => existing.metadata?.annotations?.[key] !== undefined,
  );
  if (sameStrings(existing.metadata?.annotations, want) && remove.length === 0) return 0;
  await clients.core.patchNamespacedServiceAccount(
    {
      name,
      namespace,
      body: { metadata: { annotations: { ...want, ...Object.fromEntries(remove.map((k) => [k, null])) } } },
    },
    mergePatch(signal),
  );
  return 1;
}

async function ensureHooksRoleBinding(
  clients: SetupClients,
  plan: ScaleSetPlan,
  signal: AbortSignal,
): Promise<number> {
  const { namespace } = plan;
  try {
    await clients.rbac.readNamespacedRole({ name: HOOKS_ROLE_NAME, namespace }, withSignal(signal));
  } catch (error) {
    if (!isNotFound(error)) throw error;
    throw new ProviderError(
      `Role ${namespace}/${HOOKS_ROLE_NAME}, which kubernetes-mode runners of scale set ${plan.scaleSet} need, is ` +
        `not installed. Install the Helm chart, or apply \`runner-fleet rbac --config <file>\`, or:\n` +
        toYamlDocuments([hooksRole(namespace)]),
      { code: 'hooks-role-missing', retryable: false },
    );
  }
  const body = buildHooksRoleBinding(plan);
  const name = body.metadata?.name as string;
  try {
    await clients.rbac.createNamespacedRoleBinding({ namespace, body }, withSignal(signal));
    return 1;
  } catch (error) {
    if (!isConflict(error)) throw error;
  }
  const existing = await clients.rbac.readNamespacedRoleBinding({ name, namespace }, withSignal(signal));
  if (existing.roleRef.name !== HOOKS_ROLE_NAME || existing.roleRef.kind !== 'Role') {
    throw new ProviderError(
      `RoleBinding ${namespace}/${name} exists but refers to ${existing.roleRef.kind} ${existing.roleRef.name}; ` +
        `delete it so runner-fleet can bind ${HOOKS_ROLE_NAME}`,
      { code: 'rolebinding-conflict', retryable: false },
    );
  }
  const subject = body.subjects?.[0];
  const has = existing.subjects?.some(
    (s) => s.kind === 'ServiceAccount' && s.name === subject?.name && s.namespace === subject?.namespace,
  );
  if (has && existing.subjects?.length === 1) return 0;
  await clients.rbac.patchNamespacedRoleBinding(
    { name, namespace, body: { subjects: body.subjects } },
    mergePatch(signal),
  );
  return 1;
}

async function ensureHookConfigMap(
  clients: SetupClients,
  plan: ScaleSetPlan,
  signal: AbortSignal,
): Promise<number> {
  const body = buildHookConfigMap(plan);
  const { namespace } = plan;
  const name = body.metadata?.name as string;
  try {
    await clients.core.createNamespacedConfigMap({ namespace, body }, withSignal(signal));
    return 1;
  } catch (error) {
    if (!isConflict(error)) throw error;
  }
  const existing = await clients.core.readNamespacedConfigMap({ name, namespace }, withSignal(signal));
  if (sameStrings(existing.data, body.data ?? {})) return 0;
  await clients.core.patchNamespacedConfigMap(
    { name, namespace, body: { data: body.data } },
    mergePatch(signal),
  );
  return 1;
}

/** Server-side dry run of a runner pod: the API server validates the merged template and admission runs. */
async function validatePodTemplate(
  clients: SetupClients,
  plan: ScaleSetPlan,
  signal: AbortSignal,
): Promise<void> {
  const pod: V1Pod = buildRunnerPod(plan, {
    name: `${plan.scaleSet}-template-check`.slice(0, 63).replace(/-+$/, ''),
    fleet: plan.fleet,
    scaleSet: plan.scaleSet,
    registration: { mode: 'jit', jitConfig: 'unused' },
  });
  try {
    await clients.core.createNamespacedPod(
      { namespace: plan.namespace, body: pod, dryRun: 'All' },
      withSignal(signal),
    );
  } catch (error) {
    if (isConflict(error)) return;
    if (isRetryable(error) || isForbidden(error)) throw error;
    throw new ProviderError(
      `the pod template of scale set ${plan.scaleSet} is not valid: ${describeApiError(error)}`,
      { code: 'invalid-pod-template', retryable: false, cause: error },
    );
  }
}

export async function ensureScaleSetObjects(
  clients: SetupClients,
  plan: ScaleSetPlan,
  signal: AbortSignal,
  logger?: Logger,
): Promise<SetupResult> {
  let writes = 0;
  let step = 'ensuring the runner ServiceAccount';
  try {
    writes += await ensureServiceAccount(clients, plan, signal);
    if (plan.containerMode === 'kubernetes') {
      step = 'binding the container-hooks Role';
      writes += await ensureHooksRoleBinding(clients, plan, signal);
      step = 'writing the container-hook template';
      writes += await ensureHookConfigMap(clients, plan, signal);
    }
    step = 'validating the pod template (dry run)';
    await validatePodTemplate(clients, plan, signal);
  } catch (error) {
    throw setupError(step, plan, error);
  }
  // The provider's logger names the scale set and namespace already.
  logger?.debug({ writes }, 'kubernetes scale set prepared');
  return { writes };
}
