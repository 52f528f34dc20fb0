import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import type { NamespaceNeeds } from './rbac-manifests.js';
import {
  controllerPermissions,
  controllerRbacObjects,
  controllerRulesFor,
  describePermission,
  runnerPermissions,
  toPolicyRules,
  toYamlDocuments,
} from './rbac-manifests.js';
import { CONTROLLER_RULES, HOOKS_ROLE_NAME, RUNNER_RULES } from './rbac-rules.js';

const names = {
  controllerServiceAccount: { namespace: 'runner-fleet', name: 'runner-fleet' },
  controllerRole: 'runner-fleet-controller',
  leaseName: 'fleet-leader',
};

const kube: NamespaceNeeds = {
  namespace: 'ci',
  runners: true,
  controller: false,
  features: ['createServiceAccount', 'kubernetesMode'],
};
const plain: NamespaceNeeds = { namespace: 'plain', runners: true, controller: false, features: [] };
const home: NamespaceNeeds = {
  namespace: 'runner-fleet',
  runners: false,
  controller: true,
  features: ['leaderElection'],
};

describe('rule data', () => {
  it('the controller never gets list/watch on secrets, exec, escalate or cluster-wide pods', () => {
    const secrets = CONTROLLER_RULES.filter((r) => r.resource === 'secrets').flatMap((r) => r.verbs);
    expect(secrets).not.toContain('list');
    expect(secrets).not.toContain('watch');
    expect(CONTROLLER_RULES.some((r) => r.resource.includes('/'))).toBe(false);
    expect(CONTROLLER_RULES.some((r) => (r.verbs as readonly string[]).includes('escalate'))).toBe(false);
    expect(CONTROLLER_RULES.filter((r) => r.scope === 'cluster').map((r) => r.resource)).toEqual([
      'selfsubjectaccessreviews',
    ]);
  });

  it('the kubernetes-mode runner rules are exactly the container-hooks rules; other modes need none', () => {
    expect(toPolicyRules(RUNNER_RULES.kubernetes, { leaseName: '' })).toEqual([
      { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'create', 'delete'] },
      { apiGroups: [''], resources: ['pods/exec'], verbs: ['get', 'create'] },
      { apiGroups: [''], resources: ['pods/log'], verbs: ['get', 'list', 'watch'] },
      { apiGroups: [''], resources: ['secrets'], verbs: ['get', 'list', 'create', 'delete'] },
      { apiGroups: ['batch'], resources: ['jobs'], verbs: ['get', 'list', 'create', 'delete'] },
    ]);
    expect(RUNNER_RULES.none).toEqual([]);
    expect(RUNNER_RULES.dind).toEqual([]);
  });
});

describe('controller roles', () => {
  it('a namespace gets only the rules of the features used there', () => {
    const plainRules = toPolicyRules(controllerRulesFor(plain), names);
    expect(plainRules).toEqual([
      { apiGroups: [''], resources: ['pods'], verbs: ['create', 'delete', 'get', 'list', 'watch'] },
      { apiGroups: [''], resources: ['secrets'], verbs: ['create', 'delete', 'get'] },
      { apiGroups: [''], resources: ['serviceaccounts'], verbs: ['get'] },
    ]);
    const kubeRules = toPolicyRules(controllerRulesFor(kube), names);
    expect(kubeRules).toContainEqual({
      apiGroups: [''],
      resources: ['serviceaccounts'],
      verbs: ['get', 'create', 'patch'],
    });
    expect(kubeRules).toContainEqual({
      apiGroups: ['rbac.authorization.k8s.io'],
      resources: ['roles'],
      verbs: ['bind', 'get'],
      resourceNames: [HOOKS_ROLE_NAME],
    });
    expect(toPolicyRules(controllerRulesFor(home), names)).toEqual([
      { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['create'] },
      {
        apiGroups: ['coordination.k8s.io'],
        resources: ['leases'],
        verbs: ['get', 'update'],
        resourceNames: ['fleet-leader'],
      },
    ]);
  });

  it('renders Role + RoleBinding per namespace, the hooks Role where kubernetes mode runs, and the ServiceAccount', () => {
    const objects = controllerRbacObjects([kube, plain, home], names, { includeServiceAccount: true });
    expect(objects.map((o) => `${o.kind}/${o.metadata.namespace}/${o.metadata.name}`)).toEqual([
      'ServiceAccount/runner-fleet/runner-fleet',
      'Role/ci/runner-fleet-controller',
      'RoleBinding/ci/runner-fleet-controller',
      `Role/ci/${HOOKS_ROLE_NAME}`,
      'Role/plain/runner-fleet-controller',
      'RoleBinding/plain/runner-fleet-controller',
      'Role/runner-fleet/runner-fleet-controller',
      'RoleBinding/runner-fleet/runner-fleet-controller',
    ]);
    const binding = objects.find((o) => o.kind === 'RoleBinding');
    expect(binding?.subjects).toEqual([
      { kind: 'ServiceAccount', name: 'runner-fleet', namespace: 'runner-fleet' },
    ]);
    const docs = parseAllDocuments(toYamlDocuments(objects)).map((d) => d.toJS());
    expect(docs).toEqual(objects);
  });
});

describe('permissions for the self-check', () => {
  it('one permission per verb, subresources split, names resolved, cluster ones without namespace', () => {
    const perms = controllerPermissions([kube, home], names);
    expect(perms).toContainEqual({ verb: 'watch', apiGroup: '', resource: 'pods', namespace: 'ci' });
    expect(perms).toContainEqual({
      verb: 'bind',
      apiGroup: 'rbac.authorization.k8s.io',
      resource: 'roles',
      namespace: 'ci',
      name: HOOKS_ROLE_NAME,
    });
    expect(perms).toContainEqual({
      verb: 'update',
      apiGroup: 'coordination.k8s.io',
      resource: 'leases',
      namespace: 'runner-fleet',
      name: 'fleet-leader',
    });
    expect(perms).toContainEqual({
      verb: 'create',
      apiGroup: 'authorization.k8s.io',
      resource: 'selfsubjectaccessreviews',
    });
    expect(runnerPermissions('kubernetes', 'ci')).toContainEqual({
      verb: 'create',
      apiGroup: '',
      resource: 'pods',
      subresource: 'exec',
      namespace: 'ci',
    });
  });

  it('describes a permission the way an operator reads it', () => {
    expect(
      describePermission({
        verb: 'create',
        apiGroup: '',
        resource: 'pods',
        subresource: 'exec',
        namespace: 'ci',
      }),
    ).toBe('create pods/exec in namespace ci');
    expect(
      describePermission({
        verb: 'get',
        apiGroup: 'coordination.k8s.io',
        resource: 'leases',
        namespace: 'rf',
        name: 'l',
      }),
    ).toBe('get leases.coordination.k8s.io "l" in namespace rf');
  });
});
