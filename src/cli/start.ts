import { parseArgs } from 'node:util';
import { formatProblem, loadConfig } from '../config/index.js';
import type { Command } from './command.js';
import { UsageError } from './command.js';
import { composeController } from './compose.js';

const usage = `Usage: runner-fleet start --config fleet.yaml [--log-level info]

Runs the controller: receives workflow_job webhooks, creates JIT-configured runners on the configured providers,
and removes them when they are done. Stops gracefully on SIGINT or SIGTERM.

Options:
  --config F       the fleet.yaml to run (required)
  --log-level L    trace, debug, info (default), warn, error, silent
`;

export const command: Command = {
  summary: 'Run the controller for a fleet.yaml',
  usage,
  async run(argv, io) {
    let values;
    try {
      ({ values } = parseArgs({
        args: argv,
        options: { config: { type: 'string' }, 'log-level': { type: 'string' } },
        strict: true,
      }));
    } catch (error) {
      throw new UsageError((error as Error).message);
    }
    if (!values.config) throw new UsageError('--config is required');
    const loaded = loadConfig(values.config, { env: io.env });
    if (!loaded.ok) {
      for (const problem of loaded.problems) io.stderr.write(`${formatProblem(problem)}\n`);
      io.stderr.write(`runner-fleet start: ${loaded.problems.length} problem(s) in ${values.config}\n`);
      return 2;
    }
    const level = (values['log-level'] ?? 'info') as 'info';
    const controller = await composeController({ config: loaded.config, env: io.env, logLevel: level });
    const stopped = new Promise<void>((resolve) => {
      const stop = (signal: string) => {
        controller.logger.info({ signal }, 'stopping');
        void controller.stop().then(resolve, resolve);
      };
      process.once('SIGINT', () => stop('SIGINT'));
      process.once('SIGTERM', () => stop('SIGTERM'));
    });
    try {
      await controller.start();
    } catch (error) {
      controller.logger.error({ error }, 'controller failed to start');
      await controller.stop();
      io.stderr.write(`runner-fleet start: ${(error as Error).message}\n`);
      return 1;
    }
    await stopped;
    return 0;
  },
};
