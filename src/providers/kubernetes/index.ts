/**
 * The `kubernetes` provider: one pod per runner, its JIT config (or registration token) in a Secret owned by the
 * pod, state from a shared LIST + WATCH informer per namespace.
 *
 * API writes per runner over its whole life: create pod, create Secret (owner: the pod), delete pod; the garbage
 * collector deletes the Secret. The pod is created first so the Secret can carry the pod's uid from birth: no
 * Secret can outlive its pod, even if runner-fleet crashes between the two calls (the container waits in
 * CreateContainerConfigError until the Secret exists; a retried create() completes it).
 *
 * The composition root builds the KubeConfig and passes it in; the provider never loads one itself.
 */
import type { KubeConfig, V1Pod } from '@kubernetes/client-node';
import { CoreV1Api, RbacAuthorizationV1Api, VersionApi } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import {
  describeApiError,
  isConflict,
  isForbidden,
  isNotFound,
  isRetryable,
  sanitizedCause,
  statusCodeOf,
  withSignal,
} from '../../kubernetes/api.js';
import { reuseConnections } from '../../kubernetes/connections.js';
import { isDnsLabel, isLabelValue, LABEL_FLEET, LABEL_RUNNER } from '../../kubernetes/labels.js';
import type { InformerEvent, PodInformerOptions } from '../../kubernetes/pod-informer.js';
import { PodInformer } from '../../kubernetes/pod-informer.js';
import type {
  Instance,
  InstanceSelector,
  InstanceSpec,
  Provider,
  ProviderContext,
  ProviderFactory,
} from '../provider.js';
import { ProviderError } from '../provider.js';
import type { RunnerPodRecord } from './instance-state.js';
import { instanceFromRecord, projectRunnerPod } from './instance-state.js';
import type { ScaleSetPlan } from './manifests.js';
import { buildRunnerPod, buildRunnerSecret, planScaleSet, runnerPodSelector } from './manifests.js';
import type { KubernetesProviderConfig } from './schema.js';
import { kubernetesProviderSchema } from './schema.js';
import { podIdentityAssociationCommand } from './identity.js';
import { ensureScaleSetObjects } from './setup.js';

export interface KubernetesProviderOptions {
  readonly kubeConfig: KubeConfig;
  /** dind as a native sidecar or not; by default decided from the API server's version (1.29+) in prepare(). */
  readonly nativeSidecars?: boolean;
  readonly informer?: Pick<PodInformerOptions<unknown>, 'pageSize' | 'watchTimeoutSeconds' | 'backoff'>;
}

/** Counts of API writes, for the "at most 4 writes per runner" budget. */
export interface KubernetesProviderStats {
  podCreates: number;
  secretCreates: number;
  secretDeletes: number;
  podDeletes: number;
  setupWrites: number;
}

export interface KubernetesProvider extends Provider {
  readonly kind: 'kubernetes';
  readonly namespace: string;
  readonly serviceAccountName: string;
  /**
   * Ensures the scale set's ServiceAccount (identity annotations), container-hooks RoleBinding and hook template,
   * validates the pod template with a server-side dry run, and waits for the pod informer's first LIST.
   * Idempotent; call once at start, before create/list. Throws ProviderError with a precise message.
   */
  prepare(signal: AbortSignal): Promise<void>;
  watch(onChange: (instance: Instance) => void): () => void;
  readonly stats: Readonly<KubernetesProviderStats>;
}

export interface KubernetesProviderFactory extends ProviderFactory<KubernetesProviderConfig> {
  readonly kind: 'kubernetes';
  create(config: KubernetesProviderConfig, context: ProviderContext): KubernetesProvider;
  /** Stops every informer the factory started. */
  close(): Promise<void>;
}

interface SharedInformer {
  readonly informer: PodInformer<RunnerPodRecord>;
  users: number;
}

function apiError(action: string, name: string, error: unknown): ProviderError {
  if (error instanceof ProviderError) return error;
  const status = statusCodeOf(error);
  const code = isForbidden(error)
    ? 'forbidden'
    : status === 422
      ? 'invalid'
      : status === 404
        ? 'not-found'
        : 'kubernetes-api';
  // Only the server's status line: a request body (a Secret) never reaches the message or the cause.
  return new ProviderError(`${action} ${name}: ${describeApiError(error)}`, {
    code,
    retryable: isRetryable(error),
    cause: sanitizedCause(error),
  });
}

async function detectNativeSidecars(
  kubeConfig: KubeConfig,
  signal: AbortSignal,
  logger: Logger,
): Promise<boolean> {
  try {
    const info = await kubeConfig.makeApiClient(VersionApi).getCode(withSignal(signal));
    const major = Number.parseInt(info.major, 10);
    const minor = Number.parseInt(info.minor, 10);
    return major > 1 || (major === 1 && minor >= 29);
  } catch (error) {
    logger.warn(
      { error: describeApiError(error) },
      'cannot read the Kubernetes version; dind runs as a plain sidecar',
    );
    return false;
  }
}

export function createKubernetesProviderFactory(
  options: KubernetesProviderOptions,
): KubernetesProviderFactory {
  // Pods, Secrets and the informers' watches over kept-alive connections (loadKubeConfig's do already).
  const kubeConfig = reuseConnections(options.kubeConfig);
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const rbac = kubeConfig.makeApiClient(RbacAuthorizationV1Api);
  const informers = new Map<string, SharedInformer>();
  let nativeSidecars: Promise<boolean> | undefined =
    options.nativeSidecars === undefined ? undefined : Promise.resolve(options.nativeSidecars);

  const acquireInformer = (fleet: string, namespace: string, logger: Logger): SharedInformer => {
    const key = `${fleet}\u0000${namespace}`;
    let shared = informers.get(key);
    if (!shared) {
      shared = {
        informer: new PodInformer<RunnerPodRecord>({
          kubeConfig,
          namespace,
          labelSelector: runnerPodSelector(fleet),
          project: projectRunnerPod,
          logger: logger.child({ informer: `pods/${namespace}` }),
          ...options.informer,
        }),
        users: 0,
      };
      informers.set(key, shared);
    }
    shared.users++;
    return shared;
  };
  const releaseInformer = async (fleet: string, namespace: string): Promise<void> => {
    const key = `${fleet}\u0000${namespace}`;
    const shared = informers.get(key);
    if (!shared || --shared.users > 0) return;
    informers.delete(key);
    await shared.informer.stop();
  };

  return {
    kind: 'kubernetes',
    schema: kubernetesProviderSchema,
    create(config: KubernetesProviderConfig, context: ProviderContext): KubernetesProvider {
      return new KubernetesPodProvider({
        config,
        context,
        core,
        rbac,
        shared: acquireInformer(context.fleet, config.namespace, context.logger),
        release: () => releaseInformer(context.fleet, config.namespace),
        nativeSidecars: (signal) =>
          (nativeSidecars ??= detectNativeSidecars(kubeConfig, signal, context.logger)),
      });
    },
    async close() {
      const all = [...informers.values()];
      informers.clear();
      await Promise.all(all.map((s) => s.informer.stop()));
    },
  };
}

interface ProviderDeps {
  readonly config: KubernetesProviderConfig;
  readonly context: ProviderContext;
  readonly core: CoreV1Api;
  readonly rbac: RbacAuthorizationV1Api;
  readonly shared: SharedInformer;
  readonly release: () => Promise<void>;
  readonly nativeSidecars: (signal: AbortSignal) => Promise<boolean>;
}

class KubernetesPodProvider implements KubernetesProvider {
  readonly kind = 'kubernetes' as const;
  readonly #d: ProviderDeps;
  readonly #logger: Logger;
  readonly #informer: PodInformer<RunnerPodRecord>;
  #plan: ScaleSetPlan;
  #prepared: Promise<void> | undefined;
  #closed = false;
  /**
   * Pods this provider asked to delete. They leave list() and watch() at once (the pod may take its grace period
   * to go); their final disappearance is expected, while anyone else's deletion is reported as a failure.
   */
  readonly #deleting = new Set<string>();
  readonly #watchers = new Set<(instance: Instance) => void>();
  readonly #unsubscribe: () => void;
  readonly stats: KubernetesProviderStats = {
    podCreates: 0,
    secretCreates: 0,
    secretDeletes: 0,
    podDeletes: 0,
    setupWrites: 0,
  };

  constructor(deps: ProviderDeps) {
    this.#d = deps;
    this.#logger = deps.context.logger.child({ provider: 'kubernetes', namespace: deps.config.namespace });
    this.#informer = deps.shared.informer;
    this.#plan = planScaleSet({
      fleet: deps.context.fleet,
      scaleSet: deps.context.scaleSet.name,
      identity: deps.context.scaleSet.identity,
      config: deps.config,
    });
    this.#unsubscribe = this.#informer.subscribe((event) => this.#onPodEvent(event));
  }

  get namespace(): string {
    return this.#plan.namespace;
  }

  get serviceAccountName(): string {
    return this.#plan.serviceAccountName;
  }

  prepare(signal: AbortSignal): Promise<void> {
    this.#prepared ??= this.#prepare(signal).catch((error: unknown) => {
      this.#prepared = undefined;
      throw error;
    });
    return this.#prepared;
  }

  async #prepare(signal: AbortSignal): Promise<void> {
    if (this.#plan.containerMode === 'dind') {
      this.#plan = { ...this.#plan, nativeSidecars: await this.#d.nativeSidecars(signal) };
    }
    const { writes } = await ensureScaleSetObjects(
      { core: this.#d.core, rbac: this.#d.rbac },
      this.#plan,
      signal,
      this.#logger,
    );
    this.stats.setupWrites += writes;
    const aws = this.#plan.identity?.aws;
    if (aws?.podIdentity) {
      // The association lives in EKS, outside the cluster: say which one this scale set needs.
      this.#logger.info(
        {
          serviceAccount: this.#plan.serviceAccountName,
          roleArn: aws.roleArn,
          association: podIdentityAssociationCommand(
            this.#plan.namespace,
            this.#plan.serviceAccountName,
            aws.roleArn,
          ),
        },
        'EKS Pod Identity: the role must be associated with this ServiceAccount (runner-fleet doctor checks it)',
      );
    }
    await this.#informer.waitForSync(signal);
  }

  /** A spec's fleet and scale set label its pod; everything else (image, ServiceAccount, ...) is this scale set's. */
  #checkSpec(spec: InstanceSpec): void {
    if (!isDnsLabel(spec.name)) {
      throw new ProviderError(
        `runner name '${spec.name}' cannot name a pod: at most 63 lowercase letters, digits and '-'`,
        { code: 'invalid-name', retryable: false },
      );
    }
    for (const [what, value] of [
      ['fleet', spec.fleet],
      ['scale set', spec.scaleSet],
    ] as const) {
      if (!isLabelValue(value)) {
        throw new ProviderError(`${what} name '${value}' cannot be a label value`, {
          code: 'invalid-name',
          retryable: false,
        });
      }
    }
  }

  async create(spec: InstanceSpec, signal: AbortSignal): Promise<Instance> {
    this.#checkSpec(spec);
    const pod = await this.#createPod(spec, signal);
    const uid = pod.metadata?.uid;
    if (!uid)
      throw new ProviderError(`pod ${spec.name} has no uid`, { code: 'kubernetes-api', retryable: true });
    await this.#ensureSecret(spec, uid, signal);
    this.#logger.debug({ runner: spec.name }, 'runner pod created');
    return instanceFromRecord(projectRunnerPod(pod));
  }

  async #createPod(spec: InstanceSpec, signal: AbortSignal): Promise<V1Pod> {
    const { namespace } = this.#plan;
    try {
      const created = await this.#d.core.createNamespacedPod(
        { namespace, body: buildRunnerPod(this.#plan, spec) },
        withSignal(signal),
      );
      this.stats.podCreates++;
      return created;
    } catch (error) {
      if (!isConflict(error)) throw apiError('create pod', `${namespace}/${spec.name}`, error);
    }
    // Idempotent create: the pod exists already (a retry); it must be ours and not on its way out.
    let existing: V1Pod;
    try {
      existing = await this.#d.core.readNamespacedPod({ name: spec.name, namespace }, withSignal(signal));
    } catch (error) {
      throw apiError('read pod', `${namespace}/${spec.name}`, error);
    }
    const labels = existing.metadata?.labels ?? {};
    if (labels[LABEL_FLEET] !== spec.fleet || labels[LABEL_RUNNER] !== spec.name) {
      throw new ProviderError(
        `pod ${namespace}/${spec.name} exists and is not a runner pod of fleet ${spec.fleet}`,
        {
          code: 'name-conflict',
          retryable: false,
        },
      );
    }
    if (existing.metadata?.deletionTimestamp) {
      throw new ProviderError(`pod ${namespace}/${spec.name} is still terminating`, {
        code: 'terminating',
        retryable: true,
      });
    }
    return existing;
  }

  async #ensureSecret(spec: InstanceSpec, podUid: string, signal: AbortSignal): Promise<void> {
    const { namespace } = this.#plan;
    const body = buildRunnerSecret(this.#plan, spec, { name: spec.name, uid: podUid });
    const where = `${namespace}/${spec.name}`;
    try {
      await this.#d.core.createNamespacedSecret({ namespace, body }, withSignal(signal));
      this.stats.secretCreates++;
      return;
    } catch (error) {
      if (!isConflict(error)) throw apiError('create secret', where, error);
    }
    // It exists: fine if it belongs to this pod (a retry). One left by an earlier pod of the same name is replaced.
    try {
      const existing = await this.#d.core.readNamespacedSecret(
        { name: spec.name, namespace },
        withSignal(signal),
      );
      if (existing.metadata?.ownerReferences?.some((o) => o.uid === podUid)) return;
      await this.#d.core.deleteNamespacedSecret({ name: spec.name, namespace }, withSignal(signal));
      this.stats.secretDeletes++;
      await this.#d.core.createNamespacedSecret({ namespace, body }, withSignal(signal));
      this.stats.secretCreates++;
    } catch (error) {
      throw apiError('replace secret', where, error);
    }
  }

  /**
   * Deletes only a runner pod of that name (the runner label says so), and only the pod that was checked (uid
   * precondition): a foreign pod that happens to share the name, or a newer pod of that name, is never touched.
   */
  async delete(name: string, signal: AbortSignal): Promise<void> {
    const { namespace } = this.#plan;
    const where = `${namespace}/${name}`;
    let uid = this.#informer.synced ? this.#informer.get(name)?.uid : undefined;
    if (uid === undefined) {
      try {
        const pod = await this.#d.core.readNamespacedPod({ name, namespace }, withSignal(signal));
        if (pod.metadata?.labels?.[LABEL_RUNNER] !== name) {
          throw new ProviderError(`pod ${where} is not a runner pod; not deleting it`, {
            code: 'not-owned',
            retryable: false,
          });
        }
        uid = pod.metadata?.uid;
      } catch (error) {
        if (isNotFound(error)) return;
        throw apiError('read pod', where, error);
      }
    }
    this.#deleting.add(name);
    try {
      await this.#d.core.deleteNamespacedPod(
        { name, namespace, ...(uid ? { body: { preconditions: { uid } } } : {}) },
        withSignal(signal),
      );
      this.stats.podDeletes++;
    } catch (error) {
      // 404: already gone; 409: the uid precondition failed, so the pod we knew is gone already.
      if (isNotFound(error) || isConflict(error)) {
        this.#deleting.delete(name);
        return;
      }
      throw apiError('delete pod', where, error);
    }
  }

  #toInstance(record: RunnerPodRecord): Instance {
    return instanceFromRecord(record, record.deleting && !this.#deleting.has(record.name));
  }

  async list(selector: InstanceSelector, signal: AbortSignal): Promise<Instance[]> {
    if (selector.fleet !== this.#plan.fleet) return this.#listFromApi(selector, signal);
    await this.#informer.waitForSync(signal);
    return this.#informer
      .list()
      .filter(
        (r) =>
          (selector.scaleSet === undefined || r.scaleSet === selector.scaleSet) &&
          !this.#deleting.has(r.name),
      )
      .map((r) => this.#toInstance(r));
  }

  /** Another fleet's pods in this namespace (rare): one LIST, not cached. */
  async #listFromApi(selector: InstanceSelector, signal: AbortSignal): Promise<Instance[]> {
    try {
      const pods = await this.#d.core.listNamespacedPod(
        {
          namespace: this.#plan.namespace,
          labelSelector: runnerPodSelector(selector.fleet, selector.scaleSet),
        },
        withSignal(signal),
      );
      return pods.items
        .map((p) => projectRunnerPod(p))
        .filter((r) => !this.#deleting.has(r.name))
        .map((r) => this.#toInstance(r));
    } catch (error) {
      throw apiError('list pods', this.#plan.namespace, error);
    }
  }

  #onPodEvent(event: InformerEvent<RunnerPodRecord>): void {
    const record = event.object;
    const ours = this.#deleting.has(record.name);
    if (event.type === 'deleted') {
      // Gone for good. Expected when this provider deleted it; otherwise (evicted, deleted by hand, namespace
      // cleanup) the controller must hear of it to deregister the runner and replace the capacity.
      this.#deleting.delete(record.name);
      if (!ours) this.#emit(record, instanceFromRecord(record, true));
      return;
    }
    if (!ours) this.#emit(record, this.#toInstance(record));
  }

  #emit(record: RunnerPodRecord, instance: Instance): void {
    if (record.scaleSet !== this.#plan.scaleSet || record.fleet !== this.#plan.fleet) return;
    for (const watcher of this.#watchers) {
      try {
        watcher(instance);
      } catch (error) {
        this.#logger.error({ err: error }, 'instance watcher failed');
      }
    }
  }

  watch(onChange: (instance: Instance) => void): () => void {
    this.#informer.start();
    this.#watchers.add(onChange);
    return () => this.#watchers.delete(onChange);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#unsubscribe();
    this.#watchers.clear();
    await this.#d.release();
  }
}
