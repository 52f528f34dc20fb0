/**
 * `runner-fleet start` as the built CLI in a child process, with a fleet.yaml written for it: what the start-up,
 * shutdown, dashboard and store suites (and `npm run reliability`) drive. The child's stdout (JSON log lines) and
 * stderr are kept; its exit is timed from the moment a signal was sent.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';
import type { Simulator } from '../../src/sim/github/index.js';
import { LogSink } from './log-sink.js';
import { simulatorCredentials } from './sim-fleet.js';
import { untilEvery } from './until.js';

export const CLI = resolve(import.meta.dirname, '../../dist/cli/main.js');

const until = untilEvery(50);

/** Fails at once, with the command to run, when the CLI has not been built. */
export function requireBuiltCli(): void {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run npm run build first`);
}

export interface StartConfigOptions {
  /** Server address; 127.0.0.1 by default. */
  readonly host?: string;
  readonly port?: number;
  readonly dashboardToken?: string;
  /** The store file; `fleet.db` in the directory by default. */
  readonly storePath?: string;
  /** GitHub's API root instead of the simulator's (a blackhole, to make GitHub hang). */
  readonly githubUrl?: string;
  /** The webhook secret instead of the simulator's (a short one makes a warning). */
  readonly webhookSecret?: string;
  readonly resyncInterval?: string;
  /** Scale sets; one `sim` set serving octo-org by default. Their sim provider points at the simulator. */
  readonly scaleSets?: readonly Record<string, unknown>[];
}

export interface StartFiles {
  readonly dir: string;
  readonly configPath: string;
  readonly storePath: string;
}

/**
 * Writes fleet.yaml (App key and webhook secret beside it, 0600) into a fresh temporary directory, for a fleet of
 * `sim` scale sets on `sim`.
 */
export function writeStartConfig(sim: Simulator, options: StartConfigOptions = {}): StartFiles {
  const dir = mkdtempSync(join(tmpdir(), 'runner-fleet-start-'));
  const credentials = simulatorCredentials(sim, dir);
  if (options.webhookSecret !== undefined) {
    writeFileSync(join(dir, 'webhook-secret'), options.webhookSecret, { mode: 0o600 });
  }
  const storePath = options.storePath ?? join(dir, 'fleet.db');
  const github =
    options.githubUrl === undefined
      ? credentials.github
      : { ...credentials.github, url: options.githubUrl, apiUrl: options.githubUrl };
  const scaleSets = options.scaleSets ?? [
    { name: 'cloud', scope: { org: 'octo-org' }, labels: ['linux', 'cloud'], max: 4 },
  ];
  const doc = {
    name: 'start',
    github,
    webhook: credentials.webhook,
    server: {
      host: options.host ?? '127.0.0.1',
      port: options.port ?? 0,
      ...(options.dashboardToken !== undefined ? { dashboardToken: options.dashboardToken } : {}),
    },
    store: { path: storePath },
    controller: { resyncInterval: options.resyncInterval ?? '2s', failureBackoff: '1s' },
    scaleSets: scaleSets.map((set) => ({
      provider: { kind: 'sim', url: sim.baseUrl, bootDelay: '50ms' },
      ...set,
    })),
  };
  const configPath = join(dir, 'fleet.yaml');
  writeFileSync(configPath, stringify(doc));
  return { dir, configPath, storePath };
}

export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** ms from the last signal sent (or from the spawn, when none was) to the exit. */
  readonly ms: number;
}

/** One `runner-fleet start` process. */
export class StartedCli {
  readonly stdout = new LogSink();
  readonly stderr = new LogSink();
  readonly exited: Promise<Exit>;
  readonly #child: ChildProcess;
  #from = performance.now();
  #exit: Exit | null = null;

  constructor(configPath: string, options: { logLevel?: string; env?: NodeJS.ProcessEnv } = {}) {
    this.#child = spawn(
      process.execPath,
      [CLI, 'start', '--config', configPath, '--log-level', options.logLevel ?? 'info'],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: options.env ?? {
          PATH: process.env.PATH ?? '/usr/bin:/bin',
          // npm test gives each run a temporary directory of its own and checks it is left empty.
          ...(process.env.TMPDIR ? { TMPDIR: process.env.TMPDIR } : {}),
        },
      },
    );
    this.#child.stdout!.pipe(this.stdout);
    this.#child.stderr!.pipe(this.stderr);
    this.exited = new Promise((resolve) => {
      this.#child.once('exit', (code, signal) => {
        this.#exit = { code, signal, ms: Math.round(performance.now() - this.#from) };
        // The pipes may still hold the last lines: let them drain.
        setTimeout(() => resolve(this.#exit!), 100);
      });
    });
  }

  get exit(): Exit | null {
    return this.#exit;
  }

  /** The pid of the process started (runner-fleet start; it runs the controller in a child of its own). */
  get pid(): number {
    return this.#child.pid!;
  }

  /** Everything the process wrote, stdout then stderr. */
  output(): string {
    return `${this.stdout.text()}\n${this.stderr.text()}`;
  }

  /** The log lines (stdout) parsed as JSON; other lines are skipped. */
  logLines(): Record<string, unknown>[] {
    const out: Record<string, unknown>[] = [];
    for (const line of this.stdout.lines) {
      try {
        out.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        // not a log line
      }
    }
    return out;
  }

  /** The URL the server listens on, once it does. */
  url(): string | null {
    for (const line of this.logLines()) {
      if (line.msg === 'controller ready' && typeof line.url === 'string') return line.url;
      const m =
        typeof line.msg === 'string'
          ? /^Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(line.msg)
          : null;
      if (m !== null) return m[1]!;
    }
    return null;
  }

  /** Waits for a log line with this message; fails when the process exits first. */
  async waitForLog(msg: string | RegExp, timeoutMs = 60_000): Promise<Record<string, unknown>> {
    let found: Record<string, unknown> | undefined;
    await until(
      () => {
        found = this.logLines().find((l) =>
          typeof msg === 'string' ? l.msg === msg : typeof l.msg === 'string' && msg.test(l.msg),
        );
        if (found === undefined && this.#exit !== null)
          throw new Error(
            `runner-fleet start exited (${JSON.stringify(this.#exit)}):\n${this.output().slice(-3000)}`,
          );
        return found !== undefined;
      },
      timeoutMs,
      `log line ${String(msg)}`,
      () => this.output().slice(-2000),
    );
    return found!;
  }

  /** Waits until the controller says it is ready; returns its URL. */
  async ready(timeoutMs = 60_000): Promise<string> {
    const line = await this.waitForLog('controller ready', timeoutMs);
    return line.url as string;
  }

  /** Sends a signal; `exited` then times the exit from now. */
  signal(signal: NodeJS.Signals): void {
    this.#from = performance.now();
    this.#child.kill(signal);
  }

  /** Ends the process for good (cleanup): SIGKILL unless it has exited. */
  async kill(): Promise<void> {
    if (this.#exit === null) this.#child.kill('SIGKILL');
    await this.exited;
  }
}
