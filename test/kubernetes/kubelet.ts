/**
 * The kubelet's part for one container of a pod the API server stored, on the test control plane (whose kwok nodes
 * run nothing): what the container would get, built from the pod spec and the API objects it names, then run as a
 * container (test/support/container.ts) in a network namespace of its own.
 *
 * - command and args over the image's ENTRYPOINT and CMD (read from deploy/Dockerfile), its working directory and
 *   ENV; the image's filesystem is the repository (dist/, node_modules) at /app, read-only;
 * - env: values, fieldRef (metadata.name, metadata.namespace), secretKeyRef and configMapKeyRef read from the API,
 *   plus KUBERNETES_SERVICE_HOST/PORT;
 * - volumes: configMap and secret volumes written from the API objects (items, defaultMode, the pod's fsGroup as
 *   the files' group, read-only), emptyDir as an empty writable directory;
 * - projected volumes, such as the one the ServiceAccount admission plugin adds (kube-api-access-*): the token from a
 *   TokenRequest bound to the pod (as the kubelet requests it), the cluster CA from kube-root-ca.crt, the namespace;
 * - securityContext: runAsUser/runAsGroup/fsGroup, runAsNonRoot (refused like the kubelet refuses a root user),
 *   readOnlyRootFilesystem;
 * - the container's ports reachable from this machine (like kubectl port-forward), and 127.0.0.1:<API server port>
 *   inside the pod reaching the API server.
 */
import { chmodSync, chownSync, mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { V1Container, V1Pod, V1Volume } from '@kubernetes/client-node';
import { CoreV1Api } from '@kubernetes/client-node';
import { imageConfig } from '../image/dockerfile.js';
import type { ContainerMount, RunningContainer } from '../support/container.js';
import { startContainer } from '../support/container.js';
import type { TestCluster } from './helpers.js';

const REPO = path.resolve(import.meta.dirname, '../..');
export const DOCKERFILE = path.join(REPO, 'deploy/Dockerfile');

export interface KubeletRunOptions {
  readonly cluster: TestCluster;
  /** The pod as the API server stored it (name, namespace, uid, spec). */
  readonly pod: V1Pod;
  /** Which container; default the first. */
  readonly container?: string;
  /** Other addresses of this machine the pod must reach at 127.0.0.1:<port> (the GitHub simulator). */
  readonly outboundPorts?: readonly number[];
  /** Extra environment (appended after the container's). */
  readonly extraEnv?: Readonly<Record<string, string>>;
}

export interface KubeletContainer extends RunningContainer {
  /** A URL on this machine for a container port (as kubectl port-forward gives). */
  url(containerPort: number): string;
  /** The environment the container got (secret values included: for assertions only). */
  readonly env: Readonly<Record<string, string>>;
  /** The token the container got. */
  readonly token: string;
}

function b64(value: string | undefined): string {
  return Buffer.from(value ?? '', 'base64').toString('utf8');
}

export async function runPodContainer(options: KubeletRunOptions): Promise<KubeletContainer> {
  const scratch = mkdtempSync(path.join(tmpdir(), 'rf-kubelet-'));
  try {
    return await runIn(scratch, options);
  } catch (error) {
    // The volumes hold the pod's secrets: nothing stays behind when the container cannot be started.
    rmSync(scratch, { recursive: true, force: true });
    throw error;
  }
}

async function runIn(scratch: string, options: KubeletRunOptions): Promise<KubeletContainer> {
  const { cluster, pod } = options;
  const namespace = pod.metadata!.namespace!;
  const podName = pod.metadata!.name!;
  const spec = pod.spec!;
  const container: V1Container =
    (options.container ? spec.containers.find((c) => c.name === options.container) : spec.containers[0]) ??
    (() => {
      throw new Error(`pod ${podName} has no container ${options.container ?? ''}`);
    })();
  const core = cluster.kubeConfig().makeApiClient(CoreV1Api);
  const image = imageConfig(DOCKERFILE);
  const apiPort = Number(new URL(cluster.server).port);

  // securityContext, pod level then container level.
  const podSc = spec.securityContext ?? {};
  const sc = container.securityContext ?? {};
  const uid = sc.runAsUser ?? podSc.runAsUser ?? Number((image.user ?? '0').split(':')[0]);
  const gid = sc.runAsGroup ?? podSc.runAsGroup ?? Number((image.user ?? '0:0').split(':')[1] ?? 0);
  const fsGroup = podSc.fsGroup;
  if ((sc.runAsNonRoot ?? podSc.runAsNonRoot) && uid === 0) {
    throw new Error('the kubelet refuses this container: runAsNonRoot with a root user');
  }

  chmodSync(scratch, 0o755);
  const files = (dir: string, entries: Record<string, string>, mode: number) => {
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    chmodSync(dir, 0o755);
    for (const [name, content] of Object.entries(entries)) {
      const file = path.join(dir, name);
      mkdirSync(path.dirname(file), { recursive: true });
      writeFileSync(file, content);
      let fileMode = mode;
      if (fsGroup !== undefined) {
        chownSync(file, 0, fsGroup);
        // The kubelet makes the pod's fsGroup able to read what its owner can.
        if (mode & 0o400) fileMode |= 0o040;
      }
      chmodSync(file, fileMode);
    }
  };

  // Volumes.
  const mounts: ContainerMount[] = [
    { hostPath: REPO, containerPath: '/app', readOnly: true },
    // node_modules is a link to the main checkout's: the image has its own copy at the same place.
    {
      hostPath: realpathSync(path.join(REPO, 'node_modules')),
      containerPath: realpathSync(path.join(REPO, 'node_modules')),
      readOnly: true,
    },
  ];
  let token = '';
  const volumeDir = async (volume: V1Volume): Promise<string> => {
    const dir = path.join(scratch, 'volumes', volume.name);
    if (volume.emptyDir) {
      mkdirSync(dir, { recursive: true });
      chmodSync(dir, 0o777);
      return dir;
    }
    if (volume.configMap) {
      const cm = await core.readNamespacedConfigMap({ name: volume.configMap.name!, namespace });
      const items = volume.configMap.items ?? Object.keys(cm.data ?? {}).map((key) => ({ key, path: key }));
      files(
        dir,
        Object.fromEntries(items.map((i) => [i.path, cm.data?.[i.key] ?? ''])),
        volume.configMap.defaultMode ?? 0o644,
      );
      return dir;
    }
    if (volume.secret) {
      const secret = await core.readNamespacedSecret({ name: volume.secret.secretName!, namespace });
      const items = volume.secret.items ?? Object.keys(secret.data ?? {}).map((key) => ({ key, path: key }));
      files(
        dir,
        Object.fromEntries(items.map((i) => [i.path, b64(secret.data?.[i.key])])),
        volume.secret.defaultMode ?? 0o644,
      );
      return dir;
    }
    if (volume.projected) {
      // What the ServiceAccount admission plugin adds (kube-api-access-*): a pod-bound token, the cluster CA of
      // the kube-root-ca.crt ConfigMap, the namespace.
      const entries: Record<string, string> = {};
      for (const source of volume.projected.sources ?? []) {
        if (source.serviceAccountToken) {
          const request = await core.createNamespacedServiceAccountToken({
            name: spec.serviceAccountName ?? 'default',
            namespace,
            body: {
              spec: {
                audiences: source.serviceAccountToken.audience ? [source.serviceAccountToken.audience] : [],
                expirationSeconds: source.serviceAccountToken.expirationSeconds ?? 3607,
                boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: podName, uid: pod.metadata!.uid! },
              },
            },
          });
          token = request.status?.token ?? '';
          entries[source.serviceAccountToken.path] = token;
        } else if (source.configMap) {
          const cm = await core.readNamespacedConfigMap({ name: source.configMap.name!, namespace });
          for (const item of source.configMap.items ?? []) entries[item.path] = cm.data?.[item.key] ?? '';
        } else if (source.downwardAPI) {
          for (const item of source.downwardAPI.items ?? []) {
            if (item.fieldRef?.fieldPath !== 'metadata.namespace')
              throw new Error(`projected downwardAPI ${item.fieldRef?.fieldPath ?? ''} is not handled`);
            entries[item.path] = namespace;
          }
        } else
          throw new Error(`volume ${volume.name}: a projected source this kubelet stand-in does not handle`);
      }
      files(dir, entries, volume.projected.defaultMode ?? 0o644);
      return dir;
    }
    throw new Error(
      `volume ${volume.name}: this kubelet stand-in handles configMap, secret, projected, emptyDir`,
    );
  };
  for (const mount of container.volumeMounts ?? []) {
    const volume = spec.volumes?.find((v) => v.name === mount.name);
    if (!volume) throw new Error(`volumeMount ${mount.name} has no volume`);
    const readOnly =
      mount.readOnly === true ||
      volume.configMap !== undefined ||
      volume.secret !== undefined ||
      volume.projected !== undefined;
    mounts.push({ hostPath: await volumeDir(volume), containerPath: mount.mountPath, readOnly });
  }

  // The environment: the image's, the kubelet's service variables, then the container's own.
  const env: Record<string, string> = {
    PATH: '/usr/local/bin:/usr/bin:/bin',
    ...image.env,
    HOSTNAME: podName,
    KUBERNETES_SERVICE_HOST: '127.0.0.1',
    KUBERNETES_SERVICE_PORT: String(apiPort),
  };
  for (const variable of container.env ?? []) {
    if (variable.value !== undefined) {
      if (variable.value.includes('$('))
        throw new Error(`env ${variable.name}: $(VAR) expansion is not handled`);
      env[variable.name] = variable.value;
      continue;
    }
    const from = variable.valueFrom;
    if (from?.fieldRef) {
      const field = from.fieldRef.fieldPath;
      if (field === 'metadata.name') env[variable.name] = podName;
      else if (field === 'metadata.namespace') env[variable.name] = namespace;
      else throw new Error(`env ${variable.name}: fieldRef ${field} is not handled`);
    } else if (from?.secretKeyRef) {
      const secret = await core.readNamespacedSecret({ name: from.secretKeyRef.name!, namespace });
      const value = secret.data?.[from.secretKeyRef.key];
      if (value === undefined)
        throw new Error(`env ${variable.name}: key ${from.secretKeyRef.key} is missing`);
      env[variable.name] = b64(value);
    } else if (from?.configMapKeyRef) {
      const cm = await core.readNamespacedConfigMap({ name: from.configMapKeyRef.name!, namespace });
      env[variable.name] = cm.data?.[from.configMapKeyRef.key] ?? '';
    } else throw new Error(`env ${variable.name}: this kubelet stand-in does not handle its source`);
  }
  Object.assign(env, options.extraEnv ?? {});

  const command = container.command ?? image.entrypoint;
  const args = container.args ?? (container.command ? [] : image.cmd);
  const inbound = (container.ports ?? []).map((p) => p.containerPort);
  const running = await startContainer({
    command: [...command, ...args],
    env,
    workingDir: container.workingDir ?? image.workingDir,
    user: { uid, gid, ...(fsGroup !== undefined ? { groups: [fsGroup] } : {}) },
    mounts,
    readOnlyRootFilesystem: sc.readOnlyRootFilesystem === true,
    network: {
      inbound,
      outbound: [apiPort, ...(options.outboundPorts ?? [])].map((port) => ({
        port,
        host: '127.0.0.1',
        hostPort: port,
      })),
    },
  });
  void running.exited.then(() => rmSync(scratch, { recursive: true, force: true }));
  return {
    ...running,
    env,
    token,
    url(containerPort) {
      const port = running.ports.get(containerPort);
      if (port === undefined) throw new Error(`container port ${containerPort} is not forwarded`);
      return `http://127.0.0.1:${port}`;
    },
  };
}

/** Forwards a port the container listens on without declaring it (kubectl port-forward needs no declaration). */
export function extraPorts(pod: V1Pod, ports: readonly number[]): V1Pod {
  const [first, ...rest] = pod.spec!.containers;
  return {
    ...pod,
    spec: {
      ...pod.spec!,
      containers: [
        { ...first!, ports: [...(first!.ports ?? []), ...ports.map((containerPort) => ({ containerPort }))] },
        ...rest,
      ],
    },
  };
}
