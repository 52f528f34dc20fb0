/** Runs the built CLI (`node dist/cli/main.js ...`) as a child process and collects its output. */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const MAIN = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));

export function assertBuilt(): void {
  if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run \`npm run build\` first (npm test does)`);
}

export interface CliRun {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface CliProcess {
  readonly pid: number;
  /** Everything written so far. */
  stdout(): string;
  stderr(): string;
  /** Resolves when `pattern` appears on stdout or stderr (rejects when the process ends first or on timeout). */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  readonly exited: Promise<CliRun>;
  signal(signal: NodeJS.Signals): void;
}

/** The caller's TMPDIR, when it has one. */
export function tmpdirEnv(): NodeJS.ProcessEnv {
  return process.env.TMPDIR ? { TMPDIR: process.env.TMPDIR } : {};
}

export function startCli(args: readonly string[], env: NodeJS.ProcessEnv = {}): CliProcess {
  assertBuilt();
  const child = spawn(process.execPath, [MAIN, ...args], {
    // TMPDIR too: npm test gives each run a temporary directory of its own and checks it is left empty.
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...tmpdirEnv(), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  const waiters = new Set<() => void>();
  const notify = () => waiters.forEach((w) => w());
  child.stdout.setEncoding('utf8').on('data', (d: string) => ((out += d), notify()));
  child.stderr.setEncoding('utf8').on('data', (d: string) => ((err += d), notify()));
  let done = false;
  const exited = new Promise<CliRun>((resolve) =>
    child.on('close', (code, signal) => {
      done = true;
      notify();
      resolve({ code, signal, stdout: out, stderr: err });
    }),
  );
  return {
    pid: child.pid!,
    stdout: () => out,
    stderr: () => err,
    exited,
    signal: (s) => child.kill(s),
    waitFor(pattern, timeoutMs = 60_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const m = pattern.exec(out) ?? pattern.exec(err);
          if (m) return finish(() => resolve(m));
          if (done)
            return finish(() => reject(new Error(`process exited before ${pattern}:\n${out}\n${err}`)));
        };
        const timer = setTimeout(
          () => finish(() => reject(new Error(`timed out waiting for ${pattern}:\n${out}\n${err}`))),
          timeoutMs,
        );
        const finish = (f: () => void) => {
          clearTimeout(timer);
          waiters.delete(check);
          f();
        };
        waiters.add(check);
        check();
      });
    },
  };
}

export function runCli(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<CliRun> {
  return startCli(args, env).exited;
}

/** The keys the README promises in the demo's --json object. */
export const SUMMARY_KEYS = [
  'jobs',
  'completed',
  'failed',
  'queueTimeMs',
  'githubApiCalls',
  'apiCallsPerJob',
  'leakedRunners',
  'leakedInstances',
  'maxConcurrentRunners',
  'durationMs',
  'unroutable',
] as const;
