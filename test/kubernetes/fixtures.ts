/** Small builders shared by the kubernetes suites. */
import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import type { ScaleSetConfig } from '../../src/config/types.js';

/** A parsed scale set with a kubernetes provider block (what the config loader would produce). */
export function scaleSetConfig(
  name: string,
  provider: Record<string, unknown>,
  extra: Partial<ScaleSetConfig> = {},
): ScaleSetConfig {
  return {
    name,
    scope: { org: 'octo-org' },
    runnerGroup: 'Default',
    labels: ['linux'],
    minIdle: 0,
    max: 10,
    ephemeral: true,
    registration: 'jit',
    priority: 0,
    bootstrapTimeout: 300_000,
    idleTimeout: 300_000,
    provider: { kind: 'kubernetes', ...provider },
    ...extra,
  };
}

/** Request options for a JSON merge patch. */
export const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
