/**
 * The runner command runs under a tiny POSIX sh wrapper, the leader of the runner's own process group and session.
 * The wrapper records its pid, runs the command, then records the exit code in a file, so the outcome of a runner
 * that ends while the controller is down is still known after a restart. The wrapper's argv holds only the command
 * and its non-secret arguments; secrets travel in the environment (or the 0600 token file), never in argv.
 */
import { FILES } from './instance-files.js';

const SCRIPT = [
  `echo "$$" > ${FILES.wrapperPid}`,
  '"$@"',
  'code=$?',
  // The registration token is reusable for an hour: do not leave it on disk once the runner is gone.
  `rm -f ${FILES.tokenConfig}`,
  `echo "$code" > ${FILES.exitCode}.tmp && mv -f ${FILES.exitCode}.tmp ${FILES.exitCode}`,
  'exit "$code"',
].join('\n');

export const WRAPPER_SHELL = '/bin/sh';

/** Arguments for `/bin/sh`: the script, its $0, then the runner command and its arguments. */
export function wrapperArgs(command: string, args: readonly string[]): string[] {
  return ['-c', SCRIPT, 'runner-fleet-wrapper', command, ...args];
}
