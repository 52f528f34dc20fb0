/**
 * `runner-fleet status` against a real controller HTTP server (the server's API over a read model with a queued
 * job, busy runners and an unroutable job), and against an address where nothing listens.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer as createNetServer } from 'node:net';
import { Writable } from 'node:stream';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { command, formatStatus } from '../../src/cli/status.js';
import type { StatusReport } from '../../src/cli/status.js';
import type { WebhookSink } from '../../src/core/ports.js';
import { memoryReadModel } from '../../src/dashboard/dashboard.test-helpers.js';
import { createServer } from '../../src/server/server.js';
import type { FleetServer } from '../../src/server/server.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { createMetrics } from '../../src/telemetry/metrics.js';

const run = promisify(execFile);
const MAIN = new URL('../../dist/cli/main.js', import.meta.url).pathname;
const TOKEN = 'status-test-dashboard-token-5c1d';
const sink: WebhookSink = { acceptWorkflowJob: () => ({ duplicate: false }) };

function capture() {
  const chunks: string[] = [];
  return {
    stream: new Writable({
      write(chunk: Buffer, _e, cb) {
        chunks.push(chunk.toString());
        cb();
      },
    }),
    text: () => chunks.join(''),
  };
}

async function status(argv: string[], env: NodeJS.ProcessEnv = {}) {
  const stdout = capture();
  const stderr = capture();
  const code = await command.run(argv, { stdout: stdout.stream, stderr: stderr.stream, env });
  return { code, stdout: stdout.text(), stderr: stderr.text() };
}

/** A port nothing listens on: bound, then released. */
async function closedPort(): Promise<number> {
  const server = createNetServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function controller(dashboardToken?: string): Promise<{ server: FleetServer; url: string }> {
  const server = await createServer({
    config: {
      server: { host: '127.0.0.1', port: 0, ...(dashboardToken ? { dashboardToken } : {}) },
      webhook: { secret: 'status-test-webhook-secret' },
    },
    sink,
    readModel: memoryReadModel(Date.now()),
    isReady: () => true,
    metrics: createMetrics(),
    logger: createLogger({ level: 'silent' }),
  });
  return { server, url: await server.listen() };
}

let open: { server: FleetServer; url: string };
let guarded: { server: FleetServer; url: string };
beforeAll(async () => {
  open = await controller();
  guarded = await controller(TOKEN);
});
afterAll(async () => {
  await open?.server.close();
  await guarded?.server.close();
});

describe('runner-fleet status', () => {
  it('prints a table per scale set and the unroutable jobs', async () => {
    const { code, stdout, stderr } = await status(['--url', open.url]);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const lines = stdout.split('\n');
    expect(lines[0]).toBe(`runner-fleet controller at ${open.url}`);
    const header = lines.find((l) => l.startsWith('SCALE SET'))!;
    expect(header).toMatch(
      /MIN\s+MAX\s+ACTIVE\s+STARTING\s+IDLE\s+BUSY\s+ENDING\s+QUEUED\s+RUNNING\s+OLDEST WAIT/,
    );
    const row = lines.find((l) => l.startsWith('linux-small'))!;
    expect(row.split(/\s+/)).toEqual([
      'linux-small',
      'process',
      'ephemeral/jit',
      '1',
      '8',
      '3',
      '0',
      '1',
      '2',
      '0',
      '1',
      '2',
      '1.50s',
    ]);
    expect(stdout).toContain('! linux-small: 1 failed runner(s)');
    expect(stdout).toContain('Unroutable jobs (no scale set serves their labels): 1');
    expect(stdout).toMatch(/#102\s+octo-org\/app\s+self-hosted,gpu\s+queued\s+9\.\d\ds/);
  });

  it('--json prints one object with the API views', async () => {
    const { code, stdout } = await status(['--url', open.url, '--json']);
    expect(code).toBe(0);
    const report = JSON.parse(stdout) as StatusReport;
    expect(report.url).toBe(open.url);
    expect(report.scaleSets.map((s) => [s.name, s.minIdle, s.max, s.queuedJobs, s.oldestQueuedMs])).toEqual([
      ['linux-small', 1, 8, 1, 1500],
    ]);
    expect(report.unroutableJobs.map((j) => j.id)).toEqual([102]);
    // The API's schemas dropped the secret fields the records carried besides their views.
    expect(stdout).not.toMatch(/registrationToken|jitConfig|"token"/i);
  });

  it('sends the token from the environment (or --token) and explains a refusal', async () => {
    const refused = await status(['--url', guarded.url]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`the controller at ${guarded.url} requires a dashboard token`);
    expect(refused.stderr).toContain('RUNNER_FLEET_DASHBOARD_TOKEN');
    const wrong = await status(['--url', guarded.url, '--token', 'not-the-token']);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain('the one given was refused');
    expect(wrong.stderr).not.toContain('not-the-token');
    const viaEnv = await status(['--url', guarded.url, '--json'], { RUNNER_FLEET_DASHBOARD_TOKEN: TOKEN });
    expect(viaEnv.code).toBe(0);
    expect(viaEnv.stdout).not.toContain(TOKEN);
    expect((await status(['--url', guarded.url, '--token', TOKEN])).code).toBe(0);
  });

  it('an unreachable controller: exit 1 naming the URL and the cause (through the real CLI)', async () => {
    expect(existsSync(MAIN), 'dist/cli/main.js is missing: run `npm run build` first').toBe(true);
    const port = await closedPort();
    const url = `http://127.0.0.1:${port}`;
    const result = await run(process.execPath, [MAIN, 'status', '--url', url]).then(
      () => ({ code: 0, stderr: '' }),
      (error: { code: number; stderr: string }) => ({ code: error.code, stderr: error.stderr }),
    );
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`runner-fleet status: cannot reach the controller at ${url}`);
    expect(result.stderr).toContain('ECONNREFUSED');
  });

  it('bad usage exits 2', async () => {
    await expect(status(['--url', 'ftp://x'])).rejects.toThrow(/--url must be an http/);
    await expect(status(['--timeout', 'soon'])).rejects.toThrow(/--timeout/);
  });

  it('formats an empty controller', () => {
    const text = formatStatus({ url: 'http://127.0.0.1:1', at: 0, scaleSets: [], unroutableJobs: [] });
    expect(text).toContain('No scale sets.');
    expect(text).toContain('Unroutable jobs: none');
  });
});
