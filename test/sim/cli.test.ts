/**
 * The `simulate` and `emulate-runner` commands as real child processes of the built CLI (npm test builds first):
 * one JSON line on stdout, a 0600 key file, clean stop on SIGTERM; the emulator takes its JIT config or token from
 * the environment like actions/runner and uses the runner's exit codes.
 */
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, waitFor } from './helpers.js';

const MAIN = 'dist/cli/main.js';

interface Info {
  baseUrl: string;
  apiUrl: string;
  appId: number;
  privateKeyFile: string;
  installations: { id: number; account: string }[];
  token: string;
  webhookSecret: string;
}

function run(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [MAIN, ...args], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

async function startSimulateProcess(
  args: string[],
): Promise<{ child: ChildProcess; info: Info; stdout: () => string; stderr: () => string }> {
  const child = spawn(process.execPath, [MAIN, 'simulate', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const line = await waitFor(
    'simulator JSON line',
    () => (stdout.includes('\n') ? stdout.split('\n')[0] : undefined),
    20_000,
  );
  return { child, info: JSON.parse(line!) as Info, stdout: () => stdout, stderr: () => stderr };
}

const exited = (child: ChildProcess) =>
  new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));

describe('runner-fleet simulate', () => {
  let sim: Awaited<ReturnType<typeof startSimulateProcess>>;

  beforeAll(async () => {
    sim = await startSimulateProcess([
      '--port',
      '0',
      '--org',
      'octo-org',
      '--org',
      'acme',
      '--webhook-secret',
      'cli-test-secret',
    ]);
  });

  afterAll(() => {
    if (sim?.child.exitCode === null) sim.child.kill('SIGKILL');
  });

  it('prints exactly one JSON line with what a client needs, and writes the key 0600', () => {
    const { info } = sim;
    expect(Object.keys(info).sort()).toEqual([
      'apiUrl',
      'appId',
      'baseUrl',
      'installations',
      'privateKeyFile',
      'token',
      'webhookSecret',
    ]);
    expect(info.baseUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(info.apiUrl).toBe(info.baseUrl);
    expect(info.installations.map((i) => i.account)).toEqual(['octo-org', 'acme']);
    expect(info.token).toMatch(/^ghp_[A-Za-z0-9]{36}$/);
    expect(info.webhookSecret).toBe('cli-test-secret');
    expect(statSync(info.privateKeyFile).mode & 0o777).toBe(0o600);
    expect(sim.stdout().trim().split('\n')).toHaveLength(1);
  });

  it('serves the REST API, and the emulator CLI runs a job from ACTIONS_RUNNER_INPUT_JITCONFIG, then refuses it again', async () => {
    const { info } = sim;
    const jit = await call(`${info.apiUrl}/orgs/acme/actions/runners/generate-jitconfig`, {
      method: 'POST',
      token: info.token,
      body: { name: 'cli-jit', runner_group_id: 1, labels: ['cli'] },
    });
    expect(jit.status).toBe(201);
    const config = (jit.body as { encoded_jit_config: string }).encoded_jit_config;
    const queued = await call(`${info.baseUrl}/_sim/jobs`, {
      method: 'POST',
      body: { owner: 'acme', repo: 'web', labels: ['cli'], durationMs: 50 },
    });
    expect(queued.status).toBe(201);
    const jobId = (queued.body as { jobs: { id: number }[] }).jobs[0]!.id;

    const first = await run(['emulate-runner'], { ACTIONS_RUNNER_INPUT_JITCONFIG: config });
    expect(first.code).toBe(0);
    expect(first.stderr).toContain('Listening for Jobs');
    expect(first.stderr).not.toContain(config.slice(0, 32));
    const job = await call(`${info.baseUrl}/_sim/jobs/${jobId}`);
    expect(job.body).toMatchObject({ status: 'completed', conclusion: 'success', runnerName: 'cli-jit' });

    const runnerId = (jit.body as { runner: { id: number } }).runner.id;
    expect(
      (await call(`${info.apiUrl}/orgs/acme/actions/runners/${runnerId}`, { token: info.token })).status,
    ).toBe(404);

    const second = await run(['emulate-runner'], { ACTIONS_RUNNER_INPUT_JITCONFIG: config });
    expect(second.code).toBe(1);
  });

  it('runs in token mode with the token from ACTIONS_RUNNER_INPUT_TOKEN (not argv)', async () => {
    const { info } = sim;
    const token = await call(`${info.apiUrl}/orgs/octo-org/actions/runners/registration-token`, {
      method: 'POST',
      token: info.token,
    });
    await call(`${info.baseUrl}/_sim/jobs`, {
      method: 'POST',
      body: { owner: 'octo-org', repo: 'app', labels: ['tok'], durationMs: 20 },
    });
    const result = await run(
      [
        'emulate-runner',
        '--url',
        `${info.baseUrl}/octo-org`,
        '--name',
        'cli-token',
        '--labels',
        'tok',
        '--ephemeral',
      ],
      {
        ACTIONS_RUNNER_INPUT_TOKEN: (token.body as { token: string }).token,
      },
    );
    expect(result.stderr).toContain('Runner successfully added');
    expect(result.code).toBe(0);
  });

  it('stops on SIGTERM with exit 0 and removes the key file', async () => {
    const code = exited(sim.child);
    sim.child.kill('SIGTERM');
    expect(await code).toBe(0);
    expect(existsSync(sim.info.privateKeyFile)).toBe(false);
    expect(sim.stderr()).toContain('GitHub simulator listening');
  });
});

describe('CLI usage errors', () => {
  const cli = (...args: string[]) =>
    spawnSync(process.execPath, [MAIN, ...args], {
      encoding: 'utf8',
      timeout: 20_000,
      env: { ...process.env, ACTIONS_RUNNER_INPUT_JITCONFIG: '' },
    });

  it('prints help for both commands', () => {
    for (const name of ['simulate', 'emulate-runner']) {
      const r = cli(name, '--help');
      expect(r.status).toBe(0);
      expect(r.stdout).toContain(`runner-fleet ${name}`);
    }
  });

  it('rejects bad flags with exit 2', () => {
    expect(cli('simulate', '--port', 'abc').status).toBe(2);
    expect(cli('simulate', '--bogus').status).toBe(2);
    expect(cli('simulate', '--webhook-url', 'not a url').status).toBe(2);
    expect(cli('emulate-runner').status).toBe(2);
    expect(cli('emulate-runner', '--url', 'http://127.0.0.1:1/o').status).toBe(2);
    expect(cli('emulate-runner', '--config-only').stderr).toContain('--config-only needs --runner-root');
    expect(cli('emulate-runner', '--config-only', '--runner-root', '/tmp').status).toBe(2);
  });

  it('exits 1 when run.sh (--runner-root) finds no settings from config.sh', () => {
    const r = cli('emulate-runner', '--runner-root', '/nonexistent-runner-root');
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('the runner is not configured: no .runner in /nonexistent-runner-root');
  });

  it('exits 1 on a malformed JIT config and 2 when the simulator cannot be reached', () => {
    const bad = spawnSync(process.execPath, [MAIN, 'emulate-runner', '--jitconfig', 'not base64!'], {
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(bad.status).toBe(1);
    const unreachable = spawnSync(
      process.execPath,
      [MAIN, 'emulate-runner', '--url', 'http://127.0.0.1:9/octo-org', '--name', 'x'],
      {
        encoding: 'utf8',
        timeout: 20_000,
        env: { ...process.env, ACTIONS_RUNNER_INPUT_TOKEN: 'T', RUNNER_FLEET_EMULATOR_RETRY_MS: '300' },
      },
    );
    expect(unreachable.status).toBe(2);
  });
});
