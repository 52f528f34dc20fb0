import type { KubeConfig } from '@kubernetes/client-node';
import type { FleetConfig } from '../config/types.js';
import { checkControllerRightsForFleet } from '../providers/kubernetes/doctor.js';
import type { KubernetesProviderFactory } from '../providers/kubernetes/index.js';
import { createKubernetesProviderFactory } from '../providers/kubernetes/index.js';
import type { Command, CommandIo } from './command.js';
import type { Controller } from './compose.js';
import { composeController } from './compose.js';
import type { LeaderElectionSettings } from './kube-options.js';
import type { FleetFlags } from './fleet-options.js';
import { loadFleetConfig, parseFleetArgs } from './fleet-options.js';
import {
  leaderElectionSettings,
  loadKubeConfig,
  usesKubernetes,
  wantsLeaderElection,
} from './kube-options.js';
import { runWithLeaderElection } from './leadership.js';

const usage = `Usage: runner-fleet start --config fleet.yaml [--kubeconfig F] [--leader-election] [--log-level info]

Runs the controller: receives workflow_job webhooks, creates JIT-configured runners on the configured providers,
and removes them when they are done. Stops gracefully on SIGINT or SIGTERM.

When a scale set runs on Kubernetes (or leader election is on) the controller first checks its own Kubernetes
permissions and refuses to start, listing each missing rule and the manifest that grants it, when any is missing.

Options:
  --config F              the fleet.yaml to run (required)
  --kubeconfig F          Kubernetes credentials (default: $KUBECONFIG, ~/.kube/config, or the pod's ServiceAccount)
  --leader-election       elect one acting replica on a Lease (also: RUNNER_FLEET_LEADER_ELECTION=true); every
                          replica serves /healthz, only the leader acts and is ready (/readyz); a replica that
                          loses leadership exits with status 1
  --lease-name N          the Lease (default: $RUNNER_FLEET_LEASE_NAME or <fleet>-leader)
  --lease-namespace NS    its namespace (default: $POD_NAMESPACE, the kubeconfig's namespace, or default)
  --log-level L           trace, debug, info (default), warn, error, silent
`;

interface StartFlags extends FleetFlags {
  readonly logLevel: string;
}

function parse(argv: string[]): StartFlags {
  const { flags, extra } = parseFleetArgs(argv, { 'log-level': { type: 'string' } });
  return { ...flags, logLevel: extra['log-level'] ?? 'info' };
}

interface KubeSetup {
  readonly kubeConfig: KubeConfig;
  readonly election: LeaderElectionSettings;
  readonly factory: KubernetesProviderFactory;
}

/**
 * The KubeConfig and the start-up self-check, before anything else is built: a controller without its rights
 * would fail later, one runner at a time, with opaque errors. Returns an exit code when it must not start.
 */
async function prepareKubernetes(
  config: FleetConfig,
  flags: StartFlags,
  io: CommandIo,
): Promise<KubeSetup | number> {
  let kubeConfig: KubeConfig;
  try {
    kubeConfig = loadKubeConfig(flags.kubeconfig);
  } catch (error) {
    io.stderr.write(`runner-fleet start: ${(error as Error).message}\n`);
    return 1;
  }
  const election = leaderElectionSettings(kubeConfig, config, flags, io.env);
  try {
    const rights = await checkControllerRightsForFleet(kubeConfig, config, {
      controllerNamespace: election.namespace,
      leaderElection: election.enabled,
      leaseName: election.leaseName,
      signal: AbortSignal.timeout(60_000),
    });
    if (!rights.ok) {
      io.stderr.write(`runner-fleet start: refusing to start.\n${rights.message}`);
      if (!rights.message.endsWith('\n')) io.stderr.write('\n');
      return 1;
    }
  } catch (error) {
    io.stderr.write(
      `runner-fleet start: cannot check the controller's Kubernetes permissions on ` +
        `${kubeConfig.getCurrentCluster()?.server ?? 'the cluster'}: ${(error as Error).message}\n`,
    );
    return 1;
  }
  return { kubeConfig, election, factory: createKubernetesProviderFactory({ kubeConfig }) };
}

/** Resolves on the first SIGINT or SIGTERM. */
function stopRequested(): { readonly signal: AbortSignal; dispose(): void } {
  const abort = new AbortController();
  const onInt = () => abort.abort('SIGINT');
  const onTerm = () => abort.abort('SIGTERM');
  process.once('SIGINT', onInt);
  process.once('SIGTERM', onTerm);
  return {
    signal: abort.signal,
    dispose() {
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
    },
  };
}

/** Without leader election: start at once, run until SIGINT/SIGTERM. */
async function runAlone(controller: Controller, stop: AbortSignal, io: CommandIo): Promise<number> {
  try {
    await controller.start();
  } catch (error) {
    controller.logger.error({ err: error }, 'controller failed to start');
    await controller.stop();
    io.stderr.write(`runner-fleet start: ${(error as Error).message}\n`);
    return 1;
  }
  if (!stop.aborted) await new Promise((resolve) => stop.addEventListener('abort', resolve, { once: true }));
  controller.logger.info({ signal: stop.reason as string }, 'stopping');
  await controller.stop();
  return 0;
}

export const command: Command = {
  summary: 'Run the controller for a fleet.yaml',
  usage,
  async run(argv, io) {
    const flags = parse(argv);
    const config = loadFleetConfig('start', flags.config, io);
    if (config === 2) return 2;
    const wantsElection = wantsLeaderElection(flags, io.env);
    let kube: KubeSetup | undefined;
    if (usesKubernetes(config, wantsElection)) {
      const prepared = await prepareKubernetes(config, flags, io);
      if (typeof prepared === 'number') return prepared;
      kube = prepared;
    }
    const stop = stopRequested();
    let controller: Controller;
    try {
      controller = await composeController({
        config,
        env: io.env,
        logLevel: flags.logLevel as 'info',
        ...(kube ? { providerFactories: { kubernetes: kube.factory } } : {}),
      });
    } catch (error) {
      stop.dispose();
      await kube?.factory.close();
      io.stderr.write(`runner-fleet start: ${(error as Error).message}\n`);
      return 1;
    }
    try {
      if (kube?.election.enabled) {
        return await runWithLeaderElection({
          controller,
          kubeConfig: kube.kubeConfig,
          election: kube.election,
          stop: stop.signal,
          io,
        });
      }
      return await runAlone(controller, stop.signal, io);
    } finally {
      stop.dispose();
      await kube?.factory.close();
    }
  },
};
