/**
 * Child processes of a test control plane. Each component runs in its own process group (detached), so stopping it
 * also stops anything it forked, and `down` from another process can stop it by the recorded pid. Before signalling
 * a recorded pid the command line is compared with the recorded binary, so a pid the OS has since reused for an
 * unrelated process is never killed.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';

export interface ComponentRecord {
  readonly name: string;
  readonly pid: number;
  /** Executable path, as the first element of /proc/<pid>/cmdline. */
  readonly bin: string;
  readonly log: string;
}

export interface StartOptions {
  readonly name: string;
  readonly bin: string;
  readonly args: readonly string[];
  readonly log: string;
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
}

export interface Started {
  readonly record: ComponentRecord;
  /** Set once the process has exited while this process was watching it. */
  exit(): { code: number | null; signal: NodeJS.Signals | null } | undefined;
}

export function startComponent(opts: StartOptions): Started {
  const fd = openSync(opts.log, 'a', 0o600);
  let exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  try {
    const child = spawn(opts.bin, [...opts.args], {
      detached: true,
      stdio: ['ignore', fd, fd],
      env: opts.env ?? process.env,
      cwd: opts.cwd,
    });
    child.on('exit', (code, signal) => {
      exited = { code, signal };
    });
    // A failed exec surfaces as 'error'; remember it as an exit so waiters report it instead of timing out.
    child.on('error', () => {
      exited = { code: null, signal: null };
    });
    // The CLI's `up` must be able to exit while the control plane keeps running.
    child.unref();
    if (child.pid === undefined) throw new Error(`could not start ${opts.bin}`);
    return {
      record: { name: opts.name, pid: child.pid, bin: opts.bin, log: opts.log },
      exit: () => exited,
    };
  } finally {
    closeSync(fd);
  }
}

/** True when `pid` is alive (not a zombie) and still runs `bin` (a pid the OS reused for something else is not). */
export function isRunning(rec: Pick<ComponentRecord, 'pid' | 'bin'>): boolean {
  try {
    const stat = readFileSync(`/proc/${rec.pid}/stat`, 'utf8');
    // Field 3 (after the parenthesised command name) is the state; Z means exited but not yet reaped.
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    if (state === 'Z' || state === 'X') return false;
    // argv[0] for a binary; argv[1] for a script run by its interpreter.
    const argv = readFileSync(`/proc/${rec.pid}/cmdline`, 'utf8').split('\0');
    return argv[0] === rec.bin || argv[1] === rec.bin;
  } catch {
    return false;
  }
}

/** Whether any process has this pid (EPERM: it exists but belongs to someone else). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // Already gone.
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Stops components in the given order: SIGTERM to each live process group, then SIGKILL to whatever is still there
 * after `graceMs`.
 */
export async function stopComponents(records: readonly ComponentRecord[], graceMs = 10_000): Promise<void> {
  const live = records.filter((r) => isRunning(r));
  for (const r of live) signalGroup(r.pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (live.some((r) => isRunning(r)) && Date.now() < deadline) await sleep(100);
  for (const r of live) if (isRunning(r)) signalGroup(r.pid, 'SIGKILL');
  const killDeadline = Date.now() + 5_000;
  while (live.some((r) => isRunning(r)) && Date.now() < killDeadline) await sleep(50);
}

/** The last `lines` lines of a log file, for error messages when a component fails to come up. */
export function tailLog(file: string, lines = 20): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/**
 * `count` distinct free loopback ports. The components take port numbers on their command lines, so a port is picked
 * by binding :0 and releasing it; all are held until every one is chosen so they differ from each other.
 */
export async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<Server>((resolve, reject) => {
          const s = createServer();
          s.once('error', reject);
          s.listen(0, '127.0.0.1', () => resolve(s));
        }),
    ),
  );
  const ports = servers.map((s) => {
    const addr = s.address();
    if (addr === null || typeof addr === 'string') throw new Error('unexpected server address');
    return addr.port;
  });
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}
