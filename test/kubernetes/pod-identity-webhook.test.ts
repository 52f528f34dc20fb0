/**
 * Cloud identity proven end to end on the test control plane with the real amazon-eks-pod-identity-webhook as a
 * mutating admission webhook (test/kubernetes/pod-identity-webhook.ts) and moto's STS:
 *
 * - IRSA (`identity.aws.roleArn`), in each container mode: the runner pod the provider creates with the controller's
 *   least-privilege token, and in kubernetes mode a job pod created from the hook template with the runner's own
 *   credentials (as runner-container-hooks does), are stored by the API server with AWS_ROLE_ARN,
 *   AWS_WEB_IDENTITY_TOKEN_FILE and the projected sts.amazonaws.com token volume; the token the kubelet would put
 *   there (a TokenRequest with that volume's audience and expiry, bound to the job pod) is exchanged by the AWS CLI,
 *   with only the pod's variables, at moto's AssumeRoleWithWebIdentity for that role's credentials.
 * - EKS Pod Identity (`identity.aws.podIdentity`): no annotation; until the association exists doctor names the
 *   command that makes it, then runner and job pods get AWS_CONTAINER_CREDENTIALS_FULL_URI,
 *   AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE and the pods.eks.amazonaws.com token volume.
 * - doctor says what pods of each runner ServiceAccount get (a dry-run pod through the same webhook).
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import type { V1Container, V1Pod } from '@kubernetes/client-node';
import { CoreV1Api } from '@kubernetes/client-node';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { command as doctor } from '../../src/cli/doctor.js';
import type { IdentityConfig } from '../../src/core/fleet-config.js';
import type { KubernetesProviderFactory } from '../../src/providers/kubernetes/index.js';
import { createKubernetesProviderFactory } from '../../src/providers/kubernetes/index.js';
import { kubernetesProviderSchema } from '../../src/providers/kubernetes/schema.js';
import type { Simulator } from '../../src/sim/github/index.js';
import { requireContainerRuntime } from '../support/container.js';
import type { MotoServer } from '../support/moto.js';
import { MOTO_ACCOUNT, awsPeersBin, requireAwsPeers, startMoto } from '../support/moto.js';
import { simulatorCredentials, startFleetSimulator } from '../support/sim-fleet.js';
import { hookTemplateOf, jobPodFromTemplate, mergePatch, scaleSetConfig } from './fixtures.js';
import { createTestNamespace, requireCluster, useTestCluster, waitFor } from './helpers.js';
import type { PodIdentityWebhook } from './pod-identity-webhook.js';
import { requirePodIdentityWebhook, startPodIdentityWebhook } from './pod-identity-webhook.js';
import type { ControllerIdentity } from './rbac-fixture.js';
import { installController, serviceAccountKubeConfig } from './rbac-fixture.js';

const logger = pino({ level: 'silent' });
const signal = () => AbortSignal.timeout(60_000);
const ROLE_ARN = `arn:aws:iam::${MOTO_ACCOUNT}:role/ci-runner`;
const POD_ROLE_ARN = `arn:aws:iam::${MOTO_ACCOUNT}:role/ci-pod-identity`;
const IRSA_TOKEN_FILE = '/var/run/secrets/eks.amazonaws.com/serviceaccount/token';
const POD_IDENTITY_TOKEN_FILE =
  '/var/run/secrets/pods.eks.amazonaws.com/serviceaccount/eks-pod-identity-token';

const available =
  requireCluster('pod identity webhook') &&
  requirePodIdentityWebhook('pod identity webhook') &&
  requireAwsPeers('pod identity webhook') &&
  requireContainerRuntime('pod identity webhook');

const envOf = (container: V1Container | undefined) =>
  Object.fromEntries((container?.env ?? []).map((e) => [e.name, e.value]));

/** The projected token volume mounted at the directory of `file` in `container`, with its token source. */
function tokenVolume(pod: V1Pod, container: V1Container, file: string) {
  // The deepest mount holding the file: in dind mode /var/run itself is a volume (the docker socket).
  const mount = (container.volumeMounts ?? [])
    .filter((m) => file.startsWith(`${m.mountPath}/`))
    .sort((a, b) => b.mountPath.length - a.mountPath.length)[0];
  const volume = pod.spec?.volumes?.find((v) => v.name === mount?.name);
  const source = volume?.projected?.sources?.find((s) => s.serviceAccountToken)?.serviceAccountToken;
  return { mount, volume, source };
}

describe.skipIf(!available)('pod identity webhook: IRSA and EKS Pod Identity end to end', () => {
  const cluster = useTestCluster();
  let core: CoreV1Api;
  let webhook: PodIdentityWebhook;
  let moto: MotoServer;
  let sim: Simulator;
  let namespace: string;
  let home: string;
  let controller: ControllerIdentity;
  const factories: KubernetesProviderFactory[] = [];
  const fleet = `piw-${randomBytes(3).toString('hex')}`;
  // Made when the suite runs: a skipped suite's body is still collected, and its afterAll would not remove it.
  let dir = '';
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'rf-piw-test-'));
  });

  function provider(name: string, identity: IdentityConfig, containerMode: string) {
    const factory = createKubernetesProviderFactory({ kubeConfig: controller.kubeConfig });
    factories.push(factory);
    const scaleSet = scaleSetConfig(name, { namespace, containerMode }, { identity });
    return factory.create(kubernetesProviderSchema.parse(scaleSet.provider), { fleet, scaleSet, logger });
  }

  async function createRunner(p: ReturnType<typeof provider>, scaleSet: string): Promise<V1Pod> {
    const name = `${scaleSet}-${randomBytes(4).toString('hex')}`;
    await p.create(
      { name, fleet, scaleSet, registration: { mode: 'jit', jitConfig: 'jit-value' } },
      signal(),
    );
    return core.readNamespacedPod({ name, namespace });
  }

  /** A job pod as runner-container-hooks creates it: from the hook template, with the runner's credentials. */
  async function createJobPod(runnerPod: V1Pod, serviceAccount: string): Promise<V1Pod> {
    const template = await hookTemplateOf(core, runnerPod);
    const asRunner = (
      await serviceAccountKubeConfig(cluster, namespace, serviceAccount)
    ).kubeConfig.makeApiClient(CoreV1Api);
    const name = `${runnerPod.metadata!.name}-workflow`;
    await asRunner.createNamespacedPod({ namespace, body: jobPodFromTemplate(name, template) });
    return core.readNamespacedPod({ name, namespace });
  }

  /** A dry-run pod of the ServiceAccount (what doctor does) until the webhook's cache has caught up with it. */
  async function untilMutated(serviceAccount: string, variable: string): Promise<void> {
    await waitFor(
      `pods of ${serviceAccount} to be mutated (${variable})`,
      async () => {
        const pod = await core.createNamespacedPod({
          namespace,
          dryRun: 'All',
          body: {
            metadata: { generateName: 'probe-' },
            spec: {
              serviceAccountName: serviceAccount,
              automountServiceAccountToken: false,
              containers: [{ name: 'probe', image: 'registry.k8s.io/pause:3.10' }],
            },
          },
        });
        return envOf(pod.spec?.containers[0])[variable] !== undefined ? true : undefined;
      },
      { timeoutMs: 30_000 },
    );
  }

  async function runDoctor(scaleSets: object[]): Promise<string> {
    const sub = mkdtempSync(path.join(dir, 'doctor-'));
    const file = path.join(sub, 'fleet.yaml');
    writeFileSync(file, stringify({ name: fleet, ...simulatorCredentials(sim, sub), scaleSets }));
    let out = '';
    const stdout = new PassThrough();
    stdout.on('data', (c: Buffer) => (out += c.toString()));
    await doctor.run(['--config', file, '--kubeconfig', cluster.kubeconfigPath], {
      stdout,
      stderr: new PassThrough(),
      env: {},
    });
    return out;
  }

  beforeAll(async () => {
    core = cluster.kubeConfig().makeApiClient(CoreV1Api);
    webhook = await startPodIdentityWebhook(cluster);
    moto = await startMoto();
    sim = await startFleetSimulator();
    namespace = await createTestNamespace(cluster, 'rf-piw-runners');
    await core.patchNamespace(
      { name: namespace, body: { metadata: { labels: webhook.namespaceLabel } } },
      mergePatch,
    );
    home = await createTestNamespace(cluster, 'rf-piw-home');
    controller = await installController(cluster, home, [
      { namespace, runners: true, controller: false, features: ['createServiceAccount', 'kubernetesMode'] },
    ]);
    // The role IRSA assumes, trusting the cluster's OIDC issuer, as in an EKS account.
    const aws = spawnSync(
      `${awsPeersBin()}/aws`,
      [
        'iam',
        'create-role',
        '--role-name',
        'ci-runner',
        '--assume-role-policy-document',
        JSON.stringify({
          Version: '2012-10-17',
          Statement: [
            {
              Effect: 'Allow',
              Principal: { Federated: `arn:aws:iam::${MOTO_ACCOUNT}:oidc-provider/oidc.eks.example/id/TEST` },
              Action: 'sts:AssumeRoleWithWebIdentity',
            },
          ],
        }),
      ],
      { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir, ...moto.env() }, encoding: 'utf8' },
    );
    expect(aws.status, aws.stderr).toBe(0);
  }, 180_000);

  afterAll(async () => {
    await Promise.all(factories.map((f) => f.close()));
    await webhook?.stop();
    await moto?.stop();
    await sim?.close();
    for (const name of [namespace, home])
      if (name) await core.deleteNamespace({ name }).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  });

  for (const mode of ['none', 'dind', 'kubernetes'] as const) {
    it(`IRSA, ${mode} mode: the stored runner pod${mode === 'kubernetes' ? ' and job pod get' : ' gets'} the role and its token`, async () => {
      const scaleSet = `irsa-${mode}`;
      const p = provider(scaleSet, { aws: { roleArn: ROLE_ARN } }, mode);
      await p.prepare(signal());
      const sa = `${scaleSet}-runner`;
      await untilMutated(sa, 'AWS_ROLE_ARN');

      const pods = [await createRunner(p, scaleSet)];
      if (mode === 'kubernetes') pods.push(await createJobPod(pods[0]!, sa));
      for (const pod of pods) {
        const container = pod.spec!.containers[0]!;
        expect(container.name).toBe(pod === pods[0] ? 'runner' : 'job');
        expect(envOf(container)).toMatchObject({
          AWS_ROLE_ARN: ROLE_ARN,
          AWS_WEB_IDENTITY_TOKEN_FILE: IRSA_TOKEN_FILE,
        });
        const { mount, volume, source } = tokenVolume(pod, container, IRSA_TOKEN_FILE);
        expect(mount?.readOnly).toBe(true);
        expect(volume?.name).toBe('aws-iam-token');
        expect(source).toEqual({ audience: 'sts.amazonaws.com', expirationSeconds: 86400, path: 'token' });
      }

      if (mode === 'kubernetes') {
        // The job pod mounts no Kubernetes token, only the AWS one.
        const job = pods[1]!;
        expect(job.spec?.automountServiceAccountToken).toBe(false);
        expect(job.spec?.volumes?.some((v) => v.name.startsWith('kube-api-access'))).toBe(false);

        // What the kubelet projects into the job pod: a token with the volume's audience and expiry, bound to it.
        const { source } = tokenVolume(job, job.spec!.containers[0]!, IRSA_TOKEN_FILE);
        const request = await core.createNamespacedServiceAccountToken({
          name: sa,
          namespace,
          body: {
            spec: {
              audiences: [source!.audience!],
              expirationSeconds: source!.expirationSeconds ?? 86400,
              boundObjectRef: {
                apiVersion: 'v1',
                kind: 'Pod',
                name: job.metadata!.name!,
                uid: job.metadata!.uid!,
              },
            },
          },
        });
        const token = request.status!.token!;
        const claims = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as {
          aud: string[];
          sub: string;
          'kubernetes.io': { pod: { name: string } };
        };
        expect(claims.aud).toEqual(['sts.amazonaws.com']);
        expect(claims.sub).toBe(`system:serviceaccount:${namespace}:${sa}`);
        expect(claims['kubernetes.io'].pod.name).toBe(job.metadata!.name);

        // The job's AWS CLI with the pod's variables (the token file at a path of this machine): web identity.
        const tokenFile = path.join(dir, 'token');
        writeFileSync(tokenFile, token, { mode: 0o600 });
        const env = envOf(job.spec!.containers[0]);
        const { AWS_ACCESS_KEY_ID: _a, AWS_SECRET_ACCESS_KEY: _s, ...endpoint } = moto.env();
        const who = spawnSync(`${awsPeersBin()}/aws`, ['sts', 'get-caller-identity', '--output', 'json'], {
          env: {
            PATH: process.env.PATH ?? '/usr/bin:/bin',
            HOME: dir,
            ...endpoint,
            AWS_ROLE_ARN: env.AWS_ROLE_ARN!,
            AWS_WEB_IDENTITY_TOKEN_FILE: tokenFile,
            AWS_ROLE_SESSION_NAME: 'job',
          },
          encoding: 'utf8',
        });
        expect(who.status, who.stderr).toBe(0);
        const identity = JSON.parse(who.stdout) as { Arn: string; Account: string };
        expect(identity.Account).toBe(MOTO_ACCOUNT);
        expect(identity.Arn).toBe(`arn:aws:sts::${MOTO_ACCOUNT}:assumed-role/ci-runner/job`);
      }
      for (const pod of [...pods].reverse())
        await core.deleteNamespacedPod({ name: pod.metadata!.name!, namespace });
    }, 120_000);
  }

  it('EKS Pod Identity: doctor names the association; with it runner and job pods get container credentials', async () => {
    const scaleSet = 'podid';
    const sa = `${scaleSet}-runner`;
    const p = provider(scaleSet, { aws: { roleArn: POD_ROLE_ARN, podIdentity: true } }, 'kubernetes');
    await p.prepare(signal());
    const account = await core.readNamespacedServiceAccount({ name: sa, namespace });
    expect(account.metadata?.annotations?.['eks.amazonaws.com/role-arn']).toBeUndefined();

    const sets = [
      {
        name: scaleSet,
        scope: { org: 'octo-org' },
        labels: ['linux', 'podid'],
        max: 2,
        identity: { aws: { roleArn: POD_ROLE_ARN, podIdentity: true } },
        provider: { kind: 'kubernetes', namespace, containerMode: 'kubernetes' },
      },
    ];
    const before = await runDoctor(sets);
    expect(before).toContain(
      `FAIL  scale set ${scaleSet}: ServiceAccount ${namespace}/${sa}: pods get no EKS Pod Identity credentials ` +
        `(a dry-run pod got no AWS_CONTAINER_CREDENTIALS_FULL_URI): associate the role with the ServiceAccount: ` +
        `aws eks create-pod-identity-association --cluster-name <cluster> --namespace ${namespace} ` +
        `--service-account ${sa} --role-arn ${POD_ROLE_ARN}`,
    );

    // What `aws eks create-pod-identity-association` makes EKS tell its webhook.
    webhook.setAssociations([{ namespace, serviceAccount: sa }]);
    await untilMutated(sa, 'AWS_CONTAINER_CREDENTIALS_FULL_URI');
    const after = await runDoctor(sets);
    expect(after).toContain(
      `ok    scale set ${scaleSet}: ServiceAccount ${namespace}/${sa}: pods get EKS Pod Identity credentials`,
    );
    expect(after).not.toMatch(/^FAIL/m);

    const runner = await createRunner(p, scaleSet);
    const job = await createJobPod(runner, sa);
    for (const pod of [runner, job]) {
      const container = pod.spec!.containers[0]!;
      expect(envOf(container)).toMatchObject({
        AWS_CONTAINER_CREDENTIALS_FULL_URI: 'http://169.254.170.23/v1/credentials',
        AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: POD_IDENTITY_TOKEN_FILE,
      });
      expect(envOf(container).AWS_ROLE_ARN).toBeUndefined();
      const { volume, source } = tokenVolume(pod, container, POD_IDENTITY_TOKEN_FILE);
      expect(volume?.name).toBe('eks-pod-identity-token');
      expect(source).toMatchObject({ audience: 'pods.eks.amazonaws.com', path: 'eks-pod-identity-token' });
    }
    await core.deleteNamespacedPod({ name: job.metadata!.name!, namespace });
    await core.deleteNamespacedPod({ name: runner.metadata!.name!, namespace });
  }, 120_000);

  it('doctor: IRSA pods are given the role; a namespace the webhook is not called for is diagnosed', async () => {
    const irsa = {
      name: 'irsa-kubernetes',
      scope: { org: 'octo-org' },
      labels: ['linux', 'irsa'],
      max: 2,
      identity: { aws: { roleArn: ROLE_ARN } },
      provider: { kind: 'kubernetes', namespace, containerMode: 'kubernetes' },
    };
    const ok = await runDoctor([irsa]);
    expect(ok).toContain(
      `ok    scale set irsa-kubernetes: ServiceAccount ${namespace}/irsa-kubernetes-runner: pods get role ${ROLE_ARN} ` +
        `(AWS_ROLE_ARN, AWS_WEB_IDENTITY_TOKEN_FILE ${IRSA_TOKEN_FILE})`,
    );
    expect(ok).not.toMatch(/^FAIL/m);

    // The same ServiceAccount in a namespace the webhook is not called for: as if it were not installed.
    const other = await createTestNamespace(cluster, 'rf-piw-other');
    try {
      await core.createNamespacedServiceAccount({
        namespace: other,
        body: { metadata: { name: 'ci', annotations: { 'eks.amazonaws.com/role-arn': ROLE_ARN } } },
      });
      const out = await runDoctor([
        { ...irsa, provider: { kind: 'kubernetes', namespace: other, serviceAccount: { name: 'ci' } } },
      ]);
      expect(out).toContain(
        `FAIL  scale set irsa-kubernetes: ServiceAccount ${other}/ci: annotation eks.amazonaws.com/role-arn is ` +
          'present but pods are not mutated (a dry-run pod got no AWS_ROLE_ARN): is the pod identity webhook installed?',
      );
    } finally {
      await core.deleteNamespace({ name: other }).catch(() => undefined);
    }
  }, 120_000);
});
