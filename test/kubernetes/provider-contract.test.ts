/**
 * The shared provider contract, run against the kubernetes provider on the real test control plane: the provider
 * acts with the controller's least-privilege ServiceAccount token (the Roles of rbac-rules.ts, nothing more), kwok
 * plays the kubelet and a runner stand-in makes pods exit the way their Secret asks.
 */
import { randomBytes } from 'node:crypto';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { pino } from 'pino';
import { describe } from 'vitest';
import { runProviderContract } from '../support/provider-contract.js';
import { createKubernetesProviderFactory } from '../../src/providers/kubernetes/index.js';
import { kubernetesProviderSchema } from '../../src/providers/kubernetes/schema.js';
import type { InstanceSpec } from '../../src/providers/provider.js';
import { scaleSetConfig } from './fixtures.js';
import { createTestNamespace, requireCluster, startTestCluster } from './helpers.js';
import { installController } from './rbac-fixture.js';
import { startRunnerStandIn } from './runner-stand-in.js';

describe.skipIf(!requireCluster('kubernetes provider contract'))('kubernetes', () => {
  runProviderContract('kubernetes', async () => {
    const cluster = await startTestCluster();
    const namespace = await createTestNamespace(cluster, 'rf-contract');
    const home = await createTestNamespace(cluster, 'rf-home');
    const controller = await installController(cluster, home, [
      { namespace, runners: true, controller: false, features: ['createServiceAccount'] },
    ]);
    const logger = pino({ level: 'silent' });
    const fleet = `contract-${randomBytes(3).toString('hex')}`;
    const scaleSet = scaleSetConfig('contract', { namespace });
    const config = kubernetesProviderSchema.parse(scaleSet.provider);

    const factory = createKubernetesProviderFactory({ kubeConfig: controller.kubeConfig });
    const provider = factory.create(config, { fleet, scaleSet, logger });
    await provider.prepare(AbortSignal.timeout(60_000));

    // Same provider, unreachable API server.
    const nowhere = new KubeConfig();
    nowhere.loadFromOptions({
      clusters: [{ name: 'x', server: 'https://127.0.0.1:1', skipTLSVerify: true }],
      users: [{ name: 'x', token: 'x' }],
      contexts: [{ name: 'x', cluster: 'x', user: 'x' }],
      currentContext: 'x',
    });
    const failingFactory = createKubernetesProviderFactory({ kubeConfig: nowhere, nativeSidecars: true });
    const failingProvider = failingFactory.create(config, { fleet, scaleSet, logger });

    const standIn = await startRunnerStandIn(cluster.kubeConfig(), namespace);

    return {
      provider,
      failingProvider,
      makeSpec(name, options = {}): InstanceSpec {
        // The stand-in reads the outcome from the secret, as an emulated runner would from its JIT config.
        const tagged = `s-${options.outcome ?? 'hold'}-${randomBytes(12).toString('hex')}`;
        return {
          name,
          fleet,
          scaleSet: scaleSet.name,
          registration:
            options.mode === 'token'
              ? {
                  mode: 'token',
                  url: 'https://github.com/octo-org',
                  token: tagged,
                  labels: ['linux'],
                  runnerGroup: 'Default',
                  ephemeral: true,
                }
              : { mode: 'jit', jitConfig: tagged },
        };
      },
      async cleanup() {
        await standIn.stop();
        await provider.close?.();
        await failingProvider.close?.();
        await factory.close();
        await failingFactory.close();
        const core = cluster.kubeConfig().makeApiClient(CoreV1Api);
        await Promise.all(
          [namespace, home].map((name) => core.deleteNamespace({ name }).catch(() => undefined)),
        );
        await cluster.stop();
      },
    };
  });
});
