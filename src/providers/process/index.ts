/** The `process` provider: runners as local child processes. See docs/providers.md. */
import type { ProviderFactory } from '../provider.js';
import type { ProcessProviderOptions } from './process-provider.js';
import { ProcessProvider } from './process-provider.js';
import type { ProcessProviderConfig } from './schema.js';
import { processProviderSchema } from './schema.js';

export {
  DEFAULT_PATH,
  JIT_CONFIG_ENV,
  ProcessProvider,
  TOKEN_CONFIG_FILE_ENV,
  TOKEN_ENV,
  type ProcessProviderOptions,
} from './process-provider.js';
export type { ProcessProviderConfig } from './schema.js';

/** A factory whose providers share `options` (base environment, timers); the composition root builds it. */
export function createProcessProviderFactory(
  options: ProcessProviderOptions = {},
): ProviderFactory<ProcessProviderConfig> {
  return {
    kind: 'process',
    schema: processProviderSchema,
    create: (config, context) => new ProcessProvider(config, context, options),
  };
}

/** Runners start from a standard PATH only; pass `baseEnv` to createProcessProviderFactory to give them more. */
export const processProviderFactory = createProcessProviderFactory();
