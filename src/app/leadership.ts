/**
 * `start` with leader election: every replica listens (it serves /healthz, and /readyz says "not ready"), one
 * replica at a time holds the Lease and acts. On becoming the leader a replica first catches up on the webhook events
 * the previous leader received (takeover-catch-up.ts), then prepares its providers and starts its reconciler, which
 * makes it ready. A replica that loses leadership stops acting at once and exits with status 1: its state may be
 * stale, and Kubernetes restarts it as a fresh candidate.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import { LeaderElector } from '../kubernetes/leader-election.js';
import type { Controller } from './compose.js';
import { SHUTDOWN } from './compose.js';
import type { LeaderElectionSettings } from './kube-options.js';
import { catchUpAsLeader } from './takeover-catch-up.js';

export interface LeadershipOptions {
  readonly controller: Controller;
  readonly kubeConfig: KubeConfig;
  readonly election: LeaderElectionSettings;
  /** SIGINT/SIGTERM: stop acting, then release the Lease. */
  readonly stop: AbortSignal;
  /** Where the reason of a failure goes (the command's stderr). */
  readonly stderr: NodeJS.WritableStream;
}

function aborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener('abort', () => resolve(), { once: true });
  });
}

/** Runs until stopped (exit 0) or until leadership is lost or acting fails (exit 1). */
export async function runWithLeaderElection(options: LeadershipOptions): Promise<number> {
  const { controller, election, stderr } = options;
  const log = controller.logger.child({ component: 'leader-election' });
  // Ends the campaign: on SIGINT/SIGTERM, or when the leader cannot act.
  const end = new AbortController();
  const onStop = () => end.abort();
  options.stop.addEventListener('abort', onStop, { once: true });
  let failure: Error | undefined;
  try {
    const url = await controller.listen();
    log.info(
      { url, lease: `${election.namespace}/${election.leaseName}`, identity: election.identity },
      'standing by for leadership',
    );
    const elector = new LeaderElector({
      kubeConfig: options.kubeConfig,
      namespace: election.namespace,
      name: election.leaseName,
      identity: election.identity,
      logger: log,
      // The controller's stop is bounded; the elector waits a little longer before it gives up on it.
      stopTimeoutMs: SHUTDOWN.controllerMs + 1_000,
      // Settles only once the controller has stopped: the elector releases the Lease after that, not before, so a
      // successor never acts while this replica still creates runners. A stop that abandoned calls keeps the Lease
      // (it expires), as they might still be running.
      onStartedLeading: async (leading) => {
        // Leadership lost (or SIGTERM) while catching up or starting: stop at once, not after the start.
        const stopNow = () => void controller.stop();
        leading.addEventListener('abort', stopNow, { once: true });
        try {
          await catchUpAsLeader(controller, leading);
          if (!leading.aborted) await controller.start();
        } catch (error) {
          failure = error as Error;
          log.error({ err: error }, 'the leader could not start acting');
          end.abort();
        }
        await aborted(leading);
        const report = await controller.stop();
        return report.clean ? undefined : 'keep-lease';
      },
    });
    await elector.run(end.signal);
  } catch (error) {
    failure = error as Error;
  } finally {
    options.stop.removeEventListener('abort', onStop);
  }
  await controller.stop();
  if (failure !== undefined) {
    stderr.write(`runner-fleet start: ${failure.message}\n`);
    return 1;
  }
  if (options.stop.aborted) {
    log.info({ signal: options.stop.reason as string }, 'stopped');
    return 0;
  }
  log.error('leadership lost: exiting so that a fresh replica takes this one’s place');
  stderr.write('runner-fleet start: leadership lost\n');
  return 1;
}
