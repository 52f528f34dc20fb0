/**
 * TEST AID, not part of the controller: the kubelet side of runner pods on a kwok cluster.
 *
 * kwok plays the kubelet in the API (pods are scheduled, reported Running, removed when deleted) but runs no
 * containers, so a runner pod on kwok never runs a runner. The bridge does that part, as a kubelet would:
 * - for each runner pod kwok reports Running, it resolves the runner container's ACTIONS_RUNNER_INPUT_JITCONFIG (or
 *   the token-mode inputs) through their secretKeyRef, reading the Secret the pod names; while that Secret does not
 *   exist it waits and retries, as a kubelet holds a container in CreateContainerConfigError;
 * - it runs the runner in-process: by default the emulated runner (src/sim/runner) against the GitHub simulator
 *   named in the JIT config;
 * - when the runner exits it writes the pod's status as a kubelet would (status subresource): containers terminated
 *   with the exit code, phase Succeeded for 0 and Failed otherwise;
 * - a pod that is deleted while its runner runs gets its runner stopped (SIGTERM), and no status.
 *
 * Its credentials must allow: pods list, watch and get, secrets get, pods/status patch.
 */
import type { KubeConfig, V1Pod } from '@kubernetes/client-node';
import { CoreV1Api, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { describeApiError, isNotFound, withSignal } from '../../kubernetes/api.js';
import { LABEL_FLEET, LABEL_RUNNER } from '../../kubernetes/labels.js';
import { PodInformer } from '../../kubernetes/pod-informer.js';
import { registrationFromPod, registrationSecretName } from './runner-container.js';
import type { InstanceRegistration } from '../runner/registration.js';
import type { EmulatorOptions } from '../runner/index.js';
import { emulatorRegistration, runEmulatedRunner } from '../runner/index.js';
import { terminatedStatus } from './pod-status.js';
import { sleepUnlessAborted } from '../../lib/async.js';

export { terminatedStatus } from './pod-status.js';
export { registrationSecretName } from './runner-container.js';

export interface RunContext {
  readonly namespace: string;
  readonly pod: string;
  /** Aborted with 'SIGTERM' when the pod is deleted or the bridge stops. */
  readonly signal: AbortSignal;
}

/** What runs in place of the runner container; resolves to its exit code. */
export type RunnerFunction = (registration: InstanceRegistration, context: RunContext) => Promise<number>;

export interface KubeBridgeOptions {
  readonly kubeConfig: KubeConfig;
  readonly namespaces: readonly string[];
  /** Only this fleet's runner pods (label runner-fleet.dev/fleet); default every runner-fleet runner pod. */
  readonly fleet?: string;
  /** Default: the emulated runner with `emulator` options. */
  readonly run?: RunnerFunction;
  readonly emulator?: Pick<EmulatorOptions, 'fetch' | 'transport' | 'retryBudgetMs' | 'log'>;
  readonly logger?: Logger;
  /** Between reads of a Secret that does not exist yet. Default 200 ms. */
  readonly secretRetryMs?: number;
  /** A runner started in a pod, or ended (exit code, or null when stopped because the pod went away). */
  readonly onEvent?: (event: BridgeEvent) => void;
}

export type BridgeEvent =
  | { readonly type: 'started'; readonly namespace: string; readonly pod: string }
  | {
      readonly type: 'exited';
      readonly namespace: string;
      readonly pod: string;
      readonly code: number | null;
    };

export interface KubeBridgeStats {
  /** Runners started (one per pod). */
  started: number;
  /** Runners that ran and whose exit was written to the pod: by exit code 0 or not. */
  succeeded: number;
  failed: number;
  /** Runners stopped because their pod was deleted, or because the bridge stopped. */
  interrupted: number;
  /** Runners that exited after their pod was deleted (runner-fleet deletes it once GitHub removed the runner). */
  podGone: number;
  /** Status writes the API refused. */
  statusErrors: number;
}

export interface KubeBridge {
  readonly stats: Readonly<KubeBridgeStats>;
  /** Runners running now. */
  readonly running: number;
  /** Stops every runner (SIGTERM), waits for them, and stops watching. */
  stop(): Promise<void>;
}

interface PodView {
  readonly name: string;
  readonly phase: string;
  readonly deleting: boolean;
  readonly uid: string;
}

function project(pod: V1Pod): PodView {
  return {
    name: pod.metadata?.name ?? '',
    phase: pod.status?.phase ?? '',
    deleting: pod.metadata?.deletionTimestamp != null,
    uid: pod.metadata?.uid ?? '',
  };
}

export async function startKubeBridge(options: KubeBridgeOptions): Promise<KubeBridge> {
  const core = options.kubeConfig.makeApiClient(CoreV1Api);
  const log = options.logger;
  const stopping = new AbortController();
  const stats: KubeBridgeStats = {
    started: 0,
    succeeded: 0,
    failed: 0,
    interrupted: 0,
    podGone: 0,
    statusErrors: 0,
  };
  /** Pods handled (by namespace/uid), and the abort of each runner still running. */
  const handled = new Set<string>();
  const running = new Map<string, AbortController>();
  const tasks = new Set<Promise<void>>();
  const run: RunnerFunction =
    options.run ??
    ((registration, context) =>
      runEmulatedRunner(emulatorRegistration(registration, context.pod), {
        ...options.emulator,
        signal: context.signal,
      }));
  const selector = options.fleet ? `${LABEL_FLEET}=${options.fleet},${LABEL_RUNNER}` : LABEL_RUNNER;

  /** Reads the pod and its Secret until the registration resolves; undefined when the pod is gone or not ours. */
  async function resolve(namespace: string, name: string, uid: string, signal: AbortSignal) {
    while (!signal.aborted) {
      let pod: V1Pod;
      try {
        pod = await core.readNamespacedPod({ name, namespace }, withSignal(signal));
      } catch (error) {
        if (isNotFound(error) || signal.aborted) return undefined;
        log?.warn({ pod: name, error: describeApiError(error) }, 'kube-bridge: reading the pod failed');
        await sleepUnlessAborted(options.secretRetryMs ?? 200, signal);
        continue;
      }
      if (pod.metadata?.uid !== uid || pod.metadata?.deletionTimestamp) return undefined;
      const secretName = registrationSecretName(pod);
      if (secretName === undefined) return undefined;
      try {
        const secret = await core.readNamespacedSecret({ name: secretName, namespace }, withSignal(signal));
        return registrationFromPod(pod, secret);
      } catch (error) {
        if (signal.aborted) return undefined;
        // No Secret yet (runner-fleet creates it right after the pod): a kubelet waits for it too.
        if (!isNotFound(error)) {
          log?.warn({ pod: name, error: describeApiError(error) }, 'kube-bridge: reading the Secret failed');
        }
        await sleepUnlessAborted(options.secretRetryMs ?? 200, signal);
      }
    }
    return undefined;
  }

  async function writeExit(namespace: string, name: string, uid: string, code: number): Promise<void> {
    let pod: V1Pod;
    try {
      pod = await core.readNamespacedPod({ name, namespace });
    } catch (error) {
      if (isNotFound(error)) stats.podGone++;
      else stats.statusErrors++;
      return;
    }
    if (pod.metadata?.uid !== uid || pod.metadata?.deletionTimestamp) {
      stats.podGone++;
      return;
    }
    try {
      await core.patchNamespacedPodStatus(
        // Strategic merge: conditions merge by type (Initialized, PodScheduled stay), as a kubelet's update keeps
        // them; the uid makes the write a precondition on this very pod.
        { name, namespace, body: { metadata: { uid }, status: terminatedStatus(pod, code, new Date()) } },
        setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch),
      );
      if (code === 0) stats.succeeded++;
      else stats.failed++;
    } catch (error) {
      if (isNotFound(error)) {
        stats.podGone++;
        return;
      }
      stats.statusErrors++;
      log?.warn({ pod: name, error: describeApiError(error) }, 'kube-bridge: writing the pod status failed');
    }
  }

  async function host(namespace: string, view: PodView): Promise<void> {
    const key = `${namespace}/${view.uid}`;
    const abort = new AbortController();
    running.set(key, abort);
    const signal = AbortSignal.any([abort.signal, stopping.signal]);
    try {
      const registration = await resolve(namespace, view.name, view.uid, signal);
      if (registration === undefined || signal.aborted) return;
      stats.started++;
      log?.debug({ pod: view.name, namespace }, 'kube-bridge: runner starting');
      options.onEvent?.({ type: 'started', namespace, pod: view.name });
      let code: number;
      try {
        code = await run(registration, { namespace, pod: view.name, signal });
      } catch (error) {
        log?.warn({ pod: view.name, err: error }, 'kube-bridge: runner crashed');
        code = 1;
      }
      if (signal.aborted) {
        stats.interrupted++;
        options.onEvent?.({ type: 'exited', namespace, pod: view.name, code: null });
        return;
      }
      options.onEvent?.({ type: 'exited', namespace, pod: view.name, code });
      running.delete(key);
      await writeExit(namespace, view.name, view.uid, code);
    } finally {
      running.delete(key);
    }
  }

  function onPod(namespace: string, type: 'added' | 'modified' | 'deleted', view: PodView): void {
    const key = `${namespace}/${view.uid}`;
    if (type === 'deleted' || view.deleting) {
      // The kubelet stops the containers of a deleted pod (SIGTERM first).
      running.get(key)?.abort('SIGTERM');
      if (type === 'deleted') handled.delete(key);
      return;
    }
    if (view.phase !== 'Running' || handled.has(key) || stopping.signal.aborted) return;
    handled.add(key);
    const task = host(namespace, view).finally(() => tasks.delete(task));
    tasks.add(task);
  }

  const informers = options.namespaces.map(
    (namespace) =>
      new PodInformer<PodView>({
        kubeConfig: options.kubeConfig,
        namespace,
        labelSelector: selector,
        project,
        ...(log ? { logger: log } : {}),
      }),
  );
  informers.forEach((informer, i) => {
    const namespace = options.namespaces[i] as string;
    informer.subscribe((event) => onPod(namespace, event.type, event.object));
  });
  await Promise.all(informers.map((informer) => informer.waitForSync()));
  informers.forEach((informer, i) => {
    for (const view of informer.list()) onPod(options.namespaces[i] as string, 'added', view);
  });

  return {
    stats,
    get running() {
      return running.size;
    },
    async stop() {
      stopping.abort('SIGTERM');
      await Promise.all(informers.map((informer) => informer.stop()));
      await Promise.allSettled([...tasks]);
    },
  };
}
