/**
 * The Kubernetes objects of a scale set and of each runner, built from configuration alone (pure functions):
 * runner pod, its Secret, the runner ServiceAccount, and in kubernetes container mode the container-hook pod
 * template (ConfigMap) and the RoleBinding to the container-hooks Role.
 */
import type {
  V1ConfigMap,
  V1Container,
  V1EnvVar,
  V1Pod,
  V1PodSpec,
  V1PodTemplateSpec,
  V1RoleBinding,
  V1Secret,
  V1ServiceAccount,
  V1Volume,
  V1VolumeMount,
} from '@kubernetes/client-node';
import { stringify } from 'yaml';
import type { IdentityConfig } from '../../core/fleet-config.js';
import {
  hookTemplateConfigMapName,
  hooksRoleBindingName,
  LABEL_FLEET,
  LABEL_RUNNER,
  LABEL_SCALE_SET,
  runnerLabels,
  runnerServiceAccountName,
  scaleSetLabels,
  SECRET_KEY_JITCONFIG,
  SECRET_KEY_TOKEN,
} from '../../kubernetes/labels.js';
import { HOOKS_ROLE_NAME } from '../../kubernetes/rbac-rules.js';
import type { InstanceSpec, Registration } from '../provider.js';
import { identityPodLabels, identityServiceAccountAnnotations } from './identity.js';
import { mergePodTemplate } from './merge.js';
import type { KubernetesProviderConfig } from './schema.js';

/** actions/runner release the default image is pinned to (includes the container hooks under /home/runner/k8s). */
export const RUNNER_VERSION = '2.328.0';
export const RUNNER_IMAGE = `ghcr.io/actions/actions-runner:${RUNNER_VERSION}`;
export const DIND_IMAGE = 'docker:27.5.1-dind';

export const RUNNER_CONTAINER = 'runner';
export const DIND_CONTAINER = 'dind';
export const ENV_JITCONFIG = 'ACTIONS_RUNNER_INPUT_JITCONFIG';
export const ENV_TOKEN = 'ACTIONS_RUNNER_INPUT_TOKEN';
export const HOOK_TEMPLATE_KEY = 'job-template.yaml';
export const HOOK_TEMPLATE_DIR = '/home/runner/hook-template';
export const WORK_DIR = '/home/runner/_work';
export const WORK_VOLUME = 'work';
export const DEFAULT_WORK_VOLUME_SIZE = '10Gi';

/** Everything the builders need about one scale set, resolved once. */
export interface ScaleSetPlan {
  readonly fleet: string;
  readonly scaleSet: string;
  readonly namespace: string;
  readonly containerMode: 'none' | 'dind' | 'kubernetes';
  readonly serviceAccountName: string;
  readonly createServiceAccount: boolean;
  readonly identity: IdentityConfig | undefined;
  readonly config: KubernetesProviderConfig;
  /** dind as a native sidecar (init container with restartPolicy Always): Kubernetes 1.29 and later. */
  readonly nativeSidecars: boolean;
}

export function planScaleSet(input: {
  fleet: string;
  scaleSet: string;
  identity: IdentityConfig | undefined;
  config: KubernetesProviderConfig;
  nativeSidecars?: boolean;
}): ScaleSetPlan {
  const sa = input.config.serviceAccount;
  return {
    fleet: input.fleet,
    scaleSet: input.scaleSet,
    namespace: input.config.namespace,
    containerMode: input.config.containerMode,
    serviceAccountName: 'name' in sa ? sa.name : runnerServiceAccountName(input.scaleSet),
    createServiceAccount: !('name' in sa),
    identity: input.identity,
    config: input.config,
    nativeSidecars: input.nativeSidecars ?? false,
  };
}

function registrationEnv(spec: InstanceSpec): V1EnvVar[] {
  const fromSecret = (name: string, key: string): V1EnvVar => ({
    name,
    valueFrom: { secretKeyRef: { name: spec.name, key } },
  });
  const r = spec.registration;
  if (r.mode === 'jit') return [fromSecret(ENV_JITCONFIG, SECRET_KEY_JITCONFIG)];
  // config.sh reads any of its arguments from ACTIONS_RUNNER_INPUT_<NAME>, so the token never reaches argv.
  return [
    { name: 'ACTIONS_RUNNER_INPUT_URL', value: r.url },
    fromSecret(ENV_TOKEN, SECRET_KEY_TOKEN),
    { name: 'ACTIONS_RUNNER_INPUT_NAME', value: spec.name },
    { name: 'ACTIONS_RUNNER_INPUT_LABELS', value: r.labels.join(',') },
    { name: 'ACTIONS_RUNNER_INPUT_RUNNERGROUP', value: r.runnerGroup },
    { name: 'ACTIONS_RUNNER_INPUT_WORK', value: '_work' },
  ];
}

function runnerCommand(registration: Registration): string[] {
  if (registration.mode === 'jit') return ['/home/runner/run.sh'];
  const flags = [
    '--unattended',
    '--no-default-labels',
    '--disableupdate',
    ...(registration.ephemeral ? ['--ephemeral'] : []),
  ];
  return ['/bin/bash', '-c', `/home/runner/config.sh ${flags.join(' ')} && exec /home/runner/run.sh`];
}

function workVolume(plan: ScaleSetPlan): V1Volume {
  const wv = plan.config.workVolume;
  if (!wv && plan.containerMode !== 'kubernetes') return { name: WORK_VOLUME, emptyDir: {} };
  return {
    name: WORK_VOLUME,
    ephemeral: {
      volumeClaimTemplate: {
        metadata: { labels: scaleSetLabels(plan.fleet, plan.scaleSet) },
        spec: {
          accessModes: ['ReadWriteOnce'],
          ...(wv?.storageClassName ? { storageClassName: wv.storageClassName } : {}),
          resources: { requests: { storage: wv?.size ?? DEFAULT_WORK_VOLUME_SIZE } },
        },
      },
    },
  };
}

/** Pod labels from config and identity (shared by runner pods and job pods). */
function extraPodLabels(plan: ScaleSetPlan): Record<string, string> {
  return { ...(plan.config.podLabels ?? {}), ...identityPodLabels(plan.identity) };
}

/** runner-fleet's defaults for a scale set's runner pods, before the configured template is merged over them. */
export function defaultPodTemplate(plan: ScaleSetPlan, spec: InstanceSpec): V1PodTemplateSpec {
  const mounts: V1VolumeMount[] = [];
  const volumes: V1Volume[] = [];
  const env: V1EnvVar[] = [...registrationEnv(spec)];
  const initContainers: V1Container[] = [];
  const sidecars: V1Container[] = [];
  const image = plan.config.image ?? RUNNER_IMAGE;
  const mode = plan.containerMode;

  if (mode !== 'none' || plan.config.workVolume) {
    volumes.push(workVolume(plan));
    mounts.push({ name: WORK_VOLUME, mountPath: WORK_DIR });
  }
  if (mode === 'dind') {
    volumes.push({ name: 'dind-sock', emptyDir: {} }, { name: 'dind-externals', emptyDir: {} });
    mounts.push({ name: 'dind-sock', mountPath: '/var/run' });
    env.push({ name: 'DOCKER_HOST', value: 'unix:///var/run/docker.sock' });
    // Job containers bind-mount the runner's externals (node for JavaScript actions) through the docker daemon,
    // so the daemon's container needs them at the same path.
    initContainers.push({
      name: 'init-dind-externals',
      image,
      command: ['cp', '-r', '/home/runner/externals/.', '/home/runner/tmpDir/'],
      volumeMounts: [{ name: 'dind-externals', mountPath: '/home/runner/tmpDir' }],
    });
    const dind: V1Container = {
      name: DIND_CONTAINER,
      image: DIND_IMAGE,
      args: ['dockerd', '--host=unix:///var/run/docker.sock', '--group=$(DOCKER_GROUP_GID)'],
      env: [{ name: 'DOCKER_GROUP_GID', value: '123' }],
      securityContext: { privileged: true },
      volumeMounts: [
        { name: WORK_VOLUME, mountPath: WORK_DIR },
        { name: 'dind-sock', mountPath: '/var/run' },
        { name: 'dind-externals', mountPath: '/home/runner/externals' },
      ],
    };
    if (plan.nativeSidecars) {
      // A native sidecar starts before the runner, is ready once dockerd answers, and does not keep the pod
      // alive after the runner exits.
      initContainers.push({
        ...dind,
        restartPolicy: 'Always',
        startupProbe: { exec: { command: ['docker', 'info'] }, periodSeconds: 1, failureThreshold: 120 },
      });
    } else {
      sidecars.push(dind);
    }
  }
  if (mode === 'kubernetes') {
    env.push(
      { name: 'ACTIONS_RUNNER_CONTAINER_HOOKS', value: '/home/runner/k8s/index.js' },
      { name: 'ACTIONS_RUNNER_POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
      { name: 'ACTIONS_RUNNER_REQUIRE_JOB_CONTAINER', value: 'true' },
      // The ephemeral volume controller names the claim <pod>-<volume>.
      { name: 'ACTIONS_RUNNER_CLAIM_NAME', value: `${spec.name}-${WORK_VOLUME}` },
      { name: 'ACTIONS_RUNNER_CONTAINER_HOOK_TEMPLATE', value: `${HOOK_TEMPLATE_DIR}/${HOOK_TEMPLATE_KEY}` },
    );
    volumes.push({ name: 'hook-template', configMap: { name: hookTemplateConfigMapName(plan.scaleSet) } });
    mounts.push({ name: 'hook-template', mountPath: HOOK_TEMPLATE_DIR, readOnly: true });
  }

  const runner: V1Container = {
    name: RUNNER_CONTAINER,
    image,
    command: runnerCommand(spec.registration),
    env,
    ...(mounts.length > 0 ? { volumeMounts: mounts } : {}),
  };
  const podSpec: V1PodSpec = {
    restartPolicy: 'Never',
    serviceAccountName: plan.serviceAccountName,
    // Only kubernetes-mode runners talk to the API server; the others get no token at all.
    automountServiceAccountToken: mode === 'kubernetes',
    enableServiceLinks: false,
    ...(initContainers.length > 0 ? { initContainers } : {}),
    containers: [runner, ...sidecars],
    ...(volumes.length > 0 ? { volumes } : {}),
  };
  return {
    metadata: {
      labels: extraPodLabels(plan),
      annotations: { ...(plan.config.podAnnotations ?? {}) },
    },
    spec: podSpec,
  };
}

/** Environment variables runner-fleet owns on the runner container: a template may not override them. */
const RESERVED_ENV = new Set([ENV_JITCONFIG, ENV_TOKEN]);

/** The runner pod: defaults, then the configured template, then what must hold whatever the template says. */
export function buildRunnerPod(plan: ScaleSetPlan, spec: InstanceSpec): V1Pod {
  const merged = mergePodTemplate(defaultPodTemplate(plan, spec), plan.config.template);
  const podSpec = merged.spec as V1PodSpec;
  // Not negotiable: a runner pod runs once, and its ServiceAccount is the one carrying the identity.
  podSpec.restartPolicy = 'Never';
  podSpec.serviceAccountName = plan.serviceAccountName;
  const secretEnv = registrationEnv(spec).filter((e) => RESERVED_ENV.has(e.name));
  for (const container of podSpec.containers) {
    if (container.name !== RUNNER_CONTAINER) continue;
    // The secret channel is not configurable: always the secretKeyRef, never an inline value.
    const env = (container.env ?? []).filter((e) => !RESERVED_ENV.has(e.name));
    container.env = [...secretEnv, ...env];
  }
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      ...merged.metadata,
      name: spec.name,
      namespace: plan.namespace,
      labels: { ...(merged.metadata?.labels ?? {}), ...runnerLabels(spec.fleet, spec.scaleSet, spec.name) },
    },
    spec: podSpec,
  };
}

/** The runner's Secret, owned by its pod so the garbage collector deletes it with the pod. */
export function buildRunnerSecret(
  plan: ScaleSetPlan,
  spec: InstanceSpec,
  owner: { readonly name: string; readonly uid: string },
): V1Secret {
  const r = spec.registration;
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: {
      name: spec.name,
      namespace: plan.namespace,
      labels: runnerLabels(spec.fleet, spec.scaleSet, spec.name),
      ownerReferences: [{ apiVersion: 'v1', kind: 'Pod', name: owner.name, uid: owner.uid }],
    },
    type: 'Opaque',
    // Immutable: the kubelet need not watch it, which matters with thousands of runners.
    immutable: true,
    stringData: r.mode === 'jit' ? { [SECRET_KEY_JITCONFIG]: r.jitConfig } : { [SECRET_KEY_TOKEN]: r.token },
  };
}

export function buildServiceAccount(plan: ScaleSetPlan): V1ServiceAccount {
  return {
    apiVersion: 'v1',
    kind: 'ServiceAccount',
    metadata: {
      name: plan.serviceAccountName,
      namespace: plan.namespace,
      labels: scaleSetLabels(plan.fleet, plan.scaleSet),
      annotations: desiredServiceAccountAnnotations(plan),
    },
  };
}

/** Annotations runner-fleet keeps on a ServiceAccount it created: configured extras plus the identity ones. */
export function desiredServiceAccountAnnotations(plan: ScaleSetPlan): Record<string, string> {
  return {
    ...(plan.config.serviceAccountAnnotations ?? {}),
    ...identityServiceAccountAnnotations(plan.identity),
  };
}

/**
 * The PodTemplateSpec actions/runner-container-hooks merges into every job pod: the runner's ServiceAccount (so
 * job pods get the cloud identity; arc#2754), the identity labels and the configured pod labels and annotations.
 * Job pods do not mount a Kubernetes token: they get the cloud identity, not the runner's rights in the cluster.
 */
export function buildHookTemplate(plan: ScaleSetPlan): V1PodTemplateSpec {
  return {
    metadata: {
      labels: { ...extraPodLabels(plan) },
      annotations: { ...(plan.config.podAnnotations ?? {}) },
    },
    spec: {
      serviceAccountName: plan.serviceAccountName,
      automountServiceAccountToken: false,
    } as V1PodSpec,
  };
}

export function buildHookConfigMap(plan: ScaleSetPlan): V1ConfigMap {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      name: hookTemplateConfigMapName(plan.scaleSet),
      namespace: plan.namespace,
      labels: scaleSetLabels(plan.fleet, plan.scaleSet),
    },
    data: { [HOOK_TEMPLATE_KEY]: stringify(buildHookTemplate(plan)) },
  };
}

export function buildHooksRoleBinding(plan: ScaleSetPlan): V1RoleBinding {
  return {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'RoleBinding',
    metadata: {
      name: hooksRoleBindingName(plan.scaleSet),
      namespace: plan.namespace,
      labels: scaleSetLabels(plan.fleet, plan.scaleSet),
    },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: HOOKS_ROLE_NAME },
    subjects: [{ kind: 'ServiceAccount', name: plan.serviceAccountName, namespace: plan.namespace }],
  };
}

/** Selector of one fleet's runner pods (job pods started by container hooks carry no runner label). */
export function runnerPodSelector(fleet: string, scaleSet?: string): string {
  return `${LABEL_FLEET}=${fleet},${LABEL_RUNNER}${scaleSet === undefined ? '' : `,${LABEL_SCALE_SET}=${scaleSet}`}`;
}
