/**
 * The Helm chart, linted and rendered by a real helm (built from the Go module proxy): its Roles are exactly the
 * rule data's, its fleet.yaml passes runner-fleet's own config loader, no secret value is rendered anywhere, and
 * the Deployment switches leader election and rollout strategy with the replica count.
 */
import { describe, expect, it } from 'vitest';
import type { V1Deployment, V1PodSpec, V1Service } from '@kubernetes/client-node';
import { readFileSync } from 'node:fs';
import { parse, parseAllDocuments } from 'yaml';
import { parseConfig } from '../../src/config/index.js';
import type { FleetConfig } from '../../src/core/fleet-config.js';
import type { KubeObject } from '../../src/kubernetes/rbac-manifests.js';
import { controllerRbacObjects } from '../../src/kubernetes/rbac-manifests.js';
import { HOOKS_ROLE_NAME } from '../../src/kubernetes/rbac-rules.js';
import { controllerNeeds } from '../../src/providers/kubernetes/rbac-needs.js';
import { CHART_DIR, helm, helmTemplate, requireHelm } from './helm.js';

const PEM = '-----BEGIN PRIVATE KEY-----\nQUJD\n-----END PRIVATE KEY-----';

const scaleSets = [
  {
    name: 'k8s-kube',
    scope: { org: 'octo-org' },
    labels: ['linux', 'k8s'],
    max: 50,
    identity: { aws: { roleArn: 'arn:aws:iam::123456789012:role/ci-runner' } },
    provider: { kind: 'kubernetes', namespace: 'ci-runners', containerMode: 'kubernetes' },
  },
  {
    name: 'k8s-dind',
    scope: { org: 'octo-org' },
    labels: ['linux', 'docker'],
    max: 10,
    provider: {
      kind: 'kubernetes',
      namespace: 'ci-docker',
      containerMode: 'dind',
      serviceAccount: { name: 'builder' },
    },
  },
];

const values = (extra: Record<string, unknown> = {}) => ({
  config: {
    name: 'acme',
    github: {
      auth: { app: { id: 42, privateKey: '${file:/etc/runner-fleet/secrets/github-app-private-key}' } },
    },
    webhook: { secret: '${env:RUNNER_FLEET_WEBHOOK_SECRET}' },
    scaleSets,
  },
  ...extra,
});

function render(v: unknown, namespace = 'runner-fleet'): KubeObject[] {
  return parseAllDocuments(helmTemplate(v, namespace))
    .map((d) => d.toJS() as KubeObject | null)
    .filter((o): o is KubeObject => o !== null);
}

const podSpecOf = (objects: KubeObject[]): V1PodSpec =>
  (find(objects, 'Deployment')[0] as unknown as V1Deployment).spec!.template.spec!;
const deploymentOf = (objects: KubeObject[]): V1Deployment =>
  find(objects, 'Deployment')[0] as unknown as V1Deployment;

const find = (objects: KubeObject[], kind: string, namespace?: string, name?: string) =>
  objects.filter(
    (o) =>
      o.kind === kind &&
      (namespace === undefined || o.metadata.namespace === namespace) &&
      (name === undefined || o.metadata.name === name),
  );

describe.skipIf(!requireHelm('helm chart'))('helm chart', () => {
  it('passes helm lint, with defaults and with a full configuration', () => {
    for (const args of [[], ['--set', 'replicaCount=3', '--set', 'serviceMonitor.enabled=true']]) {
      const r = helm(['lint', CHART_DIR, '--strict', ...args]);
      expect(r.status, r.stdout + r.stderr).toBe(0);
    }
  });

  it('renders exactly the Roles the rule data gives for this config', () => {
    const objects = render(values({ replicaCount: 2 }));
    const fleet = { name: 'acme', scaleSets } as unknown as FleetConfig;
    const expected = controllerRbacObjects(
      controllerNeeds(fleet, { controllerNamespace: 'runner-fleet', leaderElection: true }),
      {
        controllerServiceAccount: { namespace: 'runner-fleet', name: 'rf-runner-fleet' },
        controllerRole: 'rf-runner-fleet-controller',
        leaseName: 'acme-leader',
      },
    );
    const roles = find(objects, 'Role');
    const rolesExpected = expected.filter((o) => o.kind === 'Role');
    expect(roles.map((r) => `${r.metadata.namespace}/${r.metadata.name}`).sort()).toEqual(
      rolesExpected.map((r) => `${r.metadata.namespace}/${r.metadata.name}`).sort(),
    );
    for (const want of rolesExpected) {
      const [got] = find(objects, 'Role', want.metadata.namespace, want.metadata.name);
      expect(got?.rules, `${want.metadata.namespace}/${want.metadata.name}`).toEqual(want.rules);
    }
    for (const want of expected.filter((o) => o.kind === 'RoleBinding')) {
      const [got] = find(objects, 'RoleBinding', want.metadata.namespace, want.metadata.name);
      expect(got?.roleRef).toEqual(want.roleRef);
      expect(got?.subjects).toEqual(want.subjects);
    }
    // The hooks Role only where kubernetes mode runs; no ClusterRole at all.
    expect(find(objects, 'Role', undefined, HOOKS_ROLE_NAME).map((r) => r.metadata.namespace)).toEqual([
      'ci-runners',
    ]);
    expect(find(objects, 'ClusterRole')).toEqual([]);
    expect(find(objects, 'ClusterRoleBinding')).toEqual([]);
  });

  it('renders a fleet.yaml that runner-fleet itself accepts, with the server and store set for the pod', () => {
    const objects = render(values());
    const [cm] = find(objects, 'ConfigMap');
    const text = (cm?.data as Record<string, string>)['fleet.yaml'] as string;
    const result = parseConfig(text, 'fleet.yaml', {
      env: { RUNNER_FLEET_WEBHOOK_SECRET: 'from-the-secret' },
      readFile: (path) => {
        expect(path).toBe('/etc/runner-fleet/secrets/github-app-private-key');
        return PEM;
      },
    });
    expect(result.ok, JSON.stringify(!result.ok && result.problems)).toBe(true);
    if (!result.ok) return;
    // The main port faces GitHub; the dashboard and API listen on the pod's loopback unless a token is given.
    expect(result.config.server).toEqual({
      host: '0.0.0.0',
      port: 8080,
      dashboard: { host: '127.0.0.1', port: 8081 },
    });
    expect(result.config.store.path).toBe('/var/lib/runner-fleet/state.db');
    expect(result.config.scaleSets.map((s) => s.name)).toEqual(['k8s-kube', 'k8s-dind']);
  });

  it('keeps secrets in the Secret: env via secretKeyRef, key files mounted read-only, no values in the output', () => {
    const objects = render(values());
    const rendered = JSON.stringify(objects);
    expect(find(objects, 'Secret')).toEqual([]);
    const pod = podSpecOf(objects);
    const container = pod.containers[0]!;
    expect(container.env).toContainEqual({
      name: 'RUNNER_FLEET_WEBHOOK_SECRET',
      valueFrom: { secretKeyRef: { name: 'runner-fleet', key: 'webhook-secret' } },
    });
    expect(pod.volumes).toContainEqual({
      name: 'secrets',
      secret: {
        secretName: 'runner-fleet',
        defaultMode: 0o400,
        items: [{ key: 'github-app-private-key', path: 'github-app-private-key' }],
      },
    });
    expect(container.volumeMounts).toContainEqual({
      name: 'secrets',
      mountPath: '/etc/runner-fleet/secrets',
      readOnly: true,
    });
    expect(rendered).not.toContain('BEGIN PRIVATE KEY');
    expect(container.livenessProbe?.httpGet?.path).toBe('/healthz');
    expect(container.readinessProbe?.httpGet?.path).toBe('/readyz');
    expect(container.securityContext).toMatchObject({
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
    });
  });

  it('one replica: no leader election and a Recreate rollout; several: leader election on the Lease', () => {
    const singleObjects = render(values());
    expect(deploymentOf(singleObjects).spec?.strategy).toEqual({ type: 'Recreate' });
    const names = podSpecOf(singleObjects).containers[0]!.env!.map((e) => e.name);
    expect(names).not.toContain('RUNNER_FLEET_LEADER_ELECTION');

    // the controller's heap is capped (bench/controller.bench.ts measures with the chart's value)
    expect(podSpecOf(singleObjects).containers[0]!.env).toContainEqual({
      name: 'NODE_OPTIONS',
      value: '--max-old-space-size=160 --max-semi-space-size=8',
    });
    // as `start` sets for itself (src/cli/heap-limit.ts)
    expect(podSpecOf(singleObjects).containers[0]!.env).toContainEqual({
      name: 'MALLOC_MMAP_THRESHOLD_',
      value: '32768',
    });
    const unlimited = podSpecOf(render(values({ heapLimitMb: 0 }))).containers[0]!.env!;
    expect(unlimited.map((e) => e.name)).not.toContain('NODE_OPTIONS');

    const ha = render(values({ replicaCount: 2 }));
    expect(deploymentOf(ha).spec?.replicas).toBe(2);
    expect(deploymentOf(ha).spec?.strategy).toBeUndefined();
    expect(podSpecOf(ha).containers[0]!.env).toContainEqual({
      name: 'RUNNER_FLEET_LEASE_NAME',
      value: 'acme-leader',
    });
    expect(find(ha, 'Role', 'runner-fleet')[0]?.rules).toContainEqual({
      apiGroups: ['coordination.k8s.io'],
      resources: ['leases'],
      verbs: ['get', 'update'],
      resourceNames: ['acme-leader'],
    });
  });

  it('renders the webhook Service, an optional ServiceMonitor and ServiceAccount annotations', () => {
    const objects = render(
      values({
        serviceMonitor: { enabled: true },
        serviceAccount: { annotations: { 'eks.amazonaws.com/role-arn': 'arn:x' } },
      }),
    );
    const service = find(objects, 'Service')[0] as unknown as V1Service;
    expect(service.spec?.ports?.[0]).toMatchObject({ name: 'http', targetPort: 'http' });
    const monitor = find(objects, 'ServiceMonitor')[0] as unknown as { spec: { endpoints: unknown[] } };
    expect(monitor.spec.endpoints[0]).toMatchObject({ port: 'http', path: '/metrics' });
    expect(find(objects, 'ServiceAccount')[0]?.metadata.annotations).toEqual({
      'eks.amazonaws.com/role-arn': 'arn:x',
    });
    expect(find(render(values()), 'ServiceMonitor')).toEqual([]);
  });

  it('with an existing ConfigMap the runner namespaces come from rbac.namespaces', () => {
    const objects = render({
      existingConfigMap: 'my-fleet',
      rbac: { namespaces: [{ name: 'builds', createServiceAccount: true }] },
    });
    expect(find(objects, 'ConfigMap')).toEqual([]);
    expect(find(objects, 'Role').map((r) => r.metadata.namespace)).toEqual(['builds']);
    expect(podSpecOf(objects).volumes?.[0]?.configMap?.name).toBe('my-fleet');
  });

  it("renders the values of docs/kubernetes.md's EKS walk-through into a fleet.yaml runner-fleet accepts", () => {
    const doc = readFileSync(new URL('../../docs/kubernetes.md', import.meta.url), 'utf8');
    const step = doc.slice(doc.indexOf('5. **Values**'));
    const block = /```yaml\n([\s\S]*?)```/.exec(step)![1]!.replace(/^ {3}/gm, '');
    const objects = render(parse(block));
    const [cm] = find(objects, 'ConfigMap');
    const result = parseConfig((cm?.data as Record<string, string>)['fleet.yaml'] as string, 'fleet.yaml', {
      env: { RUNNER_FLEET_WEBHOOK_SECRET: 'from-the-secret' },
      readFile: () => PEM,
    });
    expect(result.ok, JSON.stringify(!result.ok && result.problems)).toBe(true);
    const ingress = find(objects, 'Ingress')[0] as unknown as {
      spec: { rules: { http: { paths: { path: string }[] } }[] };
    };
    expect(ingress.spec.rules[0]!.http.paths.map((p) => p.path)).toEqual(['/webhook']);
    expect(podSpecOf(objects).containers[0]!.image).toBe(
      '123456789012.dkr.ecr.eu-west-1.amazonaws.com/runner-fleet:0.1.0',
    );
  });

  it('refuses combinations that would run two controllers or share a volume', () => {
    const a = helm([
      'template',
      'rf',
      CHART_DIR,
      '--set',
      'replicaCount=2',
      '--set',
      'leaderElection.enabled=false',
    ]);
    expect(a.status).not.toBe(0);
    expect(a.stderr).toContain('needs leader election');
    const b = helm([
      'template',
      'rf',
      CHART_DIR,
      '--set',
      'replicaCount=2',
      '--set',
      'persistence.enabled=true',
    ]);
    expect(b.status).not.toBe(0);
    expect(b.stderr).toContain('persistence.enabled needs replicaCount: 1');
  });
});
