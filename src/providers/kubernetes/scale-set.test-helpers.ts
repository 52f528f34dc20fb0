/** Test builder shared by the kubernetes provider's unit tests and the suites on the test control plane. */
import type { ScaleSetConfig } from '../../core/fleet-config.js';

/** A parsed scale set (what the config loader would produce); its provider block is of kind kubernetes unless given. */
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
