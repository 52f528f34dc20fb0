/**
 * The provider contract for `ec2`: the provider against moto, its instances played by the EC2 machine bridge
 * (src/sim/ec2-bridge), which runs each instance's user data with a local IMDSv2 stand-in, reads the runner
 * parameter from moto's SSM as the instance would, and runs the runner emulator against the GitHub simulator.
 *
 * The contract checks that state follows the hosted runner (succeeded in JIT and token mode, failed with a message).
 * Without instances that really run a runner those checks could only be faked, so until the bridge exists this suite
 * is skipped, loudly. What the bridge module must export is `Ec2MachineBridgeModule` below (the fixture hook); the
 * provider-side checks that need no runner run in ec2-provider.test.ts.
 */
import { existsSync } from 'node:fs';
import { describe, it } from 'vitest';
import type { Ec2UserDataRenderer } from '../../src/providers/ec2/index.js';
import { createEc2ProviderFactory, ec2ProviderSchema } from '../../src/providers/ec2/index.js';
import { runProviderContract } from '../support/provider-contract.js';
import { simSpecMaker } from '../../src/providers/sim/registrations.test-helpers.js';
import type { Simulator } from '../../src/sim/github/index.js';
import { startSimulator } from '../../src/sim/github/index.js';
import { startAwsFaultProxy } from '../support/aws-fault-proxy.js';
import { MOTO_CREDENTIALS, requireAwsPeers, startMoto } from '../support/moto.js';
import { buildAwsWorld, observedContext, PROFILE, REGION } from './ec2-fixtures.js';

/** FIXTURE HOOK: what src/sim/ec2-bridge/index.ts must export for this suite to run. */
export interface Ec2MachineBridgeModule {
  startEc2Bridge(options: {
    /** moto, where the bridge finds the instances to play and their parameters. */
    readonly endpoint: string;
    readonly region: string;
    readonly credentials: { readonly accessKeyId: string; readonly secretAccessKey: string };
    /** The GitHub simulator the emulated runners register with. */
    readonly simulator: Simulator;
    /** Play only the instances tagged runner-fleet:fleet with this value. */
    readonly fleet?: string;
  }): Promise<Ec2MachineBridge>;
}

export interface Ec2MachineBridge {
  /** The start script the controller renders for imageId launches (src/aws/user-data.ts). */
  readonly renderUserData: Ec2UserDataRenderer;
  /**
   * The bridge reports a runner's end as the start script does on EC2: the instance shuts itself down
   * (StateReason Client.InstanceInitiatedShutdown), or, where moto cannot show that, it tags its exit code
   * (runner-fleet:exit-code, see TAG_EXIT_CODE) before it terminates.
   */
  stop(): Promise<void>;
}

const BRIDGE = new URL('../../src/sim/ec2-bridge/index.ts', import.meta.url);
const FLEET = 'contract-fleet';
const SCALE_SET = 'linux-small';

async function loadBridge(): Promise<Ec2MachineBridgeModule> {
  // A computed specifier: the module is built separately and may not exist in this checkout.
  const specifier = '../../src/sim/ec2-bridge/index.js';
  return (await import(/* @vite-ignore */ specifier)) as Ec2MachineBridgeModule;
}

const peers = requireAwsPeers('aws/ec2-contract');
const bridgeBuilt = existsSync(BRIDGE);

if (peers && bridgeBuilt) {
  runProviderContract(
    'ec2 (moto, instances played by the EC2 machine bridge)',
    async () => {
      const moto = await startMoto();
      const proxy = await startAwsFaultProxy(moto.url);
      const world = await buildAwsWorld(moto);
      const sim = await startSimulator();
      const bridge = await (
        await loadBridge()
      ).startEc2Bridge({
        endpoint: moto.url,
        region: REGION,
        credentials: MOTO_CREDENTIALS,
        simulator: sim,
        fleet: FLEET,
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
        renderUserData: bridge.renderUserData,
        timings: { reuseMs: 0 },
      });
      const provider = factory.create(block, observedContext(FLEET, SCALE_SET).context);
      await provider.prepare(AbortSignal.timeout(60_000));
      // Nothing listens on port 1: every call is refused.
      const failing = createEc2ProviderFactory({
        endpoint: 'http://127.0.0.1:1',
        credentials: MOTO_CREDENTIALS,
        renderUserData: bridge.renderUserData,
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
    { stateTimeoutMs: 90_000 },
  );
} else {
  if (peers) {
    const message =
      '[aws/ec2-contract] SKIPPED: src/sim/ec2-bridge (the EC2 machine bridge) is not in this checkout; the ' +
      'contract needs instances that run a runner. See Ec2MachineBridgeModule in this file.';
    console.warn(`\n${'!'.repeat(100)}\n${message}\n${'!'.repeat(100)}\n`);
  }
  describe.skip('provider contract: ec2 (needs the EC2 machine bridge)', () => {
    it('runs the provider contract against moto with instances played by the bridge', () => undefined);
  });
}
