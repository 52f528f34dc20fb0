/**
 * Provider kind -> factory. The composition root builds one registry and asks it for the provider of each scale set.
 * Factories are loaded on first use, so a fleet that runs only local processes never loads the AWS or Kubernetes
 * SDKs.
 */
import type { ScaleSetConfig } from '../config/types.js';
import type { Provider, ProviderContext, ProviderFactory } from './provider.js';
import { ProviderError } from './provider.js';

/** A factory, or a function that loads one (a dynamic import). */
export type FactorySource = ProviderFactory<unknown> | (() => Promise<ProviderFactory<unknown>>);

/** Adding a provider is one line here (and its schema in schemas.ts). */
export const defaultFactories: Readonly<Record<string, FactorySource>> = {
  process: async () => (await import('./process/index.js')).processProviderFactory,
  sim: async () => (await import('./sim/index.js')).simProviderFactory,
};

/** What providerFor needs besides the scale set itself. */
export type ProviderBaseContext = Omit<ProviderContext, 'scaleSet'>;

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
}

export function createProviderRegistry(
  factories: Readonly<Record<string, FactorySource>> = defaultFactories,
): ProviderRegistry {
  const sources = new Map(Object.entries(factories));
  const loaded = new Map<string, Promise<ProviderFactory<unknown>>>();
  const kinds = [...sources.keys()].sort();

  async function load(kind: string): Promise<ProviderFactory<unknown>> {
    const source = sources.get(kind);
    if (source === undefined) {
      throw new ProviderError(
        `unknown provider kind ${JSON.stringify(kind)}; known kinds: ${kinds.join(', ')}`,
        {
          code: 'unknown-provider-kind',
          retryable: false,
        },
      );
    }
    const factory = typeof source === 'function' ? await source() : source;
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
      // A failed load (unknown kind, broken module) is not cached: the error stays visible on every call.
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

  return { kinds, factory, providerFor };
}
