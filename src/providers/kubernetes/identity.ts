/**
 * Cloud identity on Kubernetes, from the scale set's one `identity` block: the ServiceAccount annotations and pod
 * labels each cloud's workload-identity webhook or metadata server looks for. Runner pods and (in kubernetes
 * container mode) job pods run as that ServiceAccount, so both get the identity.
 */
import type { IdentityConfig } from '../../core/fleet-config.js';

/** EKS IAM Roles for Service Accounts. */
export const IRSA_ROLE_ANNOTATION = 'eks.amazonaws.com/role-arn';
/** GKE Workload Identity. */
export const GKE_SERVICE_ACCOUNT_ANNOTATION = 'iam.gke.io/gcp-service-account';
/** Azure Workload Identity: annotation on the ServiceAccount ... */
export const AZURE_CLIENT_ID_ANNOTATION = 'azure.workload.identity/client-id';
/** ... and a label on every pod that should receive the token. */
export const AZURE_USE_LABEL = 'azure.workload.identity/use';

export function identityServiceAccountAnnotations(
  identity: IdentityConfig | undefined,
): Record<string, string> {
  const out: Record<string, string> = {};
  if (identity?.aws) out[IRSA_ROLE_ANNOTATION] = identity.aws.roleArn;
  if (identity?.gcp) out[GKE_SERVICE_ACCOUNT_ANNOTATION] = identity.gcp.serviceAccount;
  if (identity?.azure) out[AZURE_CLIENT_ID_ANNOTATION] = identity.azure.clientId;
  return out;
}

export function identityPodLabels(identity: IdentityConfig | undefined): Record<string, string> {
  return identity?.azure ? { [AZURE_USE_LABEL]: 'true' } : {};
}

/**
 * What an existing ServiceAccount lacks for this identity: one sentence per annotation that is missing or carries
 * another value. Empty when it is right.
 */
export function identityProblems(
  identity: IdentityConfig | undefined,
  annotations: Readonly<Record<string, string>> | undefined,
): string[] {
  const problems: string[] = [];
  for (const [key, want] of Object.entries(identityServiceAccountAnnotations(identity))) {
    const have = annotations?.[key];
    if (have === undefined) problems.push(`annotation ${key} is missing (expected "${want}")`);
    else if (have !== want) problems.push(`annotation ${key} is "${have}", expected "${want}"`);
  }
  return problems;
}
