/**
 * Turns the rule tables of rbac-rules.ts into Kubernetes objects: the controller's Role and RoleBinding in each
 * namespace it uses, the container-hooks Role for kubernetes-mode runners, and the controller's ServiceAccount.
 * Pure functions; the YAML is what `runner-fleet rbac` prints and what the self-check suggests applying.
 */
import { Document, isScalar, visit } from 'yaml';
import type { ContainerMode, ControllerRule, Feature, ResourceNameRef, Rule, Verb } from './rbac-rules.js';
import { CONTROLLER_RULES, HOOKS_ROLE_NAME, RUNNER_RULES } from './rbac-rules.js';
import { LABEL_MANAGED_BY, MANAGED_BY } from './labels.js';

/** What the controller does in one namespace. */
export interface NamespaceNeeds {
  readonly namespace: string;
  /** Runner pods of some scale set live here. */
  readonly runners: boolean;
  /** The controller itself runs here. */
  readonly controller: boolean;
  readonly features: readonly Feature[];
}

export interface RbacNames {
  /** The controller's ServiceAccount (subject of every RoleBinding). */
  readonly controllerServiceAccount: { readonly namespace: string; readonly name: string };
  /** Name of the controller's Role and RoleBinding in each namespace. */
  readonly controllerRole: string;
  readonly leaseName: string;
  readonly hooksRole?: string;
}

export interface PolicyRule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
  resourceNames?: string[];
}

export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  [key: string]: unknown;
}

/** One permission as the self-check asks for it (one verb). */
export interface Permission {
  readonly verb: Verb;
  readonly apiGroup: string;
  readonly resource: string;
  readonly subresource?: string;
  readonly namespace?: string;
  readonly name?: string;
}

function resolveName(ref: ResourceNameRef | undefined, names: Pick<RbacNames, 'leaseName' | 'hooksRole'>) {
  if (ref === undefined) return undefined;
  return ref === 'lease' ? names.leaseName : (names.hooksRole ?? HOOKS_ROLE_NAME);
}

/** The controller rules that apply in one namespace, given what happens there. */
export function controllerRulesFor(needs: NamespaceNeeds): ControllerRule[] {
  return CONTROLLER_RULES.filter((rule) => {
    if (rule.scope === 'cluster') return false;
    if (rule.scope === 'runner-namespace' && !needs.runners) return false;
    if (rule.scope === 'controller-namespace' && !needs.controller) return false;
    return rule.when === undefined || needs.features.includes(rule.when);
  });
}

/** Merges rules on the same group, resource and name into one PolicyRule, keeping the table's order. */
export function toPolicyRules(
  rules: readonly Rule[],
  names: Pick<RbacNames, 'leaseName' | 'hooksRole'>,
): PolicyRule[] {
  const out: PolicyRule[] = [];
  const byKey = new Map<string, PolicyRule>();
  for (const rule of rules) {
    const name = resolveName(rule.resourceName, names);
    const key = `${rule.apiGroup}|${rule.resource}|${name ?? ''}`;
    const existing = byKey.get(key);
    if (existing) {
      for (const verb of rule.verbs) if (!existing.verbs.includes(verb)) existing.verbs.push(verb);
      continue;
    }
    const policy: PolicyRule = {
      apiGroups: [rule.apiGroup],
      resources: [rule.resource],
      verbs: [...rule.verbs],
    };
    if (name !== undefined) policy.resourceNames = [name];
    byKey.set(key, policy);
    out.push(policy);
  }
  return out;
}

/** Every single-verb permission the controller needs (for SelfSubjectAccessReview). */
export function controllerPermissions(
  needs: readonly NamespaceNeeds[],
  names: Pick<RbacNames, 'leaseName' | 'hooksRole'>,
): Permission[] {
  const out: Permission[] = [];
  const push = (rule: Rule, namespace: string | undefined) => {
    const [resource = rule.resource, subresource] = rule.resource.split('/');
    const name = resolveName(rule.resourceName, names);
    for (const verb of rule.verbs) {
      out.push({
        verb,
        apiGroup: rule.apiGroup,
        resource,
        ...(subresource !== undefined ? { subresource } : {}),
        ...(namespace !== undefined ? { namespace } : {}),
        ...(name !== undefined ? { name } : {}),
      });
    }
  };
  for (const ns of needs) for (const rule of controllerRulesFor(ns)) push(rule, ns.namespace);
  for (const rule of CONTROLLER_RULES) if (rule.scope === 'cluster') push(rule, undefined);
  return out;
}

/** Every single-verb permission a runner ServiceAccount of this mode needs in its namespace. */
export function runnerPermissions(mode: ContainerMode, namespace: string): Permission[] {
  return RUNNER_RULES[mode].flatMap((rule) => {
    const [resource = rule.resource, subresource] = rule.resource.split('/');
    return rule.verbs.map((verb) => ({
      verb,
      apiGroup: rule.apiGroup,
      resource,
      ...(subresource !== undefined ? { subresource } : {}),
      namespace,
    }));
  });
}

/** `create pods/exec in namespace ci` / `get leases.coordination.k8s.io "x" in namespace y` */
export function describePermission(p: Permission): string {
  const resource = `${p.resource}${p.subresource ? `/${p.subresource}` : ''}${p.apiGroup ? `.${p.apiGroup}` : ''}`;
  const name = p.name !== undefined ? ` "${p.name}"` : '';
  const where = p.namespace !== undefined ? ` in namespace ${p.namespace}` : ' (cluster-wide)';
  return `${p.verb} ${resource}${name}${where}`;
}

const managedLabels = { [LABEL_MANAGED_BY]: MANAGED_BY };

export function role(name: string, namespace: string, rules: PolicyRule[]): KubeObject {
  return {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'Role',
    metadata: { name, namespace, labels: { ...managedLabels } },
    rules,
  };
}

export function roleBinding(
  name: string,
  namespace: string,
  roleName: string,
  subject: { namespace: string; name: string },
): KubeObject {
  return {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'RoleBinding',
    metadata: { name, namespace, labels: { ...managedLabels } },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: roleName },
    subjects: [{ kind: 'ServiceAccount', name: subject.name, namespace: subject.namespace }],
  };
}

/** The Role that kubernetes-mode runner ServiceAccounts are bound to, in one namespace. */
export function hooksRole(namespace: string, name: string = HOOKS_ROLE_NAME): KubeObject {
  return role(name, namespace, toPolicyRules(RUNNER_RULES.kubernetes, { leaseName: '' }));
}

/**
 * The controller's Role + RoleBinding per namespace, the container-hooks Role where kubernetes mode is used and,
 * when asked, the controller's ServiceAccount.
 */
export function controllerRbacObjects(
  needs: readonly NamespaceNeeds[],
  names: RbacNames,
  options: { includeServiceAccount?: boolean } = {},
): KubeObject[] {
  const objects: KubeObject[] = [];
  const sa = names.controllerServiceAccount;
  if (options.includeServiceAccount) {
    objects.push({
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name: sa.name, namespace: sa.namespace, labels: { ...managedLabels } },
    });
  }
  for (const ns of needs) {
    const rules = toPolicyRules(controllerRulesFor(ns), names);
    if (rules.length === 0) continue;
    objects.push(role(names.controllerRole, ns.namespace, rules));
    objects.push(roleBinding(names.controllerRole, ns.namespace, names.controllerRole, sa));
    if (ns.runners && ns.features.includes('kubernetesMode')) {
      objects.push(hooksRole(ns.namespace, names.hooksRole ?? HOOKS_ROLE_NAME));
    }
  }
  return objects;
}

/** Multi-document YAML, the form `kubectl apply -f -` takes. */
export function toYamlDocuments(objects: readonly KubeObject[]): string {
  return objects
    .map((o) => {
      const doc = new Document(o);
      // Lists of plain values (apiGroups, verbs) read best on one line, as in most RBAC manifests.
      visit(doc, {
        Seq(_, node) {
          if (node.items.every((item) => isScalar(item))) node.flow = true;
        },
      });
      return `---\n${doc.toString({ lineWidth: 0, flowCollectionPadding: false })}`;
    })
    .join('');
}
