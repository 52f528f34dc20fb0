/**
 * amazon-eks-pod-identity-webhook (built from the Go module proxy by scripts/install-pod-identity-webhook.sh) as a
 * real mutating admission webhook of the test control plane, as EKS runs it for IRSA and EKS Pod Identity:
 *
 * - TLS with a certificate from a test CA for 127.0.0.1; a MutatingWebhookConfiguration whose clientConfig.url is
 *   https://127.0.0.1:<port>/mutate with that CA as caBundle, so the API server calls it on every pod CREATE (dry runs
 *   included: sideEffects None) in the namespaces carrying this webhook's label;
 * - its own ServiceAccount with a ClusterRole to watch ServiceAccounts (it reads their eks.amazonaws.com/role-arn
 *   annotation), its token from a TokenRequest in the kubeconfig it gets;
 * - EKS Pod Identity associations written to the file it watches (`--watch-container-credentials-config`), as the
 *   EKS control plane does;
 * - run in a network namespace of its own (it listens on all interfaces of its namespace, and only the API server
 *   reaches it, through 127.0.0.1), read-only root, an unprivileged user.
 */
import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import https from 'node:https';
import { AdmissionregistrationV1Api, CoreV1Api, RbacAuthorizationV1Api } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import type { RunningContainer } from '../support/container.js';
import { startContainer } from '../support/container.js';
import type { TestCa } from '../support/test-ca.js';
import { createTestCa } from '../support/test-ca.js';
import type { TestCluster } from './helpers.js';
import { createTestNamespace } from './helpers.js';
import { reportSkip } from '../support/skips.js';

const repo = path.resolve(import.meta.dirname, '../..');
/** Namespaces labelled with this (value: the webhook's id) are the ones the webhook is called for. */
export const WEBHOOK_NAMESPACE_LABEL = 'runner-fleet.test/pod-identity-webhook';
const PORT = 9443;

export function podIdentityWebhookBinary(): string | undefined {
  const result = spawnSync('bash', [`${repo}/scripts/install-pod-identity-webhook.sh`, '--check'], {
    encoding: 'utf8',
  });
  if (result.status !== 0) return undefined;
  return result.stdout.trim().split('\n').pop();
}

/** For describe.skipIf(!requirePodIdentityWebhook(...)): loud skip on a developer machine, failure under CI=true. */
export function requirePodIdentityWebhook(suite: string): boolean {
  if (podIdentityWebhookBinary()) return true;
  return reportSkip(
    suite,
    'amazon-eks-pod-identity-webhook is not built',
    'scripts/install-pod-identity-webhook.sh',
  );
}

export interface PodIdentityWebhook {
  readonly id: string;
  /** The label a namespace needs for the webhook to be called for its pods. */
  readonly namespaceLabel: Readonly<Record<string, string>>;
  /** The EKS Pod Identity associations (namespace, ServiceAccount) the webhook knows of. */
  setAssociations(associations: readonly { namespace: string; serviceAccount: string }[]): void;
  output(): string;
  stop(): Promise<void>;
}

async function healthy(port: number, ca: TestCa): Promise<boolean> {
  return new Promise((resolve) => {
    const req = https.get(
      { host: '127.0.0.1', port, path: '/healthz', ca: ca.cert, timeout: 2000 },
      (res) => {
        res.resume();
        resolve(res.statusCode === 200);
      },
    );
    req.once('error', () => resolve(false));
    req.once('timeout', () => req.destroy());
  });
}

export async function startPodIdentityWebhook(cluster: TestCluster): Promise<PodIdentityWebhook> {
  const binary = podIdentityWebhookBinary();
  if (!binary) throw new Error('amazon-eks-pod-identity-webhook is not built');
  const id = `piw-${randomBytes(3).toString('hex')}`;
  const admin = cluster.kubeConfig();
  const core = admin.makeApiClient(CoreV1Api);
  const rbac = admin.makeApiClient(RbacAuthorizationV1Api);
  const admission = admin.makeApiClient(AdmissionregistrationV1Api);

  // Its identity: a ServiceAccount that may watch ServiceAccounts (what the upstream deploy/auth.yaml grants).
  const home = await createTestNamespace(cluster, 'rf-piw');
  await core.createNamespacedServiceAccount({
    namespace: home,
    body: { metadata: { name: 'pod-identity-webhook' } },
  });
  await rbac.createClusterRole({
    body: {
      metadata: { name: `runner-fleet-test-${id}` },
      rules: [{ apiGroups: [''], resources: ['serviceaccounts'], verbs: ['get', 'list', 'watch'] }],
    },
  });
  await rbac.createClusterRoleBinding({
    body: {
      metadata: { name: `runner-fleet-test-${id}` },
      roleRef: {
        apiGroup: 'rbac.authorization.k8s.io',
        kind: 'ClusterRole',
        name: `runner-fleet-test-${id}`,
      },
      subjects: [{ kind: 'ServiceAccount', name: 'pod-identity-webhook', namespace: home }],
    },
  });
  const token = (
    await core.createNamespacedServiceAccountToken({
      name: 'pod-identity-webhook',
      namespace: home,
      body: { spec: { audiences: [], expirationSeconds: 7200 } },
    })
  ).status!.token!;

  const dir = mkdtempSync(path.join(tmpdir(), 'rf-piw-'));
  chmodSync(dir, 0o755);
  const ca = createTestCa('pod-identity-webhook-test-ca');
  const cert = ca.issue(['127.0.0.1'], 'pod-identity-webhook');
  const etc = path.join(dir, 'etc');
  const associations = path.join(dir, 'pod-identity');
  for (const d of [etc, associations]) {
    mkdirSync(d, { recursive: true });
    chmodSync(d, 0o755);
  }
  writeFileSync(path.join(etc, 'tls.crt'), cert.cert, { mode: 0o644 });
  writeFileSync(path.join(etc, 'tls.key'), cert.key, { mode: 0o644 });
  writeFileSync(path.join(etc, 'ca.crt'), cluster.caCert, { mode: 0o644 });
  writeFileSync(
    path.join(etc, 'kubeconfig'),
    stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [
        { name: 'test', cluster: { server: cluster.server, 'certificate-authority': '/etc/webhook/ca.crt' } },
      ],
      users: [{ name: 'webhook', user: { token } }],
      contexts: [{ name: 'test', context: { cluster: 'test', user: 'webhook' } }],
      'current-context': 'test',
    }),
    { mode: 0o644 },
  );
  const identitiesFile = path.join(associations, 'identities.json');
  writeFileSync(identitiesFile, JSON.stringify({ identities: [] }), { mode: 0o644 });

  const apiPort = Number(new URL(cluster.server).port);
  let container: RunningContainer | undefined;
  let configured = false;
  const cleanup = async () => {
    if (configured)
      await admission
        .deleteMutatingWebhookConfiguration({ name: `runner-fleet-test-${id}` })
        .catch(() => undefined);
    await container?.stop(5_000);
    await rbac.deleteClusterRoleBinding({ name: `runner-fleet-test-${id}` }).catch(() => undefined);
    await rbac.deleteClusterRole({ name: `runner-fleet-test-${id}` }).catch(() => undefined);
    await core.deleteNamespace({ name: home }).catch(() => undefined);
    ca.remove();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    container = await startContainer({
      command: [
        '/webhook/amazon-eks-pod-identity-webhook',
        '--in-cluster=false',
        '--kubeconfig=/etc/webhook/kubeconfig',
        '--tls-cert=/etc/webhook/tls.crt',
        '--tls-key=/etc/webhook/tls.key',
        `--port=${PORT}`,
        '--metrics-port=9999',
        '--watch-container-credentials-config=/etc/pod-identity/identities.json',
        '--logtostderr',
      ],
      env: { PATH: '/usr/bin:/bin' },
      user: { uid: 65534, gid: 65534 },
      mounts: [
        { hostPath: path.dirname(binary), containerPath: '/webhook', readOnly: true },
        { hostPath: etc, containerPath: '/etc/webhook', readOnly: true },
        { hostPath: associations, containerPath: '/etc/pod-identity', readOnly: true },
      ],
      readOnlyRootFilesystem: true,
      network: { inbound: [PORT], outbound: [{ port: apiPort, host: '127.0.0.1', hostPort: apiPort }] },
    });
    const hostPort = container.ports.get(PORT)!;
    const deadline = Date.now() + 60_000;
    while (!(await healthy(hostPort, ca))) {
      if (container.process.exitCode !== null) throw new Error(`the webhook exited:\n${container.output()}`);
      if (Date.now() > deadline)
        throw new Error(`the webhook did not answer /healthz:\n${container.output()}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    await admission.createMutatingWebhookConfiguration({
      body: {
        metadata: { name: `runner-fleet-test-${id}` },
        webhooks: [
          {
            name: 'pod-identity-webhook.amazonaws.com',
            clientConfig: {
              url: `https://127.0.0.1:${hostPort}/mutate`,
              caBundle: Buffer.from(ca.cert).toString('base64'),
            },
            rules: [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'] }],
            namespaceSelector: { matchLabels: { [WEBHOOK_NAMESPACE_LABEL]: id } },
            objectSelector: {
              matchExpressions: [
                { key: 'eks.amazonaws.com/skip-pod-identity-webhook', operator: 'DoesNotExist' },
              ],
            },
            // Fail, not Ignore as on EKS: a webhook the API server cannot call must fail the test, not hide.
            failurePolicy: 'Fail',
            sideEffects: 'None',
            admissionReviewVersions: ['v1beta1'],
            timeoutSeconds: 10,
          },
        ],
      },
    });
    configured = true;
  } catch (error) {
    await cleanup();
    throw error;
  }
  const running = container;
  return {
    id,
    namespaceLabel: { [WEBHOOK_NAMESPACE_LABEL]: id },
    setAssociations(list) {
      // Replaced atomically, as a config management tool would: the webhook's file watcher reloads it.
      const next = `${identitiesFile}.next`;
      writeFileSync(next, JSON.stringify({ identities: list }), { mode: 0o644 });
      renameSync(next, identitiesFile);
    },
    output: () => running.output(),
    stop: cleanup,
  };
}
