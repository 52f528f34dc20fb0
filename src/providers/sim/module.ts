/** The `sim` kind: virtual instances in the GitHub simulator's compute API (src/providers/sim). */
import type { ProviderModule } from '../provider.js';
import type { SimProviderConfig } from './schema.js';
import { simProviderSchema } from './schema.js';

export const simModule = {
  kind: 'sim' as const,
  schema: simProviderSchema,
  async setup() {
    return (await import('./index.js')).simProviderFactory;
  },
} satisfies ProviderModule<SimProviderConfig>;
