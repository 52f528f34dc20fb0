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

/** What the pod identity webhook injects for IRSA (the annotation), and for EKS Pod Identity (an association). */
export const IRSA_ENV = { roleArn: 'AWS_ROLE_ARN', tokenFile: 'AWS_WEB_IDENTITY_TOKEN_FILE' } as const;
export const POD_IDENTITY_ENV = {
  fullUri: 'AWS_CONTAINER_CREDENTIALS_FULL_URI',
  tokenFile: 'AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE',
} as const;

export function identityServiceAccountAnnotations(
  identity: IdentityConfig | undefined,
): Record<string, string> {
  const out: Record<string, string> = {};
  if (identity?.aws && !identity.aws.podIdentity) out[IRSA_ROLE_ANNOTATION] = identity.aws.roleArn;
  if (identity?.gcp) out[GKE_SERVICE_ACCOUNT_ANNOTATION] = identity.gcp.serviceAccount;
  if (identity?.azure) out[AZURE_CLIENT_ID_ANNOTATION] = identity.azure.clientId;
  return out;
}

export function identityPodLabels(identity: IdentityConfig | undefined): Record<string, string> {
  return identity?.azure ? { [AZURE_USE_LABEL]: 'true' } : {};
}

/**
 * Annotations that must not be on the ServiceAccount: with EKS Pod Identity, an IRSA annotation would win (the AWS
 * SDKs try the web identity token before container credentials).
 */
export function identityForbiddenAnnotations(identity: IdentityConfig | undefined): string[] {
  return identity?.aws?.podIdentity ? [IRSA_ROLE_ANNOTATION] : [];
}

/**
 * What an existing ServiceAccount lacks for this identity: one sentence per annotation that is missing, carries
 * another value or must not be there. Empty when it is right.
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
  for (const key of identityForbiddenAnnotations(identity)) {
    if (annotations?.[key] !== undefined) {
      problems.push(
        `annotation ${key} is present: with EKS Pod Identity it must go, since the AWS SDKs would use its role first`,
      );
    }
  }
  return problems;
}

/** The command that makes the EKS Pod Identity association a scale set needs (the cluster name is the user's). */
export function podIdentityAssociationCommand(
  namespace: string,
  serviceAccount: string,
  roleArn: string,
): string {
  return (
    `aws eks create-pod-identity-association --cluster-name <cluster> --namespace ${namespace} ` +
    `--service-account ${serviceAccount} --role-arn ${roleArn}`
  );
}
