/** The `sim` provider block: virtual instances in the GitHub simulator's compute API (`/_sim/instances`). */
import { z } from 'zod';
import { duration } from '../../lib/duration.js';
import { httpUrl } from '../../lib/zod-formats.js';

export const simProviderSchema = z
  .strictObject({
    kind: z.literal('sim').describe('Selects the sim provider.'),
    url: httpUrl()
      .optional()
      .describe('Base URL of the simulator. Default: the origin of `github.apiUrl` (filled in at load).'),
    bootDelay: duration({ max: 3_600_000 })
      .prefault(0)
      .describe('Simulated boot time before an instance starts its emulated runner.'),
  })
  .describe(
    'Virtual instances hosted by the GitHub simulator (`runner-fleet simulate`); each runs an emulated runner. ' +
      'For the demo, benchmarks and trying a config without an account.',
  );

export type SimProviderConfig = z.output<typeof simProviderSchema>;
