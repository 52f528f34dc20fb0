/**
 * `runner-fleet status`: what a running controller reports through its API (`/api/v1/scale-sets` and the
 * unroutable jobs), as a compact table per scale set or, with --json, as one JSON object for scripts.
 */
import { parseArgs } from 'node:util';
import type { Command, CommandIo } from './command.js';
import { UsageError } from './command.js';
import { humanDuration, textTable } from '../lib/format.js';

const TOKEN_ENV = 'RUNNER_FLEET_DASHBOARD_TOKEN';
const DEFAULT_URL = 'http://127.0.0.1:8080';

const usage = `Usage: runner-fleet status [--url URL] [--token TOKEN] [--json] [--timeout 5s]

Shows what a running controller reports: per scale set its min idle, max, runners by state, queued jobs and
the longest wait, then the jobs no scale set serves (unroutable).

Options:
  --url <url>        the controller's HTTP address (default ${DEFAULT_URL})
  --token <token>    bearer token, when the controller sets server.dashboardToken; prefer the environment
                     variable ${TOKEN_ENV} (argv is visible to other users of the machine)
  --json             one JSON object: {url, at, scaleSets, unroutableJobs}, as the API returns them
  --timeout <d>      how long to wait for the controller (default 5s)

Exit codes: 0 ok, 1 the controller could not be reached or refused the request, 2 bad usage.`;

/** The fields of `/api/v1/scale-sets` this command reads. */
export interface StatusScaleSet {
  readonly name: string;
  readonly provider: string;
  readonly minIdle: number;
  readonly max: number;
  readonly ephemeral: boolean;
  readonly registration: string;
  readonly runners: Readonly<Record<string, number>>;
  readonly activeRunners: number;
  readonly queuedJobs: number;
  readonly inProgressJobs: number;
  readonly oldestQueuedMs: number | null;
  readonly backoff?: { readonly failures: number; readonly lastFailure: string | null };
}

export interface StatusJob {
  readonly id: number;
  readonly owner: string;
  readonly repo: string;
  readonly labels: readonly string[];
  readonly status: string;
  /** ms epoch */
  readonly queuedAt: number;
  readonly waitMs: number;
}

export interface StatusReport {
  readonly url: string;
  /** ms epoch when the report was taken */
  readonly at: number;
  readonly scaleSets: readonly StatusScaleSet[];
  readonly unroutableJobs: readonly StatusJob[];
}

export class StatusError extends Error {
  override readonly name = 'StatusError';
  readonly code: 'unreachable' | 'unauthorized' | 'bad-response';
  constructor(message: string, code: StatusError['code'], options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/** The innermost useful reason of a failed fetch: `connect ECONNREFUSED 127.0.0.1:8080`, `getaddrinfo ENOTFOUND`. */
function reasonOf(error: unknown): string {
  if (error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError'))
    return 'no answer in time';
  let current: unknown = error;
  let reason = error instanceof Error ? error.message : String(error);
  for (let depth = 0; depth < 5 && current instanceof Error && current.cause !== undefined; depth++) {
    current = current.cause;
    if (current instanceof Error && current.message) reason = current.message;
    else if (typeof current === 'object' && current !== null && 'code' in current)
      reason = String((current as { code: unknown }).code);
  }
  return reason;
}

export interface FetchStatusOptions {
  readonly token?: string;
  readonly timeoutMs?: number;
  readonly fetch?: typeof fetch;
  readonly now?: () => number;
}

/** Reads the controller's API. Throws StatusError naming the URL and the cause. */
export async function fetchStatus(baseUrl: string, options: FetchStatusOptions = {}): Promise<StatusReport> {
  const doFetch = options.fetch ?? globalThis.fetch;
  const base = baseUrl.replace(/\/+$/, '');
  const headers: Record<string, string> = { accept: 'application/json' };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  const get = async <T>(path: string): Promise<T> => {
    let response: Response;
    try {
      response = await doFetch(`${base}${path}`, {
        headers,
        signal: AbortSignal.timeout(options.timeoutMs ?? 5_000),
      });
    } catch (error) {
      throw new StatusError(`cannot reach the controller at ${base}: ${reasonOf(error)}`, 'unreachable', {
        cause: error,
      });
    }
    if (response.status === 401) {
      await response.body?.cancel();
      throw new StatusError(
        `the controller at ${base} requires a dashboard token: pass --token or set ${TOKEN_ENV}` +
          (options.token ? ' (the one given was refused)' : ''),
        'unauthorized',
      );
    }
    if (!response.ok) {
      await response.body?.cancel();
      throw new StatusError(
        `the controller at ${base} answered ${path} with HTTP ${response.status}` +
          (response.status === 404 ? ' (is this a runner-fleet controller?)' : ''),
        'bad-response',
      );
    }
    try {
      return (await response.json()) as T;
    } catch (error) {
      throw new StatusError(`the controller at ${base} sent ${path} that is not JSON`, 'bad-response', {
        cause: error,
      });
    }
  };
  const [sets, jobs] = await Promise.all([
    get<{ scaleSets?: StatusScaleSet[] }>('/api/v1/scale-sets'),
    get<{ jobs?: StatusJob[] }>('/api/v1/jobs?unroutable=true'),
  ]);
  if (!Array.isArray(sets.scaleSets) || !Array.isArray(jobs.jobs)) {
    throw new StatusError(`the controller at ${base} sent an unexpected API response`, 'bad-response');
  }
  return {
    url: base,
    at: (options.now ?? Date.now)(),
    scaleSets: sets.scaleSets,
    unroutableJobs: jobs.jobs.filter((j) => j.status !== 'completed'),
  };
}

const wait = (ms: number | null): string => (ms === null ? '-' : humanDuration(ms));

/** The human-readable report: one row per scale set, then the unroutable jobs. */
export function formatStatus(report: StatusReport): string {
  const n = (v: number | undefined) => String(v ?? 0);
  const rows = report.scaleSets.map((s) => {
    const r = s.runners;
    return [
      s.name,
      s.provider,
      s.ephemeral ? `ephemeral/${s.registration}` : `persistent/${s.registration}`,
      n(s.minIdle),
      n(s.max),
      n(s.activeRunners),
      n((r.requested ?? 0) + (r.creating ?? 0) + (r.starting ?? 0)),
      n(r.idle),
      n(r.busy),
      n((r.finished ?? 0) + (r.failed ?? 0) + (r['bootstrap-timeout'] ?? 0)),
      n(s.queuedJobs),
      n(s.inProgressJobs),
      wait(s.oldestQueuedMs),
    ];
  });
  const out = [`runner-fleet controller at ${report.url}`, ''];
  out.push(
    rows.length === 0
      ? 'No scale sets.'
      : textTable(
          [
            'SCALE SET',
            'PROVIDER',
            'MODE',
            'MIN',
            'MAX',
            'ACTIVE',
            'STARTING',
            'IDLE',
            'BUSY',
            'ENDING',
            'QUEUED',
            'RUNNING',
            'OLDEST WAIT',
          ],
          rows,
          new Set([3, 4, 5, 6, 7, 8, 9, 10, 11, 12]),
        ),
  );
  for (const s of report.scaleSets) {
    if (s.backoff && s.backoff.failures > 0) {
      out.push(
        `! ${s.name}: ${s.backoff.failures} failed runner(s)` +
          (s.backoff.lastFailure ? `; last failure: ${s.backoff.lastFailure}` : ''),
      );
    }
  }
  out.push('');
  if (report.unroutableJobs.length === 0) {
    out.push('Unroutable jobs: none');
  } else {
    out.push(`Unroutable jobs (no scale set serves their labels): ${report.unroutableJobs.length}`);
    out.push(
      textTable(
        ['JOB', 'REPOSITORY', 'LABELS', 'STATUS', 'WAITING'],
        report.unroutableJobs.map((j) => [
          `#${j.id}`,
          `${j.owner}/${j.repo}`,
          j.labels.join(','),
          j.status,
          // Measured from queuedAt while queued: a queued webhook's started_at is the creation time on GitHub.
          wait(j.status === 'queued' ? Math.max(0, report.at - j.queuedAt) : j.waitMs),
        ]),
        new Set([4]),
      ),
    );
  }
  return `${out.join('\n')}\n`;
}

function parse(argv: string[], env: NodeJS.ProcessEnv, parseDuration: (text: string) => number | undefined) {
  let values: { url?: string; token?: string; json?: boolean; timeout?: string };
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        url: { type: 'string' },
        token: { type: 'string' },
        json: { type: 'boolean' },
        timeout: { type: 'string' },
      },
      allowPositionals: false,
      strict: true,
    }));
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
  const url = values.url ?? DEFAULT_URL;
  try {
    const parsed = new URL(url);
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new Error('not http');
  } catch {
    throw new UsageError(`--url must be an http(s) URL, got ${JSON.stringify(url)}`);
  }
  let timeoutMs = 5_000;
  if (values.timeout !== undefined) {
    const parsed = parseDuration(values.timeout);
    if (parsed === undefined || parsed <= 0)
      throw new UsageError(`--timeout: not a duration: ${values.timeout}`);
    timeoutMs = parsed;
  }
  const token = values.token ?? (env[TOKEN_ENV] || undefined);
  return { url, token, json: values.json === true, timeoutMs };
}

export const command: Command = {
  summary: 'Show scale sets, runners, queued and unroutable jobs of a running controller',
  usage,
  async run(argv: string[], io: CommandIo): Promise<number> {
    // Loaded here, not at import: `runner-fleet --help` loads every command module.
    const { parseDuration } = await import('../lib/duration.js');
    const options = parse(argv, io.env, parseDuration);
    let report: StatusReport;
    try {
      report = await fetchStatus(options.url, {
        timeoutMs: options.timeoutMs,
        ...(options.token ? { token: options.token } : {}),
      });
    } catch (error) {
      if (!(error instanceof StatusError)) throw error;
      io.stderr.write(`runner-fleet status: ${error.message}\n`);
      return 1;
    }
    io.stdout.write(options.json ? `${JSON.stringify(report)}\n` : formatStatus(report));
    return 0;
  },
};
