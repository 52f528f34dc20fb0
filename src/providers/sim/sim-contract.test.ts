/** The provider contract for `sim`, against a real GitHub simulator whose instances host emulated runners. */
import { pino } from 'pino';
import type { ScaleSetConfig } from '../../core/fleet-config.js';
import { startSimulator } from '../../sim/github/index.js';
import { runProviderContract } from '../../../test/support/provider-contract.js';
import type { ProviderContext } from '../provider.js';
import { simSpecMaker } from './registrations.test-helpers.js';
import { SimProvider } from './sim-provider.js';

runProviderContract('sim (GitHub simulator)', async () => {
  const sim = await startSimulator();
  const context: ProviderContext = {
    fleet: 'contract-fleet',
    scaleSet: { name: 'linux-small' } as ScaleSetConfig,
    logger: pino({ level: 'silent' }),
  };
  const provider = new SimProvider({ kind: 'sim', url: sim.baseUrl, bootDelay: 50 }, context, {
    pollInterval: 100,
  });
  // Nothing listens on port 1: every request is refused.
  const failingProvider = new SimProvider({ kind: 'sim', url: 'http://127.0.0.1:1', bootDelay: 0 }, context);
  return {
    provider,
    failingProvider,
    makeSpec: simSpecMaker(sim, context.fleet, context.scaleSet.name),
    async cleanup() {
      await provider.close();
      await sim.close();
    },
  };
});
