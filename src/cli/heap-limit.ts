/**
 * The heap limit `runner-fleet start` runs with. Node sizes V8's heap from the machine's memory (about 4 GB on a
 * 16 GB host) and then lets garbage grow towards it: 482 MB resident with 10,000 runners, against about 200 with a
 * limit of 160 MB, which the live data (about 90 MB at 10,000 runners) leaves ample room under. V8 takes the limit
 * only at start-up (v8.setFlagsFromString comes too late), so `start` runs itself again as a child process with
 * the limit, unless one is set already (NODE_OPTIONS or node's own flags, as the Helm chart sets it) or
 * RUNNER_FLEET_HEAP_LIMIT_MB says otherwise (a number of MiB, or 0 to keep Node's default sizing). The parent only
 * waits: it passes signals on and exits as the child does.
 */
import { spawn } from 'node:child_process';

export const HEAP_LIMIT_ENV = 'RUNNER_FLEET_HEAP_LIMIT_MB';
/**
 * glibc's malloc: blocks of 32 KiB and more get their own mapping, returned to the system when freed. Without it
 * they come from the heap arenas, which keep what start-up needed at its peak (V8 compiling the server's response
 * serializers and parsing modules: some 35 MB for a moment) resident for good: about 10 MB more resident, idle or
 * not. Other C libraries ignore it; a value in the environment is kept.
 */
const MALLOC_ENV = { MALLOC_MMAP_THRESHOLD_: '32768' } as const;

/** Set in the child, so it does not run itself again. */
const APPLIED_ENV = 'RUNNER_FLEET_HEAP_LIMIT_APPLIED';
export const DEFAULT_HEAP_LIMIT_MB = 160;
/** Young generation semi-space (MiB): V8 sizes it up to 16 (32 to 64 resident) by default; 8 keeps it smaller. */
const SEMI_SPACE_MB = 8;

const HEAP_FLAG = /(^|\s)--max[-_]old[-_]space[-_]size(=|\s|$)/;

/** The flags to start `start` with, or null when it runs as it is (limit set already, or turned off). */
export function heapLimitFlags(
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
  execArgv: readonly string[],
): string[] | null {
  if (argv[0] !== 'start' || argv.includes('--help') || argv.includes('-h')) return null;
  if (env[APPLIED_ENV] === '1') return null;
  if (HEAP_FLAG.test(env.NODE_OPTIONS ?? '') || execArgv.some((a) => HEAP_FLAG.test(a))) return null;
  const raw = env[HEAP_LIMIT_ENV];
  let mb = DEFAULT_HEAP_LIMIT_MB;
  if (raw !== undefined && raw.trim() !== '') {
    if (!/^\d+$/.test(raw.trim())) {
      throw new Error(
        `${HEAP_LIMIT_ENV} must be a whole number of MiB (0: Node's default heap sizing), not '${raw}'`,
      );
    }
    mb = Number(raw.trim());
    if (mb === 0) return null;
    if (mb < 64) throw new Error(`${HEAP_LIMIT_ENV} must be 0 or at least 64 (MiB), not ${mb}`);
  }
  return [`--max-old-space-size=${mb}`, `--max-semi-space-size=${SEMI_SPACE_MB}`];
}

/** The environment of the controller's process: this one's, marked as applied, with the malloc setting. */
export function childEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return { ...MALLOC_ENV, ...env, [APPLIED_ENV]: '1' };
}

/** Runs this script again with `flags`; resolves to the exit code to leave with (128 + n after signal n). */
export function runWithFlags(
  flags: readonly string[],
  script: string,
  argv: readonly string[],
): Promise<number> {
  const child = spawn(process.execPath, [...process.execArgv, ...flags, script, ...argv], {
    // The IPC channel only tells the child when this process is gone (followParent).
    stdio: ['inherit', 'inherit', 'inherit', 'ipc'],
    env: childEnv(process.env),
  });
  const signals: NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT'];
  const forward = (signal: NodeJS.Signals): void => {
    child.kill(signal);
  };
  for (const s of signals) process.on(s, forward);
  return new Promise((resolve) => {
    child.once('error', (error) => {
      process.stderr.write(`runner-fleet: could not start the controller process: ${error.message}\n`);
      resolve(1);
    });
    child.once('exit', (code, signal) => {
      for (const s of signals) process.off(s, forward);
      const numbers: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGKILL: 9, SIGTERM: 15 };
      resolve(code ?? 128 + (signal === null ? 1 : (numbers[signal] ?? 1)));
    });
  });
}

/**
 * In the child: when the parent is gone without waiting for it (killed with SIGKILL), go the same way, at once, as
 * the process that was killed would have. The channel never keeps the child alive.
 */
export function followParent(env: NodeJS.ProcessEnv): void {
  if (env[APPLIED_ENV] !== '1' || process.channel === undefined) return;
  process.channel.unref();
  process.once('disconnect', () => process.kill(process.pid, 'SIGKILL'));
}
