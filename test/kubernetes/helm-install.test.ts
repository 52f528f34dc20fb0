/**
 * The chart as a platform team installs it: rendered by a real helm with the default values plus only what a user
 * must give (the GitHub App, the webhook secret in a Secret, where the runners go), applied to the test control
 * plane (its Roles and RoleBindings included), and the controller run exactly as the Deployment the API server
 * stored would run it (test/kubernetes/kubelet.ts): its args over the image's entrypoint, its env (the webhook
 * secret from the Secret, the pod's name), the fleet.yaml of the ConfigMap and the App key of the Secret as
 * read-only volumes, the ServiceAccount token from a TokenRequest as its only credentials, uid 1000 with a
 * read-only root, in a network namespace of its own. It must become ready and serve /webhook on the Service's port,
 * with the dashboard and API on the pod's loopback only; with `dashboard.tokenSecret` they are on the main port
 * behind the token. A refusal (a missing Role, a missing App permission) exits 1 within seconds with the reason.
 */
import { randomUUID } from 'node:crypto';
import type { V1Pod, V1Service } from '@kubernetes/client-node';
import { AppsV1Api, CoreV1Api, RbacAuthorizationV1Api } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import type { KubeObject } from '../../src/kubernetes/rbac-manifests.js';
import { signWebhookPayload } from '../../src/github/webhooks.js';
import type { Simulator } from '../../src/sim/github/index.js';
import { requireContainerRuntime } from '../support/container.js';
import { startFleetSimulator } from '../support/sim-fleet.js';
import { untilEvery } from '../support/until.js';
import { helmTemplate, requireHelm } from './helm.js';
import { createTestNamespace, requireCluster, useTestCluster, waitFor } from './helpers.js';
import type { KubeletContainer } from './kubelet.js';
import { extraPorts, runPodContainer } from './kubelet.js';
import { mergePatch } from './fixtures.js';
import { applyObjects, untilAuthorized } from './rbac-fixture.js';

const until = untilEvery(250);
const RELEASE = 'rf';
const FULLNAME = 'rf-runner-fleet';
const WEBHOOK_SECRET = 'chart-webhook-secret-5e0c1f7a92b4';
const DASHBOARD_TOKEN = 'chart-dashboard-token-91d2aa6c03';

const available =
  requireCluster('helm install') && requireHelm('helm install') && requireContainerRuntime('helm install');

describe.skipIf(!available)('the chart as installed: the controller runs as its Deployment would', () => {
  const cluster = useTestCluster();
  let sim: Simulator;
  let weakSim: Simulator;
  let home: string;
  let runners: string;
  let core: CoreV1Api;
  const containers: KubeletContainer[] = [];

  /** What a user must give: the App (id, key in the Secret, where GitHub is) and where the runners go. */
  const userValues = (s: Simulator, extra: Record<string, unknown> = {}) => ({
    config: {
      name: 'chart',
      github: {
        url: s.baseUrl,
        apiUrl: s.apiUrl,
        auth: {
          app: { id: s.appId, privateKey: '${file:/etc/runner-fleet/secrets/github-app-private-key}' },
        },
      },
      webhook: { secret: '${env:RUNNER_FLEET_WEBHOOK_SECRET}' },
      scaleSets: [
        {
          name: 'linux',
          scope: { org: 'octo-org' },
          labels: ['linux', 'x64'],
          max: 5,
          provider: { kind: 'kubernetes', namespace: runners, containerMode: 'none' },
        },
      ],
    },
    ...extra,
  });

  function render(values: unknown): KubeObject[] {
    return parseAllDocuments(helmTemplate(values, home, RELEASE))
      .map((d) => d.toJS() as KubeObject | null)
      .filter((o): o is KubeObject => o !== null);
  }

  /** The Deployment's pod as kwok runs it (so a token can be bound to it, as the kubelet's is). */
  async function deploymentPod(): Promise<V1Pod> {
    return waitFor(
      'the Deployment pod',
      async () => {
        const pods = await core.listNamespacedPod({
          namespace: home,
          labelSelector: `app.kubernetes.io/instance=${RELEASE}`,
        });
        const deployment = await cluster
          .kubeConfig()
          .makeApiClient(AppsV1Api)
          .readNamespacedDeployment({ name: FULLNAME, namespace: home });
        const want = Object.entries(deployment.spec!.template.metadata!.annotations ?? {});
        return pods.items.find(
          (p) =>
            p.status?.phase === 'Running' &&
            !p.metadata?.deletionTimestamp &&
            want.every(([key, value]) => p.metadata?.annotations?.[key] === value),
        );
      },
      { timeoutMs: 90_000 },
    );
  }

  async function install(values: unknown): Promise<KubeObject[]> {
    const objects = render(values);
    await applyObjects(cluster.kubeConfig(), objects);
    return objects;
  }

  async function run(pod: V1Pod, simPort: number): Promise<KubeletContainer> {
    const container = await runPodContainer({ cluster, pod, outboundPorts: [simPort] });
    containers.push(container);
    return container;
  }

  beforeAll(async () => {
    core = cluster.kubeConfig().makeApiClient(CoreV1Api);
    home = await createTestNamespace(cluster, 'rf-chart');
    runners = await createTestNamespace(cluster, 'rf-chart-runners');
    sim = await startFleetSimulator();
    weakSim = await startFleetSimulator({ permissions: { actions: 'read', metadata: 'read' } });
    // The Secret the install instructions create (docs/kubernetes.md).
    await core.createNamespacedSecret({
      namespace: home,
      body: {
        metadata: { name: 'runner-fleet' },
        stringData: { 'github-app-private-key': sim.privateKeyPem, 'webhook-secret': WEBHOOK_SECRET },
      },
    });
    await core.createNamespacedSecret({
      namespace: home,
      body: { metadata: { name: 'dashboard' }, stringData: { token: DASHBOARD_TOKEN } },
    });
  });

  afterAll(async () => {
    await Promise.all(containers.map((c) => c.stop(5_000)));
    await Promise.all([sim?.close(), weakSim?.close()]);
    for (const name of [home, runners]) if (name) await core.deleteNamespace({ name }).catch(() => undefined);
  });

  it('defaults plus the App and webhook secret: ready, /webhook on the Service port, dashboard on loopback', async () => {
    const objects = await install(userValues(sim));
    // Rendered with the defaults: no Ingress, a Service for the main port only, the pod hardened.
    expect(objects.filter((o) => o.kind === 'Ingress')).toEqual([]);
    const service = objects.find((o) => o.kind === 'Service') as unknown as V1Service;
    expect(service.spec?.ports).toEqual([{ name: 'http', port: 80, targetPort: 'http', protocol: 'TCP' }]);

    const pod = await deploymentPod();
    const spec = pod.spec!;
    expect(spec.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 1000, fsGroup: 1000 });
    expect(spec.containers[0]!.securityContext).toMatchObject({
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
    });
    expect(spec.containers[0]!.ports).toEqual([{ name: 'http', containerPort: 8080, protocol: 'TCP' }]);

    // kubectl port-forward reaches the pod's loopback: forward the dashboard's port too.
    const controller = await run(extraPorts(pod, [8081]), Number(new URL(sim.baseUrl).port));
    expect(controller.env.RUNNER_FLEET_WEBHOOK_SECRET).toBe(WEBHOOK_SECRET);
    expect(controller.env.POD_NAME).toBe(pod.metadata!.name);
    const main = controller.url(8080);
    await until(
      async () => {
        if (controller.process.exitCode !== null) throw new Error(`exited:\n${controller.output()}`);
        const res = await fetch(`${main}/readyz`).catch(() => undefined);
        await res?.body?.cancel();
        return res?.status === 200;
      },
      120_000,
      'the controller to be ready',
      () => controller.output().slice(-3000),
    );

    const status = async (url: string, init?: RequestInit) => {
      const res = await fetch(url, { ...init, signal: AbortSignal.timeout(10_000) });
      await res.body?.cancel();
      return res.status;
    };
    const body = JSON.stringify({ zen: 'Keep it logically awesome.', hook_id: 1 });
    const headers = (signature: string) => ({
      'content-type': 'application/json',
      'x-github-event': 'ping',
      'x-github-delivery': randomUUID(),
      'x-hub-signature-256': signature,
    });
    expect(
      await status(`${main}/webhook`, {
        method: 'POST',
        body,
        headers: headers(await signWebhookPayload(WEBHOOK_SECRET, body)),
      }),
    ).toBe(200);
    expect(
      await status(`${main}/webhook`, {
        method: 'POST',
        body,
        headers: headers(await signWebhookPayload('not-the-secret', body)),
      }),
    ).toBe(401);
    expect(await status(`${main}/healthz`)).toBe(200);
    expect(await status(`${main}/metrics`)).toBe(200);
    // The API and dashboard are not on the port the Service (and an Ingress) expose...
    expect(await status(`${main}/api/v1/scale-sets`)).toBe(404);
    // ...but on the pod's loopback, without a token.
    expect(await status(`${controller.url(8081)}/api/v1/scale-sets`)).toBe(200);

    // It acts with the chart's ServiceAccount: a job gets a runner pod in the runner namespace.
    sim.setWebhook(`${main}/webhook`, WEBHOOK_SECRET);
    sim.createJobs({ owner: 'octo-org', repo: 'app', labels: ['self-hosted', 'linux', 'x64'] });
    const runnerPod = await waitFor(
      'a runner pod',
      async () => (await core.listNamespacedPod({ namespace: runners })).items[0],
      { timeoutMs: 60_000 },
    );
    expect(runnerPod.metadata?.labels?.['runner-fleet.dev/fleet']).toBe('chart');
    sim.setWebhook(null);

    expect(controller.output()).not.toContain(WEBHOOK_SECRET);
    expect(controller.output()).not.toContain(controller.token);
    expect(await controller.stop()).toEqual({ code: 0, signal: null });
  }, 300_000);

  it('dashboard.tokenSecret: the dashboard and API on the main port, behind the token', async () => {
    await install(userValues(sim, { dashboard: { tokenSecret: { name: 'dashboard', key: 'token' } } }));
    const pod = await deploymentPod();
    const controller = await run(pod, Number(new URL(sim.baseUrl).port));
    const main = controller.url(8080);
    await until(
      async () => {
        if (controller.process.exitCode !== null) throw new Error(`exited:\n${controller.output()}`);
        const res = await fetch(`${main}/readyz`).catch(() => undefined);
        await res?.body?.cancel();
        return res?.status === 200;
      },
      120_000,
      'the controller to be ready',
    );
    const api = (token?: string) =>
      fetch(`${main}/api/v1/scale-sets`, { headers: token ? { authorization: `Bearer ${token}` } : {} }).then(
        async (r) => {
          await r.body?.cancel();
          return r.status;
        },
      );
    expect(await api()).toBe(401);
    expect(await api('wrong')).toBe(401);
    expect(await api(DASHBOARD_TOKEN)).toBe(200);
    expect(controller.output()).not.toContain(DASHBOARD_TOKEN);
    expect(await controller.stop()).toEqual({ code: 0, signal: null });
  }, 300_000);

  it('an Ingress for /webhook only, accepted by the API server', async () => {
    const objects = await install(
      userValues(sim, {
        ingress: {
          enabled: true,
          className: 'alb',
          host: 'runners.example.com',
          annotations: { 'alb.ingress.kubernetes.io/scheme': 'internet-facing' },
        },
      }),
    );
    const ingress = objects.find((o) => o.kind === 'Ingress') as unknown as {
      spec: { rules: { host: string; http: { paths: { path: string; pathType: string }[] } }[] };
    };
    expect(ingress.spec.rules).toHaveLength(1);
    expect(ingress.spec.rules[0]!.host).toBe('runners.example.com');
    expect(ingress.spec.rules[0]!.http.paths.map((p) => [p.path, p.pathType])).toEqual([
      ['/webhook', 'Exact'],
    ]);
  });

  it('refusals exit 1 within seconds with the reason: a missing Role, a missing App permission', async () => {
    // The App lacks organization_self_hosted_runners: refused before anything else.
    await core.patchNamespacedSecret(
      {
        name: 'runner-fleet',
        namespace: home,
        body: { data: { 'github-app-private-key': Buffer.from(weakSim.privateKeyPem).toString('base64') } },
      },
      mergePatch,
    );
    await install(userValues(weakSim, { podAnnotations: { attempt: 'weak-app' } }));
    let began = Date.now();
    const weak = await run(await deploymentPod(), Number(new URL(weakSim.baseUrl).port));
    const weakExit = await Promise.race([
      weak.exited,
      new Promise((r) => setTimeout(() => r('still running'), 60_000)),
    ]);
    expect(weakExit).toEqual({ code: 1, signal: null });
    expect(Date.now() - began).toBeLessThan(30_000);
    expect(weak.output()).toContain('organization_self_hosted_runners: needs write, has none');

    // The right App, but the controller's Role in the runner namespace is gone.
    await core.patchNamespacedSecret(
      {
        name: 'runner-fleet',
        namespace: home,
        body: { data: { 'github-app-private-key': Buffer.from(sim.privateKeyPem).toString('base64') } },
      },
      mergePatch,
    );
    await install(userValues(sim, { podAnnotations: { attempt: 'no-role' } }));
    await cluster
      .kubeConfig()
      .makeApiClient(RbacAuthorizationV1Api)
      .deleteNamespacedRoleBinding({ name: `${FULLNAME}-controller`, namespace: runners });
    await untilAuthorized(
      cluster,
      { namespace: home, name: FULLNAME },
      [{ verb: 'create', apiGroup: '', resource: 'pods', namespace: runners }],
      false,
    );
    began = Date.now();
    const unbound = await run(await deploymentPod(), Number(new URL(sim.baseUrl).port));
    const exit = await Promise.race([
      unbound.exited,
      new Promise((r) => setTimeout(() => r('still running'), 90_000)),
    ]);
    expect(exit).toEqual({ code: 1, signal: null });
    expect(Date.now() - began).toBeLessThan(60_000);
    expect(unbound.output()).toMatch(new RegExp(`create pods in namespace ${runners}`));
  }, 300_000);
});
