/**
 * Peers of the controller benchmarks: the GitHub simulator as its own process (`runner-fleet simulate`, so its
 * emulated runners do not share the controller's event loop), a small client of its control API, a fleet.yaml
 * pointing at it, and `runner-fleet start` as a child process whose resident memory can be read from /proc.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';

const here = path.dirname(fileURLToPath(import.meta.url));
export const CLI = path.join(here, '..', 'dist', 'cli', 'main.js');

export interface SimInfo {
  readonly baseUrl: string;
  readonly apiUrl: string;
  readonly appId: number;
  readonly privateKeyFile: string;
  readonly webhookSecret: string;
  readonly installations: readonly { readonly id: number; readonly account: string }[];
}

export interface SimStats {
  readonly apiCalls: { readonly total: number; readonly byRoute: Record<string, number> };
  readonly jobs: { readonly queued: number; readonly in_progress: number; readonly completed: number };
  readonly runners: { readonly registered: number; readonly online: number; readonly busy: number };
  readonly webhooks: { readonly sent: number; readonly failed: number; readonly dropped: number };
  readonly instances: number;
  readonly rateLimit: { readonly primaryRefusals: number; readonly secondaryRefusals: number };
}

export class SimProcess {
  readonly info: SimInfo;
  readonly #child: ChildProcess;

  private constructor(child: ChildProcess, info: SimInfo) {
    this.#child = child;
    this.info = info;
  }

  /**
   * `runner-fleet simulate` on a free loopback port; resolves once it printed its JSON line. With `logLevel` its log
   * (LOG_LEVEL) goes to this process's stderr; without, it logs at its default level into the void.
   */
  static async start(args: readonly string[], options: { logLevel?: string } = {}): Promise<SimProcess> {
    const child = spawn(process.execPath, [CLI, 'simulate', '--port', '0', ...args], {
      stdio: ['ignore', 'pipe', options.logLevel === undefined ? 'ignore' : 'inherit'],
      env: { ...process.env, ...(options.logLevel === undefined ? {} : { LOG_LEVEL: options.logLevel }) },
    });
    const lines = createInterface({ input: child.stdout! });
    const first = await new Promise<string>((resolve, reject) => {
      lines.once('line', resolve);
      child.once('exit', (code) => reject(new Error(`the simulator exited with ${code}`)));
    });
    lines.close();
    child.stdout!.resume();
    return new SimProcess(child, JSON.parse(first) as SimInfo);
  }

  get pid(): number | undefined {
    return this.#child.pid;
  }

  async #call<T>(method: string, route: string, body?: unknown): Promise<T> {
    const res = await fetch(`${this.info.baseUrl}${route}`, {
      method,
      ...(body === undefined
        ? {}
        : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
    });
    if (!res.ok) throw new Error(`${method} ${route}: ${res.status} ${await res.text()}`);
    return (res.status === 204 ? undefined : await res.json()) as T;
  }

  setWebhook(url: string): Promise<unknown> {
    return this.#call('PUT', '/_sim/webhook', { url });
  }

  createJobs(input: { owner: string; repo: string; labels: string[]; count: number; durationMs: number }) {
    return this.#call<{ jobs: { id: number }[] }>('POST', '/_sim/jobs', input);
  }

  stats(): Promise<SimStats> {
    return this.#call<SimStats>('GET', '/_sim/stats');
  }

  async instances(fleet: string): Promise<number> {
    const body = await this.#call<{ instances: unknown[] }>('GET', `/_sim/instances?tag.fleet=${fleet}`);
    return body.instances.length;
  }

  async stop(): Promise<void> {
    if (this.#child.exitCode !== null) return;
    const exited = new Promise((resolve) => this.#child.once('exit', resolve));
    this.#child.kill('SIGTERM');
    const t = setTimeout(() => this.#child.kill('SIGKILL'), 20_000);
    await exited;
    clearTimeout(t);
  }
}

export interface BenchFleet {
  readonly dir: string;
  readonly configPath: string;
  readonly yaml: string;
}

/** A one-scale-set fleet.yaml (sim provider, ephemeral JIT runners) against the simulator; defaults elsewhere. */
export function benchFleet(
  sim: SimInfo,
  options: { name: string; max: number; port: number; bootDelay?: string },
): BenchFleet {
  const dir = mkdtempSync(path.join(tmpdir(), `runner-fleet-bench-${options.name}-`));
  writeFileSync(path.join(dir, 'webhook-secret'), sim.webhookSecret, { mode: 0o600 });
  const doc = {
    name: `bench-${options.name}`,
    github: {
      url: sim.baseUrl,
      apiUrl: sim.apiUrl,
      auth: { app: { id: sim.appId, privateKey: `\${file:${sim.privateKeyFile}}` } },
    },
    webhook: { secret: '${file:./webhook-secret}' },
    server: { host: '127.0.0.1', port: options.port },
    store: { path: path.join(dir, 'fleet.db') },
    scaleSets: [
      {
        name: options.name,
        scope: { org: 'octo-org' },
        labels: ['linux', 'x64', 'bench'],
        max: options.max,
        provider: {
          kind: 'sim',
          ...(options.bootDelay === undefined ? {} : { bootDelay: options.bootDelay }),
        },
      },
    ],
  };
  const configPath = path.join(dir, 'fleet.yaml');
  const yaml = stringify(doc);
  writeFileSync(configPath, yaml);
  return { dir, configPath, yaml };
}

/**
 * The controller process of `runner-fleet start` started as `pid`: the child it runs itself again in with its heap
 * limit (src/cli/heap-limit.ts), or `pid` itself when it runs as it is.
 */
export function controllerPid(pid: number): number {
  try {
    const kids = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .filter(Boolean);
    return kids.length > 0 ? Number(kids[0]) : pid;
  } catch {
    return pid;
  }
}

/** Resident set size of a process, in bytes (Linux /proc). */
export function rssBytes(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

/** Polls until `check` holds; throws with `what` after `timeoutMs`. */
export async function waitFor(
  what: string,
  check: () => Promise<boolean> | boolean,
  timeoutMs: number,
  everyMs = 200,
  describe?: () => unknown,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) {
      const seen = describe === undefined ? '' : `; last seen: ${JSON.stringify(await describe())}`;
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${seen}`);
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
