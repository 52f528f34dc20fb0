/**
 * Least privilege as data: every Kubernetes permission runner-fleet needs, for the controller and for the runner
 * ServiceAccount of each container mode, with the reason it is needed. The Helm chart's Roles
 * (scripts/gen-rbac.ts), `runner-fleet rbac`, docs/security.md and the start-up self-check
 * (rights-check.ts) are all derived from these tables, so a permission is added or removed here and nowhere else.
 */

export type Verb = 'get' | 'list' | 'watch' | 'create' | 'update' | 'patch' | 'delete' | 'bind';

/**
 * Where a controller rule applies:
 * - runner-namespace: each namespace that holds runner pods of a `kubernetes` scale set;
 * - controller-namespace: the namespace the controller runs in (its leader-election Lease);
 * - cluster: cluster-scoped.
 */
export type RuleScope = 'runner-namespace' | 'controller-namespace' | 'cluster';

/**
 * A rule applies only when its feature is in use in that namespace:
 * - createServiceAccount: a scale set there creates its own ServiceAccount (`serviceAccount: { create: true }`);
 * - kubernetesMode: a scale set there uses `containerMode: kubernetes`;
 * - leaderElection: the controller runs with leader election (more than one replica).
 */
export type Feature = 'createServiceAccount' | 'kubernetesMode' | 'leaderElection';

/** A name a rule is restricted to (RBAC resourceNames), resolved at render time. */
export type ResourceNameRef = 'hooksRole' | 'lease';

export interface Rule {
  /** '' is the core API group. */
  readonly apiGroup: string;
  /** Resource, or resource/subresource (pods/exec). */
  readonly resource: string;
  readonly verbs: readonly Verb[];
  readonly resourceName?: ResourceNameRef;
  readonly why: string;
}

export interface ControllerRule extends Rule {
  readonly scope: RuleScope;
  readonly when?: Feature;
  /** Set when Kubernetes already grants this rule to every authenticated user (no manifest needs to carry it). */
  readonly grantedBy?: string;
}

export const CONTROLLER_RULES: readonly ControllerRule[] = [
  {
    scope: 'runner-namespace',
    apiGroup: '',
    resource: 'pods',
    verbs: ['create', 'delete', 'get', 'list', 'watch'],
    why: 'create and delete runner pods; get one on an idempotent retry (409); list + watch feed the pod informer',
  },
  {
    scope: 'runner-namespace',
    apiGroup: '',
    resource: 'secrets',
    verbs: ['create', 'delete', 'get'],
    why:
      'one Secret per runner holds its JIT config or registration token; get checks its owner on a retry, delete ' +
      'replaces a stale one (the garbage collector deletes it with its pod otherwise); no list or watch',
  },
  {
    scope: 'runner-namespace',
    apiGroup: '',
    resource: 'serviceaccounts',
    verbs: ['get'],
    why: 'check at start that the runner ServiceAccount exists and carries the identity annotations',
  },
  {
    scope: 'runner-namespace',
    when: 'createServiceAccount',
    apiGroup: '',
    resource: 'serviceaccounts',
    verbs: ['create', 'patch'],
    why: 'create the per-scale-set runner ServiceAccount and keep its identity annotations current',
  },
  {
    scope: 'runner-namespace',
    when: 'kubernetesMode',
    apiGroup: '',
    resource: 'configmaps',
    verbs: ['create', 'get', 'patch'],
    why: 'the container-hook pod template of each scale set (gives job pods the runner ServiceAccount and identity)',
  },
  {
    scope: 'runner-namespace',
    when: 'kubernetesMode',
    apiGroup: 'rbac.authorization.k8s.io',
    resource: 'rolebindings',
    verbs: ['create', 'get', 'patch'],
    why: 'bind the runner ServiceAccount to the container-hooks Role',
  },
  {
    scope: 'runner-namespace',
    when: 'kubernetesMode',
    apiGroup: 'rbac.authorization.k8s.io',
    resource: 'roles',
    verbs: ['bind', 'get'],
    resourceName: 'hooksRole',
    why:
      'bind exactly the container-hooks Role (installed with the chart or `runner-fleet rbac`) without holding its ' +
      'rights (pods/exec, ...) and without `escalate`; get verifies it is installed',
  },
  {
    scope: 'controller-namespace',
    when: 'leaderElection',
    apiGroup: 'coordination.k8s.io',
    resource: 'leases',
    verbs: ['create'],
    why: 'create the leader-election Lease on first start (create cannot be limited to a name)',
  },
  {
    scope: 'controller-namespace',
    when: 'leaderElection',
    apiGroup: 'coordination.k8s.io',
    resource: 'leases',
    verbs: ['get', 'update'],
    resourceName: 'lease',
    why: 'acquire and renew the leader-election Lease (optimistic concurrency on resourceVersion)',
  },
  {
    scope: 'cluster',
    apiGroup: 'authorization.k8s.io',
    resource: 'selfsubjectaccessreviews',
    verbs: ['create'],
    grantedBy: 'system:basic-user',
    why: 'the start-up self-check of these rights',
  },
];

/**
 * What the runner ServiceAccount of each container mode may do in its own namespace. `none` and `dind` runners
 * need no Kubernetes API access at all (their pods do not even mount a token); `kubernetes` mode runs job
 * containers as pods through actions/runner-container-hooks, which needs exactly these rules.
 */
export const RUNNER_RULES: Readonly<Record<'none' | 'dind' | 'kubernetes', readonly Rule[]>> = {
  none: [],
  dind: [],
  kubernetes: [
    {
      apiGroup: '',
      resource: 'pods',
      verbs: ['get', 'list', 'create', 'delete'],
      why: 'the hooks start one pod per job (and service containers) and remove it afterwards',
    },
    {
      apiGroup: '',
      resource: 'pods/exec',
      verbs: ['get', 'create'],
      why: 'run each step inside the job pod',
    },
    {
      apiGroup: '',
      resource: 'pods/log',
      verbs: ['get', 'list', 'watch'],
      why: 'stream the output of container steps',
    },
    {
      apiGroup: '',
      resource: 'secrets',
      verbs: ['get', 'list', 'create', 'delete'],
      why: 'pass step environments to container-step jobs',
    },
    {
      apiGroup: 'batch',
      resource: 'jobs',
      verbs: ['get', 'list', 'create', 'delete'],
      why: 'container actions (`uses: docker://...`) run as Kubernetes Jobs',
    },
  ],
};

export type ContainerMode = keyof typeof RUNNER_RULES;

/** The installer-provided Role that kubernetes-mode runner ServiceAccounts are bound to. Fixed, so the provider
 * and every manifest agree on it without configuration. */
export const HOOKS_ROLE_NAME = 'runner-fleet-container-hooks';

/** Name of a fleet's leader-election Lease. */
export function leaseNameFor(fleet: string): string {
  return `${fleet}-leader`;
}
