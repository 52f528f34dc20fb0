/**
 * The provider contract for `ec2`: the provider against moto (through the fault proxy), its instances played by the
 * EC2 bridge (src/sim/ec2-bridge), which runs each instance's user data (runner-fleet's start script, rendered by the
 * ec2 module's renderer) with bash against an IMDSv2 stand-in: the start script reads and deletes the runner parameter
 * in moto's SSM as the instance would, starts the runner emulator against the GitHub simulator, tags the instance
 * with the runner's exit code and shuts it down. State follows the runner in JIT and token mode: moto shows every
 * end as user-initiated, so `succeeded` and `failed` come from the exit-code tag the start script set.
 */
import { describe } from 'vitest';
import { createEc2ProviderFactory, ec2ProviderSchema } from '../../src/providers/ec2/index.js';
import { renderEc2UserData } from '../../src/providers/ec2/user-data.js';
import { simSpecMaker } from '../../src/providers/sim/registrations.test-helpers.js';
import { startEc2Bridge } from '../../src/sim/ec2-bridge/index.js';
import { startSimulator } from '../../src/sim/github/index.js';
import { startAwsFaultProxy } from '../support/aws-fault-proxy.js';
import { emulatorCommand } from '../support/ec2-machines.js';
import { MOTO_CREDENTIALS, awsPeersBin, requireAwsPeers, startMoto } from '../support/moto.js';
import { runProviderContract } from '../support/provider-contract.js';
import { buildAwsWorld, observedContext, PROFILE, REGION } from './ec2-fixtures.js';

const FLEET = 'contract-fleet';
const SCALE_SET = 'linux-small';

describe.skipIf(!requireAwsPeers('aws/ec2-contract'))('ec2 provider contract on moto', () => {
  runProviderContract(
    'ec2 (moto, instances played by the EC2 bridge)',
    async () => {
      const moto = await startMoto();
      const proxy = await startAwsFaultProxy(moto.url);
      const world = await buildAwsWorld(moto);
      // A vanished runner is noticed within seconds, as the contract's deletes of holding runners need.
      const sim = await startSimulator({ orgs: ['octo-org'], runnerOfflineAfterMs: 2000 });
      const bridge = await startEc2Bridge({
        endpoint: moto.url,
        region: REGION,
        credentials: MOTO_CREDENTIALS,
        fleet: FLEET,
        runnerCommand: emulatorCommand(),
        path: [awsPeersBin()!],
        pollMs: 200,
        stopGraceMs: 3000,
      });
      const block = ec2ProviderSchema.parse({
        kind: 'ec2',
        region: REGION,
        imageId: world.imageId,
        instanceProfile: PROFILE,
        instanceTypes: ['t3.micro'],
        subnetIds: [world.subnetIds[0]],
      });
      const factory = createEc2ProviderFactory({
        endpoint: proxy.url,
        credentials: MOTO_CREDENTIALS,
        renderUserData: renderEc2UserData,
        timings: { reuseMs: 0 },
      });
      const provider = factory.create(block, observedContext(FLEET, SCALE_SET).context);
      await provider.prepare(AbortSignal.timeout(60_000));
      // Nothing listens on port 1: every call is refused.
      const failing = createEc2ProviderFactory({
        endpoint: 'http://127.0.0.1:1',
        credentials: MOTO_CREDENTIALS,
        renderUserData: renderEc2UserData,
        maxAttempts: 1,
      });
      return {
        provider,
        failingProvider: failing.create(block, observedContext(FLEET, SCALE_SET).context),
        makeSpec: simSpecMaker(sim, FLEET, SCALE_SET),
        async cleanup() {
          await bridge.stop();
          await factory.close();
          await failing.close();
          world.destroy();
          await sim.close();
          await proxy.close();
          await moto.stop();
        },
      };
    },
    { stateTimeoutMs: 90_000, watch: false },
  );
});
