/**
 * What every provider folder offers the controller. The Provider interface itself is core's port
 * (src/core/provider-port.ts, re-exported here for the providers). One Provider object serves one scale set; a
 * ProviderFactory builds it from the scale set's `provider` block, already validated by the kind's schema; a
 * ProviderModule (each folder's module.ts, all listed once in modules.ts) names the kind, its schema and how to set
 * up its factory for a fleet.
 */
import type { Logger } from 'pino';
import type { ZodType } from 'zod';
import type { FleetConfig, ScaleSetConfig } from '../config/types.js';
import type { Provider } from '../core/provider-port.js';

export type {
  Instance,
  InstanceSelector,
  InstanceSpec,
  InstanceState,
  Provider,
  Registration,
} from '../core/provider-port.js';

/**
 * Something a provider did that operators should see besides its result: a spot request that fell back to on-demand,
 * an instance interrupted by the cloud. The controller logs it, counts it in runner_fleet_provider_notices_total and
 * shows it among the dashboard's events. Never contains a secret.
 */
export interface ProviderNotice {
  /** Stable kebab-case name, e.g. `spot-fallback`, `spot-interruption`. */
  readonly event: string;
  /** The runner/instance name it concerns, when one. */
  readonly instance?: string;
  readonly message: string;
}

/** What the composition root hands a provider factory. */
export interface ProviderContext {
  readonly fleet: string;
  readonly scaleSet: ScaleSetConfig;
  readonly logger: Logger;
  readonly now?: () => number;
  /** Where notices go; absent in tests that do not look. */
  readonly notify?: (notice: ProviderNotice) => void;
}

export interface ProviderFactory<TConfig = unknown> {
  readonly kind: string;
  /** zod schema of the provider block (see each provider's schema.ts). */
  readonly schema: ZodType<TConfig>;
  create(config: TConfig, context: ProviderContext): Provider;
  /** Releases what the factory shares between its providers (informers, clients). */
  close?(): Promise<void>;
}

/** What the composition root hands a module's setup: the fleet, and how to reach the kind's platform. */
export interface ProviderSetupOptions {
  readonly fleet: FleetConfig;
  /** The fleet's scale sets of this kind. */
  readonly scaleSets: readonly ScaleSetConfig[];
  /** The command's environment (PATH for local processes, KUBECONFIG, AWS_*); read by the CLI, passed down. */
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Connection flags of the command line; each kind reads its own. */
  readonly connection: {
    readonly kubeconfig?: string;
    readonly awsEndpoint?: string;
  };
  /** When set, the controller elects a leader on this Lease: its rights are checked with the kind's own. */
  readonly leaderElection?: { readonly namespace: string; readonly leaseName: string };
  /** Check the controller's rights on the platform before anything starts (start: yes; tests may skip it). */
  readonly checkAccess: boolean;
  readonly logger: Logger;
  readonly signal: AbortSignal;
}

/**
 * Refusal to set up a kind for a fleet: the controller lacks rights, a cluster or account cannot be reached, a
 * referenced object is missing. The message names each problem and how to fix it; `start` prints it and exits 1.
 */
export class ProviderSetupError extends Error {
  readonly code: string;
  constructor(message: string, options: { code: string; cause?: unknown }) {
    super(message, { cause: options.cause });
    this.name = 'ProviderSetupError';
    this.code = options.code;
  }
}

/**
 * One provider kind, as listed in modules.ts. Importing a module is cheap (its schema only): `setup` loads the
 * implementation and its SDK when a fleet uses the kind.
 */
export interface ProviderModule<TConfig = unknown> {
  readonly kind: string;
  readonly schema: ZodType<TConfig>;
  /**
   * The kind's factory for one controller: builds its clients and, with `checkAccess`, checks the controller's
   * rights. Throws ProviderSetupError naming what is missing.
   */
  setup(options: ProviderSetupOptions): Promise<ProviderFactory<TConfig>>;
  /**
   * `runner-fleet doctor`'s checks of the kind for the fleet (the controller's rights on the platform, what the
   * scale sets reference): one line per check, a failure a line rather than an exception. Optional.
   */
  doctor?(options: ProviderSetupOptions): Promise<ProviderDoctorReport>;
}

/** What a module's doctor found: `ok` when every line is. */
export interface ProviderDoctorReport {
  readonly ok: boolean;
  readonly lines: readonly { readonly ok: boolean; readonly text: string }[];
}

export class ProviderError extends Error {
  readonly code: string;
  readonly retryable: boolean;
  constructor(message: string, options: { code: string; retryable: boolean; cause?: unknown }) {
    super(message, { cause: options.cause });
    this.name = 'ProviderError';
    this.code = options.code;
    this.retryable = options.retryable;
  }
}
