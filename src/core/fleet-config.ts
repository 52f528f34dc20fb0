/**
 * The parsed, validated fleet configuration. `config/schema.ts` (zod) produces exactly these shapes; everything
 * downstream codes against these types, never against raw YAML. Durations are milliseconds after parsing; secret
 * references (`${env:NAME}`, `${file:PATH}`) are resolved. The object is deep-frozen.
 */

/** Where runners register: an organization, one repository (`owner/name`) or an enterprise (classic PAT only). */
export type Scope = { readonly org: string } | { readonly repo: string } | { readonly enterprise: string };

export type RegistrationMode = 'jit' | 'token';

/** How the controller learns of a scale set's jobs: `workflow_job` webhooks, or GitHub's runner scale set message
 *  queue (no inbound connection). */
export type DiscoveryMode = 'webhook' | 'scale-set';

/** Cloud identity given to runner pods (and, in kubernetes container mode, to job pods). */
export interface IdentityConfig {
  /** IRSA (annotation on the ServiceAccount), or with `podIdentity` an EKS Pod Identity association. */
  readonly aws?: { readonly roleArn: string; readonly podIdentity?: boolean };
  readonly gcp?: { readonly serviceAccount: string };
  readonly azure?: { readonly clientId: string };
}

/** A provider block: `kind` selects the provider; the rest is validated by that provider's `schema.ts`. */
export interface ProviderConfig {
  readonly kind: string;
  readonly [key: string]: unknown;
}

export interface ScaleSetConfig {
  readonly name: string;
  readonly scope: Scope;
  readonly runnerGroup: string;
  /** Labels as configured, without the implicit `self-hosted`. */
  readonly labels: readonly string[];
  readonly minIdle: number;
  readonly max: number;
  readonly ephemeral: boolean;
  readonly registration: RegistrationMode;
  /** The schema defaults it to `webhook`; absent means `webhook`. */
  readonly discovery?: DiscoveryMode;
  readonly priority: number;
  /** ms */
  readonly bootstrapTimeout: number;
  /** ms */
  readonly idleTimeout: number;
  /**
   * Re-run the job of a busy runner whose instance the cloud took (Instance.interrupted), once its run has ended.
   * The schema defaults it to false; absent means false.
   */
  readonly rerunInterruptedJobs?: boolean;
  readonly identity?: IdentityConfig;
  readonly provider: ProviderConfig;
}

export type GitHubAuthConfig =
  | { readonly app: { readonly id: number; readonly privateKey: string; readonly installationId?: number } }
  | { readonly token: string };

export interface GitHubConfig {
  /** Web URL: https://github.com or the GHES URL. */
  readonly url: string;
  /** REST base: https://api.github.com, <url>/api/v3 for GHES, or set explicitly (the simulator). */
  readonly apiUrl: string;
  /** True when `url` is not github.com (GHES): API under /api/v3. */
  readonly ghes: boolean;
  readonly auth: GitHubAuthConfig;
  /** Runner-creating calls a minute per installation and host that runner creation is paced to (default 180). */
  readonly createsPerMinute?: number;
  /** `github.caFile` as configured (relative paths resolved against the config file). */
  readonly caFile?: string;
  /** The PEM certificates read from `caFile` at load, trusted in addition to the default roots. */
  readonly ca?: string;
}

export interface FleetConfig {
  /** Fleet name: owner label on every instance this controller creates. Default `runner-fleet`. */
  readonly name: string;
  readonly github: GitHubConfig;
  /** The HMAC key of deliveries; a list during a rotation (any of them verifies a delivery). */
  readonly webhook: { readonly secret: string | readonly string[] };
  readonly server: {
    readonly host: string;
    readonly port: number;
    /** Bearer token the dashboard and /api/v1 require (needed when they are served beyond loopback). */
    readonly dashboardToken?: string;
    /** A listener of their own for the dashboard and /api/v1; the main one then serves webhook, health, metrics. */
    readonly dashboard?: { readonly host: string; readonly port: number };
  };
  readonly store: { readonly path: string };
  readonly controller: {
    /** ms between full resyncs (list runners + list instances). Default 30 s. */
    readonly resyncInterval: number;
    /** ms a GitHub runner with our prefix and no instance may exist before it is deregistered. Default 2 min. */
    readonly orphanGracePeriod: number;
    /** ms base of the exponential backoff after a failed runner. Default 5 s. */
    readonly failureBackoff: number;
    /** Runner creates and removals in flight at once, across scale sets. Default 64 (the schema sets it). */
    readonly concurrency: number;
  };
  readonly scaleSets: readonly ScaleSetConfig[];
}
