/** The `process` provider block: each runner is a local child process of the controller. */
import { z } from 'zod';
import { duration } from '../../lib/duration.js';
import { nonEmpty } from '../../lib/zod-formats.js';

/** Environment the provider sets itself; a user value would be overwritten or leak a secret's name into config. */
// Set by the provider itself to hand the runner its registration; a user value would be overridden or leak.
const RESERVED_ENV = [
  'ACTIONS_RUNNER_INPUT_JITCONFIG',
  'ACTIONS_RUNNER_INPUT_TOKEN',
  'RUNNER_FLEET_TOKEN_CONFIG_FILE',
];

export const processProviderSchema = z
  .strictObject({
    kind: z.literal('process').describe('Selects the process provider.'),
    command: nonEmpty().describe(
      'Executable started for each runner (e.g. /opt/actions-runner/run.sh, or the runner emulator).',
    ),
    args: z
      .array(z.string())
      .max(256, { error: 'at most 256 arguments' })
      .optional()
      .describe('Arguments passed to the command. Never carries a secret.'),
    workDir: nonEmpty()
      .default('./runner-fleet-work')
      .describe('Parent directory of the per-runner work directories, state and log files.'),
    env: z
      .record(
        z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, {
          error: 'environment variable names are [A-Za-z_][A-Za-z0-9_]*',
        }),
        z.string({ error: 'expected a string value (quote numbers and booleans)' }),
      )
      .superRefine((env, ctx) => {
        for (const name of Object.keys(env)) {
          if (RESERVED_ENV.includes(name)) {
            ctx.addIssue({
              code: 'custom',
              path: [name],
              message: `${name} is set by runner-fleet; remove it`,
              params: { target: 'key' },
            });
          }
        }
      })
      .optional()
      .describe(
        'Extra environment for the runner process. The JIT config arrives as ACTIONS_RUNNER_INPUT_JITCONFIG.',
      ),
    stopGracePeriod: duration({ max: 3_600_000 })
      .prefault('10s')
      .describe('Time between SIGTERM and SIGKILL when a runner process is deleted.'),
  })
  .describe('Runs each runner as a local child process, in its own work directory under `workDir`.');

export type ProcessProviderConfig = z.output<typeof processProviderSchema>;
