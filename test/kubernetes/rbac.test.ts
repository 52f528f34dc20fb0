/**
 * Least privilege on the real API server: the RBAC data's Roles are enough for the controller and nothing more is
 * granted to runners than their container mode needs (SubjectAccessReview); the start-up self-check names a removed
 * verb and hands back a manifest that fixes it; and the Helm chart's rendered RBAC, applied as is, passes the check.
 */
import { randomBytes } from 'node:crypto';
import { AuthorizationV1Api, CoreV1Api, RbacAuthorizationV1Api } from '@kubernetes/client-node';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import type { KubeObject, NamespaceNeeds, PolicyRule } from '../../src/kubernetes/rbac-manifests.js';
import { checkControllerRights, checkRunnerRights, subjectCan } from '../../src/kubernetes/rights-check.js';
import type { KubernetesProviderFactory } from '../../src/providers/kubernetes/index.js';
import {
  checkControllerRightsForFleet,
  formatKubernetesReport,
  inspectKubernetesFleet,
} from '../../src/providers/kubernetes/doctor.js';
import { createKubernetesProviderFactory } from '../../src/providers/kubernetes/index.js';
import { kubernetesProviderSchema } from '../../src/providers/kubernetes/schema.js';
import { mergePatch, scaleSetConfig } from './fixtures.js';
import { helmTemplate, requireHelm } from './helm.js';
import { createTestNamespace, requireCluster, useTestCluster } from './helpers.js';
import type { ControllerIdentity } from './rbac-fixture.js';
import {
  applyObjects,
  installController,
  serviceAccountKubeConfig,
  untilAuthorized,
} from './rbac-fixture.js';

const logger = pino({ level: 'silent' });
const signal = () => AbortSignal.timeout(60_000);
const LEASE = 'rbac-test-leader';

describe.skipIf(!requireCluster('kubernetes rbac'))('least privilege', () => {
  const cluster = useTestCluster();
  let core: CoreV1Api;
  let rbac: RbacAuthorizationV1Api;
  let authz: AuthorizationV1Api;
  let runners: string;
  let other: string;
  let home: string;
  let needs: NamespaceNeeds[];
  let controller: ControllerIdentity;
  const factories: KubernetesProviderFactory[] = [];
  const fleet = `rbac-${randomBytes(3).toString('hex')}`;
  const names = () => ({ controllerRole: 'runner-fleet-controller', leaseName: LEASE });

  beforeAll(async () => {
    core = cluster.kubeConfig().makeApiClient(CoreV1Api);
    rbac = cluster.kubeConfig().makeApiClient(RbacAuthorizationV1Api);
    authz = cluster.kubeConfig().makeApiClient(AuthorizationV1Api);
    runners = await createTestNamespace(cluster, 'rf-rbac');
    other = await createTestNamespace(cluster, 'rf-other');
    home = await createTestNamespace(cluster, 'rf-home');
    needs = [
      {
        namespace: runners,
        runners: true,
        controller: false,
        features: ['createServiceAccount', 'kubernetesMode'],
      },
      { namespace: home, runners: false, controller: true, features: ['leaderElection'] },
    ];
    controller = await installController(cluster, home, needs, LEASE);
    // A kubernetes-mode scale set, set up by the controller itself.
    const factory = createKubernetesProviderFactory({ kubeConfig: controller.kubeConfig });
    factories.push(factory);
    const scaleSet = scaleSetConfig('kube', { namespace: runners, containerMode: 'kubernetes' });
    await factory
      .create(kubernetesProviderSchema.parse(scaleSet.provider), { fleet, scaleSet, logger })
      .prepare(signal());
  });

  afterAll(async () => {
    await Promise.all(factories.map((f) => f.close()));
    for (const name of [runners, other, home])
      if (name) await core.deleteNamespace({ name }).catch(() => undefined);
  });

  it('the kubernetes-mode runner ServiceAccount can run job pods in its namespace and read no Secret elsewhere', async () => {
    const sa = { namespace: runners, name: 'kube-runner' };
    const result = await checkRunnerRights(cluster.kubeConfig(), {
      namespace: runners,
      serviceAccount: sa.name,
      containerMode: 'kubernetes',
    });
    expect(result.missing).toEqual([]);
    expect(
      await subjectCan(authz, sa, { verb: 'create', apiGroup: '', resource: 'pods', namespace: runners }),
    ).toBe(true);
    expect(
      await subjectCan(authz, sa, {
        verb: 'create',
        apiGroup: '',
        resource: 'pods',
        subresource: 'exec',
        namespace: runners,
      }),
    ).toBe(true);
    for (const verb of ['get', 'list'] as const) {
      expect(await subjectCan(authz, sa, { verb, apiGroup: '', resource: 'secrets', namespace: other })).toBe(
        false,
      );
    }
    expect(await subjectCan(authz, sa, { verb: 'list', apiGroup: '', resource: 'secrets' })).toBe(false);
    expect(
      await subjectCan(authz, sa, { verb: 'create', apiGroup: '', resource: 'pods', namespace: other }),
    ).toBe(false);
  });

  it('the controller holds what the data says and no more: no exec, no secret listing, no escalation', async () => {
    const ctrl = { namespace: home, name: controller.name };
    const can = (verb: string, resource: string, namespace?: string, subresource?: string, apiGroup = '') =>
      subjectCan(authz, ctrl, {
        verb: verb as 'get',
        apiGroup,
        resource,
        ...(subresource ? { subresource } : {}),
        ...(namespace ? { namespace } : {}),
      });
    expect(await can('create', 'pods', runners)).toBe(true);
    expect(await can('create', 'pods', runners, 'exec')).toBe(false);
    expect(await can('list', 'secrets', runners)).toBe(false);
    expect(await can('create', 'pods', other)).toBe(false);
    expect(await can('escalate', 'roles', runners, undefined, 'rbac.authorization.k8s.io')).toBe(false);
    expect(await can('create', 'roles', runners, undefined, 'rbac.authorization.k8s.io')).toBe(false);
  });

  it('the self-check passes with the installed Roles, names a removed verb, and its manifest restores it', async () => {
    const ok = await checkControllerRights(controller.kubeConfig, needs, { names: names() });
    expect(ok).toMatchObject({ ok: true });
    expect(ok.checked).toBeGreaterThan(15);
    // The same check, derived from a fleet configuration as `start` runs it.
    const fleetConfig = {
      name: fleet,
      scaleSets: [scaleSetConfig('kube', { namespace: runners, containerMode: 'kubernetes' })],
    };
    const fromConfig = await checkControllerRightsForFleet(controller.kubeConfig, fleetConfig, {
      controllerNamespace: home,
      leaderElection: true,
      leaseName: LEASE,
    });
    expect(fromConfig).toEqual(ok);

    // Take `delete` away from pods in the runner namespace.
    const role = await rbac.readNamespacedRole({ name: 'runner-fleet-controller', namespace: runners });
    const rules = (role.rules as PolicyRule[]).map((r) =>
      r.resources.includes('pods') ? { ...r, verbs: r.verbs.filter((v) => v !== 'delete') } : r,
    );
    await rbac.replaceNamespacedRole({
      name: role.metadata!.name!,
      namespace: runners,
      body: { ...role, rules },
    });
    const deletePods = { verb: 'delete', apiGroup: '', resource: 'pods', namespace: runners } as const;
    await untilAuthorized(cluster, controller, [deletePods], false);

    const result = await checkControllerRights(controller.kubeConfig, needs, { names: names() });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.missing).toEqual([deletePods]);
    expect(result.message).toContain(`- delete pods in namespace ${runners}`);
    // The manifest names the caller's own ServiceAccount (learned from the API server) and grants everything back.
    const objects = parseAllDocuments(result.manifest).map((d) => d.toJS() as KubeObject);
    expect(objects.find((o) => o.kind === 'RoleBinding')?.subjects).toEqual([
      { kind: 'ServiceAccount', name: controller.name, namespace: home },
    ]);
    await applyObjects(cluster.kubeConfig(), objects);
    await untilAuthorized(cluster, controller, [deletePods], true);
    expect(await checkControllerRights(controller.kubeConfig, needs, { names: names() })).toMatchObject({
      ok: true,
    });
  });

  it('a missing Lease right is named with the Lease', async () => {
    const role = await rbac.readNamespacedRole({ name: 'runner-fleet-controller', namespace: home });
    const rules = (role.rules as PolicyRule[]).map((r) =>
      r.resourceNames?.includes(LEASE) ? { ...r, verbs: ['get'] } : r,
    );
    await rbac.replaceNamespacedRole({
      name: role.metadata!.name!,
      namespace: home,
      body: { ...role, rules },
    });
    const updateLease = {
      verb: 'update',
      apiGroup: 'coordination.k8s.io',
      resource: 'leases',
      namespace: home,
      name: LEASE,
    } as const;
    await untilAuthorized(cluster, controller, [updateLease], false);
    const result = await checkControllerRights(controller.kubeConfig, needs, { names: names() });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.message).toContain(`- update leases.coordination.k8s.io "${LEASE}" in namespace ${home}`);
    await applyObjects(cluster.kubeConfig(), controller.objects);
    await untilAuthorized(cluster, controller, [updateLease], true);
  });

  it('doctor, with an operator’s credentials: the controller’s rights and every runner ServiceAccount', async () => {
    await core.createNamespacedServiceAccount({
      namespace: runners,
      body: { metadata: { name: 'shared-sa' } },
    });
    const config = {
      name: fleet,
      scaleSets: [
        scaleSetConfig('kube', { namespace: runners, containerMode: 'kubernetes' }),
        scaleSetConfig(
          'shared',
          { namespace: runners, serviceAccount: { name: 'shared-sa' } },
          { identity: { aws: { roleArn: 'arn:aws:iam::123456789012:role/ci' } } },
        ),
        scaleSetConfig('later', { namespace: runners }),
      ],
    };
    const options = {
      controllerNamespace: home,
      leaderElection: true,
      leaseName: LEASE,
      controllerServiceAccount: { namespace: home, name: controller.name },
    };
    const report = await inspectKubernetesFleet(cluster.kubeConfig(), config, options);
    expect(report.controller.ok).toBe(true);
    expect(report.runners.map((r) => [r.scaleSet, r.status.state])).toEqual([
      ['kube', 'ok'],
      ['shared', 'problems'],
      ['later', 'created-at-start'],
    ]);
    expect(report.ok).toBe(false);
    const lines = formatKubernetesReport(report);
    expect(lines).toContain(
      `FAIL  scale set shared: ServiceAccount ${runners}/shared-sa: annotation eks.amazonaws.com/role-arn is missing ` +
        '(expected "arn:aws:iam::123456789012:role/ci")',
    );

    await core.patchNamespacedServiceAccount(
      {
        name: 'shared-sa',
        namespace: runners,
        body: {
          metadata: { annotations: { 'eks.amazonaws.com/role-arn': 'arn:aws:iam::123456789012:role/ci' } },
        },
      },
      mergePatch,
    );
    // Take a hooks right away from the kubernetes-mode runners.
    const hooks = await rbac.readNamespacedRole({ name: 'runner-fleet-container-hooks', namespace: runners });
    const rules = (hooks.rules as PolicyRule[]).filter((r) => !r.resources.includes('pods/exec'));
    await rbac.replaceNamespacedRole({
      name: 'runner-fleet-container-hooks',
      namespace: runners,
      body: { ...hooks, rules },
    });
    // Annotated now, but no pod identity webhook runs on this control plane (pod-identity-webhook.test.ts runs
    // one): a dry-run pod of the ServiceAccount gets no AWS_ROLE_ARN, which doctor reports.
    const notMutated =
      `FAIL  scale set shared: ServiceAccount ${runners}/shared-sa: annotation eks.amazonaws.com/role-arn is present ` +
      'but pods are not mutated (a dry-run pod got no AWS_ROLE_ARN): is the pod identity webhook installed?';
    const after = await inspectKubernetesFleet(cluster.kubeConfig(), config, options);
    expect(after.runners.map((r) => r.status.state)).toEqual(['problems', 'problems', 'created-at-start']);
    expect(formatKubernetesReport(after)).toContain(
      `FAIL  scale set kube: ServiceAccount ${runners}/kube-runner lacks: create pods/exec in namespace ${runners}`,
    );
    expect(formatKubernetesReport(after)).toContain(notMutated);
    await applyObjects(cluster.kubeConfig(), controller.objects);
    const restored = await inspectKubernetesFleet(cluster.kubeConfig(), config, options);
    expect(restored.runners.map((r) => r.status.state)).toEqual(['ok', 'problems', 'created-at-start']);
    expect(formatKubernetesReport(restored).filter((l) => l.startsWith('FAIL'))).toEqual([notMutated]);
  });

  it.skipIf(!requireHelm('kubernetes rbac: the chart as applied'))(
    'the Helm chart’s rendered RBAC, applied as is, passes the self-check',
    async () => {
      const chartNamespace = await createTestNamespace(cluster, 'rf-chart');
      const kubeNs = await createTestNamespace(cluster, 'rf-chart-kube');
      try {
        const rendered = helmTemplate(
          {
            replicaCount: 2,
            config: {
              name: 'chart',
              github: { auth: { token: '${env:GITHUB_TOKEN}' } },
              webhook: { secret: '${env:RUNNER_FLEET_WEBHOOK_SECRET}' },
              scaleSets: [
                {
                  name: 'kube',
                  scope: { org: 'o' },
                  labels: ['k'],
                  max: 1,
                  provider: { kind: 'kubernetes', namespace: kubeNs, containerMode: 'kubernetes' },
                },
              ],
            },
          },
          chartNamespace,
        );
        const objects = parseAllDocuments(rendered)
          .map((d) => d.toJS() as KubeObject | null)
          .filter(
            (o): o is KubeObject => o !== null && ['ServiceAccount', 'Role', 'RoleBinding'].includes(o.kind),
          );
        await applyObjects(cluster.kubeConfig(), objects);
        const sa = objects.find((o) => o.kind === 'ServiceAccount')!;
        const { kubeConfig } = await serviceAccountKubeConfig(cluster, chartNamespace, sa.metadata.name);
        const chartNeeds: NamespaceNeeds[] = [
          {
            namespace: kubeNs,
            runners: true,
            controller: false,
            features: ['createServiceAccount', 'kubernetesMode'],
          },
          { namespace: chartNamespace, runners: false, controller: true, features: ['leaderElection'] },
        ];
        const result = await checkControllerRights(kubeConfig, chartNeeds, {
          names: { controllerRole: 'unused', leaseName: 'chart-leader' },
        });
        expect(result, result.ok ? '' : result.message).toMatchObject({ ok: true });

        // And the provider can set up a kubernetes-mode scale set with exactly those rights.
        const factory = createKubernetesProviderFactory({ kubeConfig });
        factories.push(factory);
        const scaleSet = scaleSetConfig('kube', { namespace: kubeNs, containerMode: 'kubernetes' });
        await factory
          .create(kubernetesProviderSchema.parse(scaleSet.provider), { fleet: 'chart', scaleSet, logger })
          .prepare(signal());
      } finally {
        for (const name of [chartNamespace, kubeNs])
          await core.deleteNamespace({ name }).catch(() => undefined);
      }
    },
  );
});
