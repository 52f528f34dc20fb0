import { describe, expect, it } from 'vitest';
import {
  IRSA_ROLE_ANNOTATION,
  identityForbiddenAnnotations,
  identityProblems,
  identityServiceAccountAnnotations,
  podIdentityAssociationCommand,
} from './identity.js';

const ROLE = 'arn:aws:iam::123456789012:role/ci';

describe('AWS identity: IRSA or EKS Pod Identity', () => {
  it('IRSA annotates the ServiceAccount; EKS Pod Identity annotates nothing and forbids the IRSA annotation', () => {
    expect(identityServiceAccountAnnotations({ aws: { roleArn: ROLE } })).toEqual({
      [IRSA_ROLE_ANNOTATION]: ROLE,
    });
    expect(identityServiceAccountAnnotations({ aws: { roleArn: ROLE, podIdentity: true } })).toEqual({});
    expect(identityForbiddenAnnotations({ aws: { roleArn: ROLE, podIdentity: true } })).toEqual([
      IRSA_ROLE_ANNOTATION,
    ]);
    expect(identityForbiddenAnnotations({ aws: { roleArn: ROLE } })).toEqual([]);
  });

  it('an existing ServiceAccount with a leftover IRSA annotation is a problem under EKS Pod Identity', () => {
    const podIdentity = { aws: { roleArn: ROLE, podIdentity: true } };
    expect(identityProblems(podIdentity, {})).toEqual([]);
    expect(identityProblems(podIdentity, { [IRSA_ROLE_ANNOTATION]: ROLE })).toEqual([
      'annotation eks.amazonaws.com/role-arn is present: with EKS Pod Identity it must go, since the AWS SDKs ' +
        'would use its role first',
    ]);
  });

  it('names the association EKS needs', () => {
    expect(podIdentityAssociationCommand('ci', 'ci-runner', ROLE)).toBe(
      'aws eks create-pod-identity-association --cluster-name <cluster> --namespace ci --service-account ci-runner ' +
        `--role-arn ${ROLE}`,
    );
  });
});
