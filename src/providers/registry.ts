/**
 * Provider kind -> factory, for one controller. The kinds are the provider list (modules.ts); a kind's factory is set
 * up on first use (its SDK loaded, its clients built, the controller's rights checked), so a fleet that runs only
 * local processes never loads the AWS or Kubernetes SDKs. Tests and the demo may replace a kind's factory.
 */
import type { ScaleSetConfig } from '../core/fleet-config.js';
import { providerModules } from './modules.js';
import type {
  Provider,
  ProviderContext,
  ProviderFactory,
  ProviderModule,
  ProviderSetupOptions,
} from './provider.js';
import { ProviderError } from './provider.js';

/** A factory, or a function that loads one (a dynamic import). */
export type FactorySource = ProviderFactory<unknown> | (() => Promise<ProviderFactory<unknown>>);

/** What providerFor needs besides the scale set itself. */
export type ProviderBaseContext = Omit<ProviderContext, 'scaleSet'>;

export interface ProviderRegistryOptions {
  /** Default: every kind of modules.ts. */
  readonly modules?: readonly ProviderModule<unknown>[];
  /** Factories that replace a kind's setup (tests, the demo), or add a kind. */
  readonly overrides?: Readonly<Record<string, FactorySource>>;
  /** How modules set their factories up; each gets the fleet's scale sets of its kind. */
  readonly setup: Omit<ProviderSetupOptions, 'scaleSets'>;
}

export interface ProviderRegistry {
  /** Known kinds, sorted. */
  readonly kinds: readonly string[];
  /** The factory of `kind`; rejects with ProviderError `unknown-provider-kind` listing the known kinds. */
  factory(kind: string): Promise<ProviderFactory<unknown>>;
  /**
   * The provider of one scale set: its `provider` block validated by the factory's schema (ProviderError
   * `invalid-provider-config` naming each problem's path), then handed to the factory.
   */
  providerFor(scaleSet: ScaleSetConfig, context: ProviderBaseContext): Promise<Provider>;
  /** Closes every factory set up so far. */
  close(): Promise<void>;
}

export function createProviderRegistry(options: ProviderRegistryOptions): ProviderRegistry {
  const modules = new Map<string, ProviderModule<unknown>>(
    (options.modules ?? (providerModules as readonly ProviderModule<unknown>[])).map((m) => [m.kind, m]),
  );
  const overrides = new Map(Object.entries(options.overrides ?? {}));
  const kinds = [...new Set([...modules.keys(), ...overrides.keys()])].sort();
  const loaded = new Map<string, Promise<ProviderFactory<unknown>>>();

  async function load(kind: string): Promise<ProviderFactory<unknown>> {
    const override = overrides.get(kind);
    const module = modules.get(kind);
    let factory: ProviderFactory<unknown>;
    if (override !== undefined) factory = typeof override === 'function' ? await override() : override;
    else if (module !== undefined) {
      const scaleSets = options.setup.fleet.scaleSets.filter((s) => s.provider.kind === kind);
      factory = await module.setup({ ...options.setup, scaleSets });
    } else {
      throw new ProviderError(
        `unknown provider kind ${JSON.stringify(kind)}; known kinds: ${kinds.join(', ')}`,
        {
          code: 'unknown-provider-kind',
          retryable: false,
        },
      );
    }
    if (factory.kind !== kind) {
      throw new ProviderError(`provider registered as ${kind} reports kind ${factory.kind}`, {
        code: 'provider-kind-mismatch',
        retryable: false,
      });
    }
    return factory;
  }

  function factory(kind: string): Promise<ProviderFactory<unknown>> {
    let promise = loaded.get(kind);
    if (promise === undefined) {
      promise = load(kind);
      // A failed load (unknown kind, refused set-up) is not cached: the error stays visible on every call.
      promise.catch(() => loaded.delete(kind));
      loaded.set(kind, promise);
    }
    return promise;
  }

  async function providerFor(scaleSet: ScaleSetConfig, context: ProviderBaseContext): Promise<Provider> {
    const kind = scaleSet.provider.kind;
    let chosen: ProviderFactory<unknown>;
    try {
      chosen = await factory(kind);
    } catch (error) {
      if (!(error instanceof ProviderError)) throw error;
      throw new ProviderError(`scale set ${scaleSet.name}: ${error.message}`, {
        code: error.code,
        retryable: error.retryable,
        cause: error,
      });
    }
    const parsed = chosen.schema.safeParse(scaleSet.provider);
    if (!parsed.success) {
      const problems = parsed.error.issues.map((i) =>
        `provider.${i.path.join('.')}: ${i.message}`.replace(/\.:/, ':'),
      );
      throw new ProviderError(
        `scale set ${scaleSet.name}: invalid ${kind} provider block: ${problems.join('; ')}`,
        {
          code: 'invalid-provider-config',
          retryable: false,
        },
      );
    }
    return chosen.create(parsed.data, { ...context, scaleSet });
  }

  async function close(): Promise<void> {
    const factories = await Promise.allSettled(loaded.values());
    await Promise.allSettled(
      factories.flatMap((f) => (f.status === 'fulfilled' && f.value.close ? [f.value.close()] : [])),
    );
  }

  return { kinds, factory, providerFor, close };
}
