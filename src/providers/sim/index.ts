/** The `sim` provider: virtual instances in the GitHub simulator's compute API. See docs/providers.md. */
import type { ProviderFactory } from '../provider.js';
import type { SimProviderOptions } from './sim-provider.js';
import { SimProvider } from './sim-provider.js';
import type { SimProviderConfig } from './schema.js';
import { simProviderSchema } from './schema.js';

export { SimProvider, type SimProviderOptions } from './sim-provider.js';
export type { SimProviderConfig } from './schema.js';

/** A factory whose providers share `options` (fetch, timers, poll interval); the composition root builds it. */
export function createSimProviderFactory(
  options: SimProviderOptions = {},
): ProviderFactory<SimProviderConfig> {
  return {
    kind: 'sim',
    schema: simProviderSchema,
    create: (config, context) => new SimProvider(config, context, options),
  };
}

export const simProviderFactory = createSimProviderFactory();
