/**
 * `runner-fleet start --config F` as a real child process, so a kill -9 is a real one: the SQLite store on disk, the
 * process runners it started (detached) and the simulator's instances all outlive it, and a restart on the same
 * port and store must pick up from there. Its stdout and stderr are kept for the secrets check.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { CLI, LogSink, until } from './harness.js';

export interface ControllerProcessOptions {
  /** More `start` flags (`--aws-endpoint URL`, ...). */
  readonly args?: readonly string[];
  /** More environment (AWS credentials for an ec2 fleet, ...); PATH is always passed. */
  readonly env?: Readonly<Record<string, string>>;
}

export class ControllerProcess {
  readonly url: string;
  readonly #configPath: string;
  readonly #options: ControllerProcessOptions;
  readonly stdout = new LogSink();
  readonly stderr = new LogSink();
  #child: ChildProcess | null = null;
  #exited: Promise<void> = Promise.resolve();
  starts = 0;
  kills = 0;

  constructor(configPath: string, port: number, options: ControllerProcessOptions = {}) {
    this.#configPath = configPath;
    this.#options = options;
    this.url = `http://127.0.0.1:${port}`;
  }

  get running(): boolean {
    return this.#child !== null;
  }

  /** Starts the controller and waits until /readyz says its first resync is done. */
  async start(timeoutMs = 60_000): Promise<void> {
    if (this.#child !== null) throw new Error('the controller is already running');
    const child = spawn(
      process.execPath,
      [CLI, 'start', '--config', this.#configPath, '--log-level', 'debug', ...(this.#options.args ?? [])],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...this.#options.env },
      },
    );
    this.starts++;
    child.stdout.pipe(this.stdout, { end: false });
    child.stderr.pipe(this.stderr, { end: false });
    this.#child = child;
    this.#exited = new Promise((resolve) =>
      child.once('exit', () => {
        if (this.#child === child) this.#child = null;
        resolve();
      }),
    );
    await until(
      async () => {
        if (this.#child !== child)
          throw new Error(`the controller exited: ${this.stderr.text().slice(-2000)}`);
        try {
          const res = await fetch(`${this.url}/readyz`, { signal: AbortSignal.timeout(2000) });
          await res.body?.cancel();
          return res.status === 200;
        } catch {
          return false;
        }
      },
      timeoutMs,
      'the controller to be ready',
    );
  }

  /** kill -9: no shutdown code runs. */
  async kill(): Promise<void> {
    const child = this.#child;
    if (child === null) return;
    this.kills++;
    child.kill('SIGKILL');
    await this.#exited;
  }

  /** Graceful stop (SIGTERM), SIGKILL after `timeoutMs`. */
  async stop(timeoutMs = 20_000): Promise<void> {
    const child = this.#child;
    if (child === null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    await this.#exited;
    clearTimeout(timer);
  }

  /** GET a JSON document from the controller's API; null while it is down or failing. */
  async get<T>(path: string): Promise<T | null> {
    if (this.#child === null) return null;
    try {
      const res = await fetch(`${this.url}${path}`, { signal: AbortSignal.timeout(5000) });
      if (!res.ok) {
        await res.body?.cancel();
        return null;
      }
      return (await res.json()) as T;
    } catch {
      return null;
    }
  }
}
