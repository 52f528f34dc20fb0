/**
 * End to end on the real control plane: `runner-fleet start` as a child process with the controller
 * ServiceAccount's token (RBAC enforced, no admin), the GitHub simulator, the kwok bridge running an emulated
 * runner in each runner pod, and the volume provisioner. 50 jobs over two scale sets (one in `kubernetes` container
 * mode with an IRSA identity) all complete; every runner pod reads its JIT config through a secretKeyRef and carries
 * no JIT value; afterwards no runner pod, runner Secret or registered runner is left. Then one verb is removed from
 * the controller's Role: `start` refuses to run and names the missing rule.
 */
import type { V1Pod } from '@kubernetes/client-node';
import { CoreV1Api, RbacAuthorizationV1Api } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isRunnerOf } from '../../src/core/names.js';
import { PodInformer } from '../../src/kubernetes/pod-informer.js';
import { ENV_JITCONFIG, RUNNER_CONTAINER } from '../../src/providers/kubernetes/manifests.js';
import type { KubeFleet } from './fleet-fixture.js';
import {
  ControllerChild,
  containsSecret,
  freePort,
  issuedJitConfigs,
  jitRegistrations,
  runnersThatRan,
  setupKubeFleet,
  until,
} from './fleet-fixture.js';
import { requireCluster, useTestCluster } from './helpers.js';
import { untilAuthorized } from './rbac-fixture.js';

const FLEET = 'k8s-e2e';
const ROLE_ARN = 'arn:aws:iam::123456789012:role/ci-runner';
const SETS = [
  { name: 'kplain', labels: ['linux', 'x64', 'kplain'], max: 10, containerMode: 'none' },
  {
    name: 'kkube',
    labels: ['linux', 'x64', 'kkube'],
    max: 10,
    containerMode: 'kubernetes',
    roleArn: ROLE_ARN,
  },
] as const;
const JOBS_PER_SET = 25;

interface SeenPod {
  readonly scaleSet: string;
  readonly serviceAccount: string;
  readonly jitRef: { name?: string; key?: string } | undefined;
  readonly jitInline: boolean;
  /** The whole pod as the API server stored it, to search for leaked secrets. */
  readonly json: string;
}

describe.skipIf(!requireCluster('kubernetes end to end'))('kubernetes end to end', () => {
  const cluster = useTestCluster();
  let kf: KubeFleet;
  let controller: ControllerChild;
  const pods = new Map<string, SeenPod>();
  const informers: PodInformer<SeenPod>[] = [];
  let jobIds: number[] = [];

  beforeAll(async () => {
    kf = await setupKubeFleet(cluster, { fleet: FLEET, sets: SETS });
    for (const [scaleSet, namespace] of kf.namespaces) {
      const informer = new PodInformer<SeenPod>({
        kubeConfig: cluster.kubeConfig(),
        namespace,
        labelSelector: 'runner-fleet.dev/runner',
        project: (pod: V1Pod) => {
          const env = pod.spec?.containers.find((c) => c.name === RUNNER_CONTAINER)?.env ?? [];
          const jit = env.find((e) => e.name === ENV_JITCONFIG);
          return {
            scaleSet,
            serviceAccount: pod.spec?.serviceAccountName ?? '',
            jitRef: jit?.valueFrom?.secretKeyRef
              ? { name: jit.valueFrom.secretKeyRef.name, key: jit.valueFrom.secretKeyRef.key }
              : undefined,
            jitInline: jit?.value !== undefined,
            json: JSON.stringify(pod),
          };
        },
      });
      informer.subscribe(({ type, object }) => {
        if (type !== 'deleted') pods.set(JSON.parse(object.json).metadata.name as string, object);
      });
      await informer.waitForSync();
      informers.push(informer);
    }
  }, 120_000);

  afterAll(async () => {
    if (controller?.running) await controller.kill();
    await Promise.all(informers.map((i) => i.stop()));
    await kf?.cleanup();
  }, 60_000);

  it('runs 50 jobs over two scale sets through `runner-fleet start` with least-privilege RBAC', async () => {
    const port = await freePort();
    const config = kf.writeConfig(port, 'fleet.db');
    kf.sim.setWebhook(`http://127.0.0.1:${port}/webhook`);
    controller = new ControllerChild(['--config', config, '--kubeconfig', kf.kubeconfigPath], port);
    await controller.waitReady();

    const started = Date.now();
    for (const set of SETS) {
      const created = kf.sim.createJobs({
        owner: 'octo-org',
        repo: 'app',
        labels: [...set.labels],
        durationMs: 1_000,
        count: JOBS_PER_SET,
      });
      jobIds.push(...created.map((j) => j.id));
    }
    jobIds = [...new Set(jobIds)];
    expect(jobIds).toHaveLength(2 * JOBS_PER_SET);
    await until(
      () => jobIds.every((id) => kf.sim.job(id)?.status === 'completed'),
      180_000,
      'all 50 jobs to complete',
      () => ({
        completed: jobIds.filter((id) => kf.sim.job(id)?.status === 'completed').length,
        bridge: kf.bridge.stats,
        controllerErr: controller.stderr.text().slice(-1000),
      }),
    );
    console.log(
      `k8s e2e: 50 jobs completed in ${Date.now() - started} ms; bridge ${JSON.stringify(kf.bridge.stats)}`,
    );
    // Every runner ran in its pod; the API accepted every exit the bridge wrote (as a kubelet's would be).
    expect(kf.bridge.stats.started).toBe(2 * JOBS_PER_SET);
    expect(kf.bridge.stats.statusErrors).toBe(0);
    const jobs = jobIds.map((id) => kf.sim.job(id)!);
    expect(jobs.filter((j) => j.conclusion !== 'success')).toEqual([]);
    // Each job ran on a runner of the scale set its labels route to, and each runner ran one job.
    for (const set of SETS) {
      expect(runnersThatRan(kf.sim, set.name).size).toBe(JOBS_PER_SET);
      expect(jitRegistrations(kf.sim, set.name)).toHaveLength(JOBS_PER_SET);
    }
  }, 240_000);

  it('gave every runner pod its JIT config through a secretKeyRef, never inline, and the kube set its identity', async () => {
    expect(pods.size).toBe(2 * JOBS_PER_SET);
    const jitConfigs = issuedJitConfigs(kf.sim);
    expect(jitConfigs).toHaveLength(2 * JOBS_PER_SET);
    for (const [name, pod] of pods) {
      expect(pod.jitInline, name).toBe(false);
      expect(pod.jitRef, name).toEqual({ name, key: expect.any(String) });
      expect(containsSecret(pod.json, jitConfigs), `${name} holds a JIT config`).toBe(false);
    }
    const kube = [...pods.values()].filter((p) => p.scaleSet === 'kkube');
    expect(new Set(kube.map((p) => p.serviceAccount))).toEqual(new Set(['kkube-runner']));
    const sa = await cluster
      .kubeConfig()
      .makeApiClient(CoreV1Api)
      .readNamespacedServiceAccount({ name: 'kkube-runner', namespace: kf.namespaces.get('kkube')! });
    expect(sa.metadata?.annotations?.['eks.amazonaws.com/role-arn']).toBe(ROLE_ARN);
  });

  it('leaves no runner pod, runner Secret or registered runner behind, and stops cleanly', async () => {
    const core = cluster.kubeConfig().makeApiClient(CoreV1Api);
    const count = async () => {
      let podCount = 0;
      let secretCount = 0;
      for (const namespace of kf.namespaces.values()) {
        podCount += (await core.listNamespacedPod({ namespace, labelSelector: 'runner-fleet.dev/runner' }))
          .items.length;
        secretCount += (
          await core.listNamespacedSecret({ namespace, labelSelector: 'runner-fleet.dev/runner' })
        ).items.length;
      }
      const runners = kf.sim.runners().filter((r) => SETS.some((s) => isRunnerOf(s.name, r.name))).length;
      return { pods: podCount, secrets: secretCount, runners };
    };
    let last = await count();
    await until(
      async () => {
        last = await count();
        return last.pods === 0 && last.secrets === 0 && last.runners === 0;
      },
      90_000,
      'no runner pod, Secret or registration left',
      () => last,
    );
    expect(await controller.stop()).toBe(0);
    const secrets = [...issuedJitConfigs(kf.sim), kf.sim.privateKeyPem, kf.sim.webhookSecret];
    expect(containsSecret(controller.stdout.text(), secrets), 'a secret in the controller log').toBe(false);
    expect(containsSecret(controller.stderr.text(), secrets), 'a secret on stderr').toBe(false);
  }, 120_000);

  it('refuses to start when one verb is missing from its Role, and names that rule', async () => {
    const rbac = cluster.kubeConfig().makeApiClient(RbacAuthorizationV1Api);
    const namespace = kf.namespaces.get('kplain')!;
    const role = await rbac.readNamespacedRole({ name: 'runner-fleet-controller', namespace });
    const pods = role.rules?.find((r) => r.resources?.includes('pods') && r.verbs.includes('delete'));
    expect(pods).toBeDefined();
    pods!.verbs = pods!.verbs.filter((v) => v !== 'delete');
    await rbac.replaceNamespacedRole({ name: 'runner-fleet-controller', namespace, body: role });
    await untilAuthorized(
      cluster,
      kf.controller,
      [{ verb: 'delete', apiGroup: '', resource: 'pods', namespace }],
      false,
    );

    const port = await freePort();
    const refused = new ControllerChild(
      ['--config', kf.writeConfig(port, 'refused.db'), '--kubeconfig', kf.kubeconfigPath],
      port,
    );
    expect(await refused.exited).toBe(1);
    const err = refused.stderr.text();
    expect(err).toContain('refusing to start');
    expect(err).toContain(`delete pods in namespace ${namespace}`);
    expect(err).toMatch(/kind: Role\n/);
    // Only that rule is missing: nothing in the other namespace is reported.
    expect(err).not.toContain(`in namespace ${kf.namespaces.get('kkube')}`);
    expect(refused.stdout.text()).not.toContain('controller ready');
  }, 60_000);
});
