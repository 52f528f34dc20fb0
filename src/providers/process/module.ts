/** The `process` kind: runners as local child processes (src/providers/process). */
import type { ProviderModule } from '../provider.js';
import type { ProcessProviderConfig } from './schema.js';
import { processProviderSchema } from './schema.js';

export const processModule = {
  kind: 'process' as const,
  schema: processProviderSchema,
  async setup({ env }) {
    const { createProcessProviderFactory, DEFAULT_PATH } = await import('./index.js');
    // Runners get a clean environment: PATH only, never the controller's own secrets.
    return createProcessProviderFactory({ baseEnv: { PATH: env.PATH ?? DEFAULT_PATH } });
  },
} satisfies ProviderModule<ProcessProviderConfig>;
