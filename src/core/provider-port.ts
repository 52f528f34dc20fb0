/**
 * The provider port: what core needs from the code that creates, lists and deletes instances (the compute that hosts
 * one runner). Implemented by each folder of src/providers; a provider never talks to GitHub.
 */
/**
 * How the instance becomes a runner. The secret (JIT config or registration token) must reach the instance only
 * through the provider's secret channel (Kubernetes Secret, SSM SecureString, 0600 file, process environment):
 * never argv, never a log line, never an error message.
 */
export type Registration =
  | { readonly mode: 'jit'; readonly jitConfig: string }
  | {
      readonly mode: 'token';
      /** Web URL of the scope the runner registers to, e.g. https://github.com/octo-org */
      readonly url: string;
      readonly token: string;
      readonly labels: readonly string[];
      readonly runnerGroup: string;
      readonly ephemeral: boolean;
    };

export interface InstanceSpec {
  /** Unique and deterministic: equals the runner name. create() is idempotent on it. */
  readonly name: string;
  readonly fleet: string;
  readonly scaleSet: string;
  readonly registration: Registration;
}

/** pending: being created or booting; running: the runner process runs; succeeded/failed: it exited. */
export type InstanceState = 'pending' | 'running' | 'succeeded' | 'failed';

export interface Instance {
  readonly name: string;
  readonly fleet: string;
  readonly scaleSet: string;
  readonly state: InstanceState;
  /** ms epoch */
  readonly createdAt: number;
  /** Provider's own id (pod uid, EC2 instance id, pid). */
  readonly providerId?: string;
  /** Why it failed, or other human-readable detail. Never contains a secret. */
  readonly message?: string;
  /**
   * The cloud took the instance from under its runner (a spot interruption, an eviction): it ended (state `failed`)
   * without its runner ending on its own, so a job it ran did not end on its own either. Absent otherwise.
   */
  readonly interrupted?: boolean;
}

export interface InstanceSelector {
  readonly fleet: string;
  readonly scaleSet?: string;
}

export interface Provider {
  readonly kind: string;
  /** Idempotent on spec.name: creating an existing instance returns it. Throws ProviderError on failure. */
  create(spec: InstanceSpec, signal: AbortSignal): Promise<Instance>;
  /** Idempotent; deleting a missing instance succeeds. */
  delete(name: string, signal: AbortSignal): Promise<void>;
  /** Instances owned by this fleet (and scale set, when given), found by ownership labels/tags. */
  list(selector: InstanceSelector, signal: AbortSignal): Promise<Instance[]>;
  /** Optional push of state changes; returns an unsubscribe function. */
  watch?(onChange: (instance: Instance) => void): () => void;
  /**
   * Optional set-up before the first create/list (objects the scale set needs, access checks, caches warmed).
   * Idempotent; the controller calls it once at start and refuses to start when it throws.
   */
  prepare?(signal: AbortSignal): Promise<void>;
  /** Release timers, watches, connections. */
  close?(): Promise<void>;
}
