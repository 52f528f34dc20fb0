/**
 * Job hooks as actions/runner runs them: when ACTIONS_RUNNER_HOOK_JOB_STARTED / ACTIONS_RUNNER_HOOK_JOB_COMPLETED
 * hold the absolute path of a script, the runner runs it with `bash -e <path>` just before each job and just after
 * it, with the job's default variables in the environment. A started hook that exits non-zero fails the job, whose
 * steps then do not run; a completed hook that exits non-zero fails the job.
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

export interface JobHooks {
  /** ACTIONS_RUNNER_HOOK_JOB_STARTED: absolute path of a bash script. */
  readonly jobStarted?: string;
  /** ACTIONS_RUNNER_HOOK_JOB_COMPLETED: absolute path of a bash script. */
  readonly jobCompleted?: string;
  /**
   * Environment of the scripts, to which the job's variables (GITHUB_RUN_ID, GITHUB_REPOSITORY, ...) are added.
   * Never put the registration in it: the runner's ACTIONS_RUNNER_INPUT_* variables are not a job's to see.
   */
  readonly env?: Readonly<Record<string, string | undefined>>;
}

export interface HookRun {
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Aborting stops the script (SIGTERM, then SIGKILL after 5 s). */
  readonly signal: AbortSignal;
  /** Each line the script writes to stdout or stderr. */
  readonly log: (line: string) => void;
}

/** Runs `bash -e <script>`; resolves to its exit code (128 + signal number when it was killed). */
export function runJobHook(script: string, run: HookRun): Promise<number> {
  return new Promise((resolve) => {
    const env: Record<string, string> = {};
    for (const [key, value] of Object.entries(run.env)) if (value !== undefined) env[key] = value;
    const child = spawn('bash', ['-e', script], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    for (const stream of [child.stdout, child.stderr]) {
      createInterface({ input: stream }).on('line', (line) => run.log(line));
    }
    let killTimer: NodeJS.Timeout | undefined;
    const stop = () => {
      child.kill('SIGTERM');
      killTimer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      killTimer.unref();
    };
    if (run.signal.aborted) stop();
    else run.signal.addEventListener('abort', stop, { once: true });
    child.once('error', (error) => {
      run.log(`the hook could not start: ${error.message}`);
    });
    child.once('close', (code, signal) => {
      run.signal.removeEventListener('abort', stop);
      if (killTimer !== undefined) clearTimeout(killTimer);
      resolve(code ?? 128 + signalNumber(signal));
    });
  });
}

function signalNumber(signal: NodeJS.Signals | null): number {
  return signal === 'SIGKILL' ? 9 : signal === 'SIGTERM' ? 15 : signal === 'SIGINT' ? 2 : 1;
}
