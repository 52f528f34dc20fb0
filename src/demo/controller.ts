/**
 * The demo's controller: exactly the one `start` runs (composeController), with the dashboard mounted, and its log
 * in a file. Kept apart from the CLI module so `runner-fleet --help` does not load the whole controller.
 */
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import type { Controller } from '../app/compose.js';
import { composeController } from '../app/compose.js';
import type { FactorySource } from '../providers/registry.js';
import { createFleetDashboard } from '../dashboard/index.js';
import { createLogger } from '../telemetry/logger.js';
import type { Logger } from '../telemetry/logger.js';
import type { ControllerFactory } from './run-demo.js';

/**
 * `env` is the CLI's environment: only PATH is passed on to runner processes. `providerFactories` adds providers
 * built by the CLI (the kubernetes one, with its KubeConfig).
 */
export function demoControllerFactory(
  env: Readonly<Record<string, string | undefined>>,
  providerFactories?: Readonly<Record<string, FactorySource>>,
): ControllerFactory {
  return async ({ config, logger, secrets }) => {
    let controller: Controller | null = null;
    const dashboard = createFleetDashboard({
      fleetName: config.name,
      knownSecrets: secrets,
      github: () => controller?.github,
    });
    controller = await composeController({
      config,
      logger,
      dashboard,
      env: { PATH: env.PATH },
      ...(providerFactories ? { providerFactories } : {}),
    });
    const composed = controller;
    try {
      const url = await composed.start();
      return {
        url,
        readModel: composed.readModel,
        providers: composed.providers,
        apiCallsByStatus: () => composed.github.apiCallCount().byStatus,
        stop: async () => {
          await composed.stop();
        },
      };
    } catch (error) {
      await composed.stop();
      throw error;
    }
  };
}

/** The controller's (and simulator's) log: JSON lines in a 0600 file, with the demo's secrets scrubbed. */
export function fileLogger(
  file: string,
  secrets: readonly string[],
): { logger: Logger; close(): Promise<void> } {
  const stream = createWriteStream(file, { flags: 'a', mode: 0o600 });
  return {
    logger: createLogger({ level: 'info', destination: stream, knownSecrets: secrets }),
    close: async () => {
      stream.end();
      await once(stream, 'close');
    },
  };
}
