/**
 * `runner-fleet doctor`, Kubernetes half, on the real control plane, run as an operator (admin kubeconfig) for the
 * controller's ServiceAccount: the controller's rights, each runner ServiceAccount's identity annotations and
 * container-mode rights, with the GitHub half against the simulator. One line per check, exit 0 only when all pass.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { CoreV1Api, PatchStrategy, RbacAuthorizationV1Api, setHeaderOptions } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { command } from '../../src/cli/doctor.js';
import { controllerNeeds } from '../../src/providers/kubernetes/rbac-needs.js';
import type { Simulator } from '../../src/sim/github/index.js';
import { startSimulator } from '../../src/sim/github/index.js';
import { createTestNamespace, requireCluster, useTestCluster } from './helpers.js';
import { installController, untilAuthorized } from './rbac-fixture.js';

const ROLE_ARN = 'arn:aws:iam::123456789012:role/ci-runner';

async function doctor(args: string[]): Promise<{ code: number; out: string }> {
  const stdout = new PassThrough();
  let out = '';
  stdout.on('data', (c: Buffer) => (out += c.toString()));
  const code = await command.run(args, { stdout, stderr: stdout, env: { PATH: process.env.PATH } });
  return { code, out };
}

describe.skipIf(!requireCluster('doctor on kubernetes'))('doctor on kubernetes', () => {
  const cluster = useTestCluster();
  // Made when the suite runs: a skipped suite's body is still collected, and its afterAll would not remove it.
  let dir = '';
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'runner-fleet-doctor-k8s-'));
  });
  let sim: Simulator;
  let ctl: string;
  let kubeNs: string;
  let plainNs: string;
  let configPath: string;
  let adminKubeconfig: string;
  let controllerKubeconfig: string;

  beforeAll(async () => {
    sim = await startSimulator({ orgs: ['octo-org'] });
    ctl = await createTestNamespace(cluster, 'rf-doc-ctl');
    kubeNs = await createTestNamespace(cluster, 'rf-doc-kube');
    plainNs = await createTestNamespace(cluster, 'rf-doc-plain');
    writeFileSync(join(dir, 'app.pem'), sim.privateKeyPem, { mode: 0o600 });
    const scaleSets = [
      {
        name: 'kube',
        scope: { org: 'octo-org' },
        labels: ['linux', 'kube'],
        max: 2,
        identity: { aws: { roleArn: ROLE_ARN } },
        provider: {
          kind: 'kubernetes',
          namespace: kubeNs,
          containerMode: 'kubernetes',
          serviceAccount: { name: 'ci-runner' },
        },
      },
      {
        name: 'plain',
        scope: { org: 'octo-org' },
        labels: ['linux', 'plain'],
        max: 2,
        provider: { kind: 'kubernetes', namespace: plainNs },
      },
    ];
    configPath = join(dir, 'fleet.yaml');
    writeFileSync(
      configPath,
      stringify({
        name: 'doc',
        github: {
          url: sim.baseUrl,
          apiUrl: sim.apiUrl,
          auth: { app: { id: sim.appId, privateKey: '${file:./app.pem}' } },
        },
        webhook: { secret: 'not-used-by-doctor' },
        store: { path: join(dir, 'unused.db') },
        scaleSets,
      }),
    );
    const needs = controllerNeeds({ name: 'doc', scaleSets } as never, {
      controllerNamespace: ctl,
      leaderElection: false,
    });
    const controller = await installController(cluster, ctl, needs);
    adminKubeconfig = join(dir, 'admin.kubeconfig');
    writeFileSync(adminKubeconfig, cluster.kubeConfig().exportConfig(), { mode: 0o600 });
    controllerKubeconfig = join(dir, 'controller.kubeconfig');
    writeFileSync(controllerKubeconfig, controller.kubeConfig.exportConfig(), { mode: 0o600 });
  }, 120_000);

  afterAll(async () => {
    await sim?.close();
    const core = cluster.kubeConfig().makeApiClient(CoreV1Api);
    await Promise.all(
      [ctl, kubeNs, plainNs].map((name) => core.deleteNamespace({ name }).catch(() => undefined)),
    );
    rmSync(dir, { recursive: true, force: true });
  });

  const asOperator = () => [
    '--config',
    configPath,
    '--kubeconfig',
    adminKubeconfig,
    '--controller-service-account',
    `${ctl}/runner-fleet`,
  ];

  it('reports a missing runner ServiceAccount, then its missing identity annotation and rights', async () => {
    const missing = await doctor(asOperator());
    expect(missing.code).toBe(1);
    expect(missing.out).toContain('ok    organization octo-org: runners can be listed');
    expect(missing.out).toMatch(/ok {4}controller rights: all \d+ permissions granted/);
    expect(missing.out).toContain(`FAIL  scale set kube: ServiceAccount ${kubeNs}/ci-runner does not exist`);
    expect(missing.out).toContain(
      `ok    scale set plain: ServiceAccount ${plainNs}/plain-runner does not exist yet; runner-fleet creates it at start`,
    );

    const core = cluster.kubeConfig().makeApiClient(CoreV1Api);
    await core.createNamespacedServiceAccount({
      namespace: kubeNs,
      body: { metadata: { name: 'ci-runner' } },
    });
    const bare = await doctor(asOperator());
    expect(bare.code).toBe(1);
    expect(bare.out).toMatch(
      new RegExp(
        `FAIL {2}scale set kube: ServiceAccount ${kubeNs}/ci-runner: .*eks\\.amazonaws\\.com/role-arn`,
      ),
    );
    expect(bare.out).toMatch(
      new RegExp(
        `FAIL {2}scale set kube: ServiceAccount ${kubeNs}/ci-runner lacks: create pods in namespace ${kubeNs}`,
      ),
    );
    expect(bare.out).toMatch(/FAIL {2}scale set kube: .* lacks: create pods\/exec/);
  }, 60_000);

  it('once annotated and bound the ServiceAccount is right, but without the pod identity webhook pods are not mutated', async () => {
    const core = cluster.kubeConfig().makeApiClient(CoreV1Api);
    await core.patchNamespacedServiceAccount(
      {
        name: 'ci-runner',
        namespace: kubeNs,
        body: { metadata: { annotations: { 'eks.amazonaws.com/role-arn': ROLE_ARN } } },
      },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    await cluster
      .kubeConfig()
      .makeApiClient(RbacAuthorizationV1Api)
      .createNamespacedRoleBinding({
        namespace: kubeNs,
        body: {
          metadata: { name: 'ci-runner-hooks' },
          roleRef: {
            apiGroup: 'rbac.authorization.k8s.io',
            kind: 'Role',
            name: 'runner-fleet-container-hooks',
          },
          subjects: [{ kind: 'ServiceAccount', name: 'ci-runner', namespace: kubeNs }],
        },
      });
    const r = await doctor(asOperator());
    expect(r.out).not.toContain(`${kubeNs}/ci-runner lacks`);
    expect(r.out).not.toContain('annotation eks.amazonaws.com/role-arn is missing');
    // This control plane runs no pod identity webhook (pod-identity-webhook.test.ts runs one): a dry-run pod of
    // the ServiceAccount shows it, as it would on a cluster where the webhook was never installed.
    expect(r.out).toContain(
      `FAIL  scale set kube: ServiceAccount ${kubeNs}/ci-runner: annotation eks.amazonaws.com/role-arn is present ` +
        'but pods are not mutated (a dry-run pod got no AWS_ROLE_ARN): is the pod identity webhook installed?',
    );
    expect(r.out.match(/^FAIL/gm)).toHaveLength(1);
    expect(r.out.trim().split('\n').at(-1)).toBe('doctor: some checks FAILED');
    expect(r.code).toBe(1);
  }, 60_000);

  it('names a verb removed from the controller Role; the controller itself sees it too', async () => {
    const rbac = cluster.kubeConfig().makeApiClient(RbacAuthorizationV1Api);
    const role = await rbac.readNamespacedRole({ name: 'runner-fleet-controller', namespace: plainNs });
    const pods = role.rules!.find((r) => r.resources?.includes('pods') && r.verbs.includes('watch'))!;
    pods.verbs = pods.verbs.filter((v) => v !== 'watch');
    await rbac.replaceNamespacedRole({ name: 'runner-fleet-controller', namespace: plainNs, body: role });
    await untilAuthorized(
      cluster,
      { namespace: ctl, name: 'runner-fleet' },
      [{ verb: 'watch', apiGroup: '', resource: 'pods', namespace: plainNs }],
      false,
    );

    const r = await doctor(asOperator());
    expect(r.code).toBe(1);
    expect(r.out).toContain(`FAIL  controller lacks: watch pods in namespace ${plainNs}`);
    // With the controller's own token: SelfSubjectAccessReview finds the same gap.
    const own = await doctor(['--config', configPath, '--kubeconfig', controllerKubeconfig]);
    expect(own.code).toBe(1);
    expect(own.out).toContain(`FAIL  controller lacks: watch pods in namespace ${plainNs}`);
  }, 60_000);

  it('fails with the reason when the API server cannot be reached', async () => {
    const unreachable = join(dir, 'nowhere.kubeconfig');
    writeFileSync(
      unreachable,
      stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [
          { name: 'x', cluster: { server: 'https://127.0.0.1:1', 'insecure-skip-tls-verify': true } },
        ],
        users: [{ name: 'x', user: { token: 'not-a-real-token-value' } }],
        contexts: [{ name: 'x', context: { cluster: 'x', user: 'x' } }],
        'current-context': 'x',
      }),
    );
    const r = await doctor(['--config', configPath, '--kubeconfig', unreachable]);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/FAIL {2}Kubernetes API https:\/\/127\.0\.0\.1:1: /);
    expect(r.out).not.toContain('not-a-real-token-value');
  }, 60_000);
});
