import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import type { V1Container, V1Pod } from '@kubernetes/client-node';
import type { IdentityConfig } from '../../core/fleet-config.js';
import { HOOKS_ROLE_NAME } from '../../kubernetes/rbac-rules.js';
import type { InstanceSpec } from '../provider.js';
import {
  buildHookConfigMap,
  buildHooksRoleBinding,
  buildHookTemplate,
  buildRunnerPod,
  buildRunnerSecret,
  buildServiceAccount,
  HOOK_TEMPLATE_KEY,
  planScaleSet,
  RUNNER_IMAGE,
  runnerPodSelector,
} from './manifests.js';
import { kubernetesProviderSchema } from './schema.js';
import { registrationFromPod } from '../../sim/kube-bridge/runner-container.js';

const JIT = 'eyJzZWNyZXQiOiJqaXQtY29uZmlnLXZhbHVlIn0=';
const TOKEN = 'AABBCCDDEEFF-registration-token';

function plan(provider: Record<string, unknown>, identity?: IdentityConfig, nativeSidecars = false) {
  return planScaleSet({
    fleet: 'fleet-a',
    scaleSet: 'linux',
    identity,
    config: kubernetesProviderSchema.parse({ kind: 'kubernetes', namespace: 'ci', ...provider }),
    nativeSidecars,
  });
}

const jitSpec: InstanceSpec = {
  name: 'linux-abc12',
  fleet: 'fleet-a',
  scaleSet: 'linux',
  registration: { mode: 'jit', jitConfig: JIT },
};
const tokenSpec: InstanceSpec = {
  ...jitSpec,
  registration: {
    mode: 'token',
    url: 'https://github.com/octo-org',
    token: TOKEN,
    labels: ['linux', 'x64'],
    runnerGroup: 'Default',
    ephemeral: true,
  },
};

const runnerOf = (pod: V1Pod): V1Container => pod.spec!.containers.find((c) => c.name === 'runner')!;
const envOf = (c: V1Container, name: string) => c.env?.find((e) => e.name === name);

describe('runner pod', () => {
  it('has the defaults: pinned image, run.sh, restartPolicy Never, ownership labels, no token in none mode', () => {
    const pod = buildRunnerPod(plan({}), jitSpec);
    expect(pod.metadata).toMatchObject({
      name: 'linux-abc12',
      namespace: 'ci',
      labels: {
        'runner-fleet.dev/fleet': 'fleet-a',
        'runner-fleet.dev/scale-set': 'linux',
        'runner-fleet.dev/runner': 'linux-abc12',
        'app.kubernetes.io/managed-by': 'runner-fleet',
      },
    });
    expect(RUNNER_IMAGE).toMatch(/^ghcr\.io\/actions\/actions-runner:\d+\.\d+\.\d+$/);
    const runner = runnerOf(pod);
    expect(runner.image).toBe(RUNNER_IMAGE);
    expect(runner.command).toEqual(['/home/runner/run.sh']);
    expect(pod.spec).toMatchObject({
      restartPolicy: 'Never',
      serviceAccountName: 'linux-runner',
      automountServiceAccountToken: false,
    });
    expect(pod.spec?.volumes).toBeUndefined();
  });

  it('references the JIT config through a secretKeyRef and never carries it inline', () => {
    const pod = buildRunnerPod(plan({}), jitSpec);
    expect(envOf(runnerOf(pod), 'ACTIONS_RUNNER_INPUT_JITCONFIG')).toEqual({
      name: 'ACTIONS_RUNNER_INPUT_JITCONFIG',
      valueFrom: { secretKeyRef: { name: 'linux-abc12', key: 'jitconfig' } },
    });
    expect(JSON.stringify(pod)).not.toContain(JIT);
  });

  it('token mode: config.sh reads url, name, labels and group from env, the token from the Secret', () => {
    const pod = buildRunnerPod(plan({}), tokenSpec);
    const runner = runnerOf(pod);
    expect(JSON.stringify(pod)).not.toContain(TOKEN);
    expect(envOf(runner, 'ACTIONS_RUNNER_INPUT_TOKEN')?.valueFrom?.secretKeyRef).toEqual({
      name: 'linux-abc12',
      key: 'token',
    });
    expect(envOf(runner, 'ACTIONS_RUNNER_INPUT_URL')?.value).toBe('https://github.com/octo-org');
    expect(envOf(runner, 'ACTIONS_RUNNER_INPUT_LABELS')?.value).toBe('linux,x64');
    expect(runner.command?.join(' ')).toMatch(/config\.sh .*--ephemeral.* && exec \/home\/runner\/run\.sh/);
  });

  it('a template cannot replace the secret channel, the restart policy or the ServiceAccount', () => {
    const pod = buildRunnerPod(
      plan({
        template: {
          spec: {
            restartPolicy: 'Always',
            serviceAccountName: 'other',
            containers: [
              { name: 'runner', env: [{ name: 'ACTIONS_RUNNER_INPUT_JITCONFIG', value: 'inline' }] },
            ],
          },
        },
      }),
      jitSpec,
    );
    expect(pod.spec?.restartPolicy).toBe('Never');
    expect(pod.spec?.serviceAccountName).toBe('linux-runner');
    const jit = runnerOf(pod).env?.filter((e) => e.name === 'ACTIONS_RUNNER_INPUT_JITCONFIG');
    expect(jit).toEqual([
      {
        name: 'ACTIONS_RUNNER_INPUT_JITCONFIG',
        valueFrom: { secretKeyRef: { name: 'linux-abc12', key: 'jitconfig' } },
      },
    ]);
  });

  it('merges resources, nodeSelector, tolerations, priorityClassName, labels and annotations', () => {
    const pod = buildRunnerPod(
      plan({
        image: 'registry.example/runner:2',
        podLabels: { team: 'ci' },
        podAnnotations: { 'cost-center': '42' },
        template: {
          metadata: { labels: { tier: 'build' }, annotations: { note: 'x' } },
          spec: {
            nodeSelector: { pool: 'ci' },
            tolerations: [{ key: 'ci', operator: 'Exists', effect: 'NoSchedule' }],
            priorityClassName: 'ci-high',
            containers: [
              { name: 'runner', resources: { requests: { cpu: '2' }, limits: { memory: '4Gi' } } },
            ],
          },
        },
      }),
      jitSpec,
    );
    expect(pod.metadata?.labels).toMatchObject({
      team: 'ci',
      tier: 'build',
      'runner-fleet.dev/runner': 'linux-abc12',
    });
    expect(pod.metadata?.annotations).toEqual({ 'cost-center': '42', note: 'x' });
    expect(pod.spec).toMatchObject({
      nodeSelector: { pool: 'ci' },
      tolerations: [{ key: 'ci', operator: 'Exists', effect: 'NoSchedule' }],
      priorityClassName: 'ci-high',
    });
    expect(runnerOf(pod).image).toBe('registry.example/runner:2');
    expect(runnerOf(pod).resources).toEqual({ requests: { cpu: '2' }, limits: { memory: '4Gi' } });
  });

  it('ownership labels win over template labels', () => {
    const pod = buildRunnerPod(
      plan({ template: { metadata: { labels: { 'runner-fleet.dev/fleet': 'evil' } } } }),
      jitSpec,
    );
    expect(pod.metadata?.labels?.['runner-fleet.dev/fleet']).toBe('fleet-a');
  });
});

describe('dind mode', () => {
  it('runs docker:dind privileged beside the runner with a shared socket (plain sidecar before 1.29)', () => {
    const pod = buildRunnerPod(plan({ containerMode: 'dind' }), jitSpec);
    const dind = pod.spec?.containers.find((c) => c.name === 'dind');
    expect(dind?.securityContext?.privileged).toBe(true);
    expect(dind?.image).toMatch(/^docker:.*dind$/);
    expect(dind?.volumeMounts?.map((m) => m.mountPath)).toContain('/var/run');
    expect(runnerOf(pod).volumeMounts?.map((m) => m.mountPath)).toEqual(['/home/runner/_work', '/var/run']);
    expect(envOf(runnerOf(pod), 'DOCKER_HOST')?.value).toBe('unix:///var/run/docker.sock');
    expect(pod.spec?.initContainers?.map((c) => c.name)).toEqual(['init-dind-externals']);
  });

  it('is a native sidecar (init container, restartPolicy Always) on 1.29+', () => {
    const pod = buildRunnerPod(plan({ containerMode: 'dind' }, undefined, true), jitSpec);
    expect(pod.spec?.containers.map((c) => c.name)).toEqual(['runner']);
    const dind = pod.spec?.initContainers?.find((c) => c.name === 'dind');
    expect(dind?.restartPolicy).toBe('Always');
    expect(dind?.securityContext?.privileged).toBe(true);
    expect(dind?.startupProbe?.exec?.command).toEqual(['docker', 'info']);
  });
});

describe('kubernetes container mode', () => {
  const kube = plan(
    {
      containerMode: 'kubernetes',
      workVolume: { storageClassName: 'fast', size: '20Gi' },
      podLabels: { team: 'ci' },
    },
    { azure: { clientId: '00000000-0000-0000-0000-000000000001' } },
  );

  it('sets the container-hook env, mounts the hook template and an ephemeral work claim', () => {
    const pod = buildRunnerPod(kube, jitSpec);
    const runner = runnerOf(pod);
    expect(envOf(runner, 'ACTIONS_RUNNER_CONTAINER_HOOKS')?.value).toBe('/home/runner/k8s/index.js');
    expect(envOf(runner, 'ACTIONS_RUNNER_POD_NAME')?.valueFrom?.fieldRef?.fieldPath).toBe('metadata.name');
    expect(envOf(runner, 'ACTIONS_RUNNER_REQUIRE_JOB_CONTAINER')?.value).toBe('true');
    expect(envOf(runner, 'ACTIONS_RUNNER_CLAIM_NAME')?.value).toBe('linux-abc12-work');
    expect(envOf(runner, 'ACTIONS_RUNNER_CONTAINER_HOOK_TEMPLATE')?.value).toBe(
      `/home/runner/hook-template/${HOOK_TEMPLATE_KEY}`,
    );
    expect(pod.spec?.automountServiceAccountToken).toBe(true);
    const work = pod.spec?.volumes?.find((v) => v.name === 'work');
    expect(work?.ephemeral?.volumeClaimTemplate?.spec).toEqual({
      accessModes: ['ReadWriteOnce'],
      storageClassName: 'fast',
      resources: { requests: { storage: '20Gi' } },
    });
    expect(pod.spec?.volumes?.find((v) => v.name === 'hook-template')?.configMap?.name).toBe(
      'linux-hook-template',
    );
    expect(pod.metadata?.labels?.['azure.workload.identity/use']).toBe('true');
  });

  it('the hook template gives job pods the runner ServiceAccount, identity label and pod labels, and no token', () => {
    const template = buildHookTemplate(kube);
    expect(template.spec?.serviceAccountName).toBe('linux-runner');
    expect(template.spec?.automountServiceAccountToken).toBe(false);
    expect(template.metadata?.labels).toEqual({ team: 'ci', 'azure.workload.identity/use': 'true' });
    // Job pods must not look like runner pods to the informer.
    expect(template.metadata?.labels?.['runner-fleet.dev/runner']).toBeUndefined();
    const cm = buildHookConfigMap(kube);
    expect(cm.metadata?.name).toBe('linux-hook-template');
    expect(parse(cm.data?.[HOOK_TEMPLATE_KEY] as string)).toEqual(template);
  });

  it('binds the runner ServiceAccount to the container-hooks Role', () => {
    const rb = buildHooksRoleBinding(kube);
    expect(rb.roleRef).toEqual({
      apiGroup: 'rbac.authorization.k8s.io',
      kind: 'Role',
      name: HOOKS_ROLE_NAME,
    });
    expect(rb.subjects).toEqual([{ kind: 'ServiceAccount', name: 'linux-runner', namespace: 'ci' }]);
  });
});

describe('secret and service account', () => {
  it('the Secret is owned by the pod, immutable, and holds only the registration secret', () => {
    const secret = buildRunnerSecret(plan({}), jitSpec, { name: 'linux-abc12', uid: 'uid-1' });
    expect(secret.metadata?.ownerReferences).toEqual([
      { apiVersion: 'v1', kind: 'Pod', name: 'linux-abc12', uid: 'uid-1' },
    ]);
    expect(secret.immutable).toBe(true);
    expect(secret.stringData).toEqual({ jitconfig: JIT });
    expect(buildRunnerSecret(plan({}), tokenSpec, { name: 'linux-abc12', uid: 'u' }).stringData).toEqual({
      token: TOKEN,
    });
  });

  it.each([
    [
      { aws: { roleArn: 'arn:aws:iam::123456789012:role/ci' } },
      { 'eks.amazonaws.com/role-arn': 'arn:aws:iam::123456789012:role/ci' },
    ],
    [
      { gcp: { serviceAccount: 'ci@p.iam.gserviceaccount.com' } },
      { 'iam.gke.io/gcp-service-account': 'ci@p.iam.gserviceaccount.com' },
    ],
    [
      { azure: { clientId: '00000000-0000-0000-0000-000000000001' } },
      { 'azure.workload.identity/client-id': '00000000-0000-0000-0000-000000000001' },
    ],
  ])('identity %j becomes ServiceAccount annotations', (identity, annotations) => {
    const sa = buildServiceAccount(plan({ serviceAccountAnnotations: { extra: 'yes' } }, identity));
    expect(sa.metadata?.name).toBe('linux-runner');
    expect(sa.metadata?.annotations).toEqual({ extra: 'yes', ...annotations });
  });

  it('an existing ServiceAccount is used by name', () => {
    const p = plan({ serviceAccount: { name: 'shared-sa' } });
    expect(p.createServiceAccount).toBe(false);
    expect(buildRunnerPod(p, jitSpec).spec?.serviceAccountName).toBe('shared-sa');
  });
});

describe('the pod as a kubelet reads it', () => {
  it('gives the runner container its registration, from env and the Secret', () => {
    const p = plan({});
    for (const spec of [jitSpec, tokenSpec]) {
      const pod = buildRunnerPod(p, spec);
      const secret = buildRunnerSecret(p, spec, { name: spec.name, uid: 'u' });
      const asServed = {
        ...secret,
        data: Object.fromEntries(
          Object.entries(secret.stringData ?? {}).map(([k, v]) => [k, Buffer.from(v).toString('base64')]),
        ),
        stringData: undefined,
      };
      expect(registrationFromPod(pod, asServed)).toEqual(spec.registration);
    }
    expect(registrationFromPod(buildRunnerPod(p, jitSpec), undefined)).toBeUndefined();
  });

  it('selects runner pods of a fleet, optionally of one scale set', () => {
    expect(runnerPodSelector('f')).toBe('runner-fleet.dev/fleet=f,runner-fleet.dev/runner');
    expect(runnerPodSelector('f', 's')).toBe(
      'runner-fleet.dev/fleet=f,runner-fleet.dev/runner,runner-fleet.dev/scale-set=s',
    );
  });
});
