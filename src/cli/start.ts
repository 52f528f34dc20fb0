import type { Command } from './command.js';
import type { FleetFlags } from './fleet-options.js';
import { loadFleetConfig, parseFleetArgs } from './fleet-options.js';
import { SHUTDOWN } from '../app/compose.js';
import { wantsLeaderElection } from '../app/kube-options.js';
import { runController } from '../app/run-controller.js';

const usage = `Usage: runner-fleet start --config fleet.yaml [--kubeconfig F] [--aws-endpoint URL] [--leader-election]
                          [--log-level info]

Runs the controller: receives workflow_job webhooks, creates JIT-configured runners on the configured providers,
and removes them when they are done, and serves the dashboard at / and the API at /api/v1. Stops gracefully on
SIGINT or SIGTERM, within 10 s whatever GitHub or a provider does (calls in flight are aborted).

Before anything else it checks that the GitHub App grants the permissions each scope needs and subscribes to
workflow_job, and refuses to start, naming each missing one and its fix, when one is missing. When a scale set runs
on Kubernetes (or leader election is on) it then checks its own Kubernetes permissions and refuses to start, listing
each missing rule and the manifest that grants it, when any is missing. When a scale set runs on EC2 it checks
its AWS access (identity, launch templates, subnets, SSM prefixes writable) and refuses, listing each failing check.

GitHub and AWS calls go through HTTPS_PROXY (HTTP_PROXY for http:// URLs) unless NO_PROXY names the host.

Options:
  --config F              the fleet.yaml to run (required)
  --kubeconfig F          Kubernetes credentials (default: $KUBECONFIG, ~/.kube/config, or the pod's ServiceAccount)
  --aws-endpoint URL      endpoint of every AWS call of the ec2 scale sets, over their \`endpoint\` (e.g. a local
                          moto server); credentials come from AWS_* variables or the AWS SDK's default chain
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

/**
 * Aborted on the first SIGINT or SIGTERM, which also arms a watchdog: a stop that has not ended the process within
 * `boundMs` (it is bounded by design; this is the guarantee) exits it with status 1, saying so on stderr.
 */
function stopRequested(
  stderr: NodeJS.WritableStream,
  boundMs: number,
): { readonly signal: AbortSignal; dispose(): void } {
  const abort = new AbortController();
  let watchdog: NodeJS.Timeout | undefined;
  const stop = (signal: NodeJS.Signals) => {
    abort.abort(signal);
    watchdog = setTimeout(() => {
      stderr.write(`runner-fleet start: the shutdown did not end within ${boundMs / 1000} s; exiting\n`);
      process.exit(1);
    }, boundMs);
    // It must not be what keeps a finished process alive.
    watchdog.unref();
  };
  const onInt = () => stop('SIGINT');
  const onTerm = () => stop('SIGTERM');
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

export const command: Command = {
  summary: 'Run the controller for a fleet.yaml',
  usage,
  // A call abandoned at shutdown (GitHub not answering) must not keep the process alive once the controller stopped.
  exitWhenDone: true,
  async run(argv, io) {
    const flags = parse(argv);
    const config = loadFleetConfig('start', flags.config, io);
    if (config === 2) return 2;
    const stop = stopRequested(io.stderr, SHUTDOWN.totalMs);
    try {
      return await runController({
        config,
        env: io.env,
        ...(flags.kubeconfig !== undefined ? { kubeconfig: flags.kubeconfig } : {}),
        ...(flags.awsEndpoint !== undefined ? { awsEndpoint: flags.awsEndpoint } : {}),
        leaderElection: wantsLeaderElection(flags, io.env),
        ...(flags.leaseName !== undefined ? { leaseName: flags.leaseName } : {}),
        ...(flags.leaseNamespace !== undefined ? { leaseNamespace: flags.leaseNamespace } : {}),
        logLevel: flags.logLevel as 'info',
        stop: stop.signal,
        stderr: io.stderr,
      });
    } finally {
      stop.dispose();
    }
  },
};
