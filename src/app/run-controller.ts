/**
 * What `start` runs: the controller composed with the fleet's providers (each kind set up, and the controller's
 * rights on its platform checked, before anything acts), then either alone until asked to stop, or as one candidate of
 * a leader election on a Kubernetes Lease. Returns the process exit status: 0 after a requested stop, 1 when the
 * controller refused or failed to start (the reason is on stderr), or lost leadership.
 *
 * A stop request is honoured at any point, start-up included: the set-up, the first resync and every call out end
 * at once, and the controller's stop is bounded (compose.ts SHUTDOWN).
 *
 * The Kubernetes client (@kubernetes/client-node) is loaded only when leader election needs it (a Kubernetes provider
 * loads it itself): loaded, its modules and their source text take some 27 MB of heap and 60 MB resident.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import type { FleetConfig } from '../core/fleet-config.js';
import type { LogLevel } from '../telemetry/index.js';
import type { Controller } from './compose.js';
import { composeController } from './compose.js';
import { githubPreflight } from './github-preflight.js';
import type { LeaderElectionSettings } from './kube-options.js';
import { leaderElectionSettings } from './kube-options.js';

export interface RunControllerOptions {
  readonly config: FleetConfig;
  /** The command's environment: providers read PATH, KUBECONFIG, AWS_*; leader election its RUNNER_FLEET_* values. */
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly kubeconfig?: string;
  readonly awsEndpoint?: string;
  /** Elect a leader on a Lease (`--leader-election` or RUNNER_FLEET_LEADER_ELECTION=true). */
  readonly leaderElection: boolean;
  readonly leaseName?: string;
  readonly leaseNamespace?: string;
  readonly logLevel: LogLevel;
  /** Aborted on SIGINT/SIGTERM. */
  readonly stop: AbortSignal;
  /** Where a refusal's reason goes; prefixed `runner-fleet start:`. */
  readonly stderr: NodeJS.WritableStream;
}

interface Election {
  readonly kubeConfig: KubeConfig;
  readonly settings: LeaderElectionSettings;
}

export async function runController(options: RunControllerOptions): Promise<number> {
  const { config, stderr } = options;
  const fail = (message: string): number => {
    stderr.write(`runner-fleet start: ${message.endsWith('\n') ? message : `${message}\n`}`);
    return 1;
  };
  let election: Election | undefined;
  if (options.leaderElection) {
    let kubeConfig: KubeConfig;
    try {
      const { loadKubeConfig } = await import('../kubernetes/kubeconfig.js');
      kubeConfig = loadKubeConfig(options.kubeconfig);
    } catch (error) {
      return fail((error as Error).message);
    }
    const settings = leaderElectionSettings(kubeConfig, config, options, options.env as NodeJS.ProcessEnv);
    election = { kubeConfig, settings };
    if (!config.scaleSets.some((s) => s.provider.kind === 'kubernetes')) {
      // No Kubernetes scale set checks the Lease rights with its own: check them here.
      const refusal = await leaseRightsRefusal(kubeConfig, config, settings);
      if (refusal !== null) return fail(refusal);
    }
  }
  // GitHub first: missing App permissions or events refuse the start before anything else is set up.
  let installationIds: ReadonlyMap<string, number>;
  try {
    const github = await githubPreflight(config, { env: options.env });
    if (github.refusal !== null) return fail(`refusing to start: ${github.refusal}`);
    for (const warning of github.warnings) stderr.write(`runner-fleet start: warning: ${warning}\n`);
    installationIds = github.installationIds;
  } catch (error) {
    return fail((error as Error).message);
  }
  let controller: Controller;
  try {
    controller = await composeController({
      config,
      env: options.env,
      logLevel: options.logLevel,
      checkAccess: true,
      signal: options.stop,
      // The preflight read each scope's installation: the client does not ask again.
      github: { installationIds },
      connection: {
        ...(options.kubeconfig !== undefined ? { kubeconfig: options.kubeconfig } : {}),
        ...(options.awsEndpoint !== undefined ? { awsEndpoint: options.awsEndpoint } : {}),
      },
      ...(election
        ? {
            leaderElection: {
              namespace: election.settings.namespace,
              leaseName: election.settings.leaseName,
            },
          }
        : {}),
    });
  } catch (error) {
    if (options.stop.aborted) return 0;
    return fail((error as Error).message);
  }
  if (election) {
    const { runWithLeaderElection } = await import('./leadership.js');
    return runWithLeaderElection({
      controller,
      kubeConfig: election.kubeConfig,
      election: election.settings,
      stop: options.stop,
      stderr,
    });
  }
  return runAlone(controller, options.stop, stderr);
}

async function leaseRightsRefusal(
  kubeConfig: KubeConfig,
  config: FleetConfig,
  settings: LeaderElectionSettings,
): Promise<string | null> {
  const { checkControllerRightsForFleet } = await import('../providers/kubernetes/doctor.js');
  try {
    const rights = await checkControllerRightsForFleet(kubeConfig, config, {
      controllerNamespace: settings.namespace,
      leaderElection: true,
      leaseName: settings.leaseName,
      signal: AbortSignal.timeout(60_000),
    });
    return rights.ok ? null : `refusing to start.\n${rights.message}`;
  } catch (error) {
    return (
      `cannot check the controller's Kubernetes permissions on ` +
      `${kubeConfig.getCurrentCluster()?.server ?? 'the cluster'}: ${(error as Error).message}`
    );
  }
}

function aborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener('abort', () => resolve(), { once: true });
  });
}

/** Without leader election: start at once, run until stopped (a stop during the start-up included). */
async function runAlone(
  controller: Controller,
  stop: AbortSignal,
  stderr: NodeJS.WritableStream,
): Promise<number> {
  const started = controller.start().then(
    () => null,
    (error: unknown) => error as Error,
  );
  const failed = await Promise.race([started, aborted(stop).then(() => null)]);
  if (failed !== null && !stop.aborted) {
    controller.logger.error({ err: failed }, 'controller failed to start');
    await controller.stop();
    stderr.write(`runner-fleet start: ${failed.message}\n`);
    return 1;
  }
  await aborted(stop);
  controller.logger.info({ signal: stop.reason as string }, 'stopping');
  // The stop ends the start-up too, if it is still going; it is bounded, whatever the start-up waits for.
  await controller.stop();
  return 0;
}
