/**
 * Job hooks and config.sh/run.sh as separate steps, against the real simulator (in-process, over HTTP) with real
 * bash scripts: what actions/runner does with ACTIONS_RUNNER_HOOK_JOB_STARTED / _COMPLETED and its settings files.
 */
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSimulator } from '../github/index.js';
import type { Simulator } from '../github/index.js';
import { readRunnerConfig, writeRunnerConfig } from './config-files.js';
import { configureEmulatedRunner, runEmulatedRunner } from './emulator.js';
import { ExitCode } from './exit-codes.js';

let sim: Simulator;
let dir: string;

beforeAll(async () => {
  // A silent runner is offline after 1 s and its job fails 0.5 s later: hooks must not leave the job unrenewed.
  sim = await startSimulator({ orgs: ['octo-org'], runnerOfflineAfterMs: 1000, offlineJobTimeoutMs: 500 });
  dir = mkdtempSync(join(tmpdir(), 'rf-hooks-'));
});

afterAll(async () => {
  await sim?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function gh(method: string, path: string, body?: unknown): Promise<unknown> {
  const response = await fetch(`${sim.apiUrl}${path}`, {
    method,
    headers: {
      authorization: `token ${sim.token}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) throw new Error(`${method} ${path}: HTTP ${response.status}`);
  return response.json();
}

async function jitConfig(name: string, label: string): Promise<string> {
  const body = (await gh('POST', '/orgs/octo-org/actions/runners/generate-jitconfig', {
    name,
    runner_group_id: 1,
    labels: [label],
  })) as { encoded_jit_config: string };
  return body.encoded_jit_config;
}

/** A hook that appends "<tag> <run id> <repository> <runner>" to `log`, sleeps `sleep` s, and exits `code`. */
function hook(name: string, log: string, tag: string, code = 0, sleep = 0): string {
  const path = join(dir, name);
  writeFileSync(
    path,
    `echo "${tag} $GITHUB_RUN_ID $GITHUB_REPOSITORY $RUNNER_NAME input=\${ACTIONS_RUNNER_INPUT_JITCONFIG:-none}" >> "${log}"\n` +
      `echo "hook ${tag} says hello"\nsleep ${sleep}\nexit ${code}\n`,
  );
  return path;
}

const lines = (path: string): string[] => readFileSync(path, 'utf8').trim().split('\n');

describe('job hooks', () => {
  it('runs the started hook before the job and the completed hook after it, renewing the job meanwhile', async () => {
    const log = join(dir, 'around.log');
    const config = await jitConfig('hooked-1', 'l-hooked-1');
    const output: string[] = [];
    const events: string[] = [];
    const exit = runEmulatedRunner(
      { jitConfig: config },
      {
        log: (line) => output.push(line),
        onEvent: (event) => events.push(event.type),
        hooks: {
          // Longer than the broker's offline limit: the job must be renewed while the hook runs.
          jobStarted: hook('started.sh', log, 'started', 0, 3),
          jobCompleted: hook('completed.sh', log, 'completed'),
          env: { PATH: process.env.PATH },
        },
      },
    );
    const [job] = sim.createJobs({ owner: 'octo-org', repo: 'app', labels: ['l-hooked-1'], durationMs: 200 });
    expect(await exit).toBe(ExitCode.Success);
    const done = sim.job(job!.id)!;
    expect(done.conclusion).toBe('success');
    expect(lines(log)).toEqual([
      `started ${done.runId} octo-org/app hooked-1 input=none`,
      `completed ${done.runId} octo-org/app hooked-1 input=none`,
    ]);
    expect(output).toContain('[job started hook] hook started says hello');
    expect(events).toEqual(['online', 'job-started', 'job-completed']);
    expect(output.join('\n')).not.toContain(config);
  });

  it('fails the job without running it when the started hook fails; the completed hook still runs', async () => {
    const log = join(dir, 'failing-start.log');
    const exit = runEmulatedRunner(
      { jitConfig: await jitConfig('hooked-2', 'l-hooked-2') },
      {
        hooks: {
          jobStarted: hook('bad-start.sh', log, 'started', 3),
          jobCompleted: hook('after-bad-start.sh', log, 'completed'),
        },
      },
    );
    const started = Date.now();
    // An hour-long job: it ends at once only because it never runs.
    const [job] = sim.createJobs({
      owner: 'octo-org',
      repo: 'app',
      labels: ['l-hooked-2'],
      durationMs: 3_600_000,
    });
    expect(await exit).toBe(ExitCode.Success);
    expect(Date.now() - started).toBeLessThan(60_000);
    expect(sim.job(job!.id)!.conclusion).toBe('failure');
    expect(lines(log).map((l) => l.split(' ')[0])).toEqual(['started', 'completed']);
  });

  it('fails the job when the completed hook fails', async () => {
    const log = join(dir, 'failing-end.log');
    const exit = runEmulatedRunner(
      { jitConfig: await jitConfig('hooked-3', 'l-hooked-3') },
      { hooks: { jobCompleted: hook('bad-end.sh', log, 'completed', 1) } },
    );
    const [job] = sim.createJobs({ owner: 'octo-org', repo: 'app', labels: ['l-hooked-3'], durationMs: 100 });
    expect(await exit).toBe(ExitCode.Success);
    expect(sim.job(job!.id)!.conclusion).toBe('failure');
    expect(lines(log)).toHaveLength(1);
  });
});

describe('config.sh, then run.sh', () => {
  it('configures once (settings files, 0600, no token in them) and runs from them', async () => {
    const { token } = (await gh('POST', '/orgs/octo-org/actions/runners/registration-token')) as {
      token: string;
    };
    const root = mkdtempSync(join(dir, 'root-'));
    const configured = await configureEmulatedRunner({
      url: sim.webUrl({ kind: 'org', org: 'octo-org' }),
      token,
      name: 'persistent-1',
      labels: ['l-persistent-1'],
      noDefaultLabels: true,
      ephemeral: false,
    });
    expect(configured.exitCode).toBe(ExitCode.Success);
    await writeRunnerConfig(root, configured.files!);
    for (const name of ['.runner', '.credentials', '.credentials_rsaparams']) {
      expect(statSync(join(root, name)).mode & 0o777).toBe(0o600);
      expect(readFileSync(join(root, name), 'utf8')).not.toContain(token);
    }
    const registered = sim.runners().find((r) => r.name === 'persistent-1')!;
    expect(registered).toMatchObject({ mode: 'token', ephemeral: false, status: 'offline' });

    // Two runs from the same files: a persistent runner takes a job, is stopped, and starts again.
    for (let round = 0; round < 2; round++) {
      const stop = new AbortController();
      const exit = runEmulatedRunner({ configured: await readRunnerConfig(root) }, { signal: stop.signal });
      const [job] = sim.createJobs({
        owner: 'octo-org',
        repo: 'app',
        labels: ['l-persistent-1'],
        durationMs: 50,
      });
      const deadline = Date.now() + 30_000;
      while (sim.job(job!.id)!.status !== 'completed' && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 50));
      expect(sim.job(job!.id)).toMatchObject({
        status: 'completed',
        conclusion: 'success',
        runnerId: registered.id,
      });
      stop.abort('SIGTERM');
      expect(await exit).toBe(ExitCode.Success);
    }
  });

  it('refuses a bad registration token with exit code 1 and no files', async () => {
    const result = await configureEmulatedRunner({
      url: sim.webUrl({ kind: 'org', org: 'octo-org' }),
      token: 'not-a-token',
      name: 'never',
    });
    expect(result).toEqual({ exitCode: ExitCode.TerminatedError });
  });

  it('names the missing file when run.sh finds no settings', async () => {
    await expect(readRunnerConfig(join(dir, 'nowhere'))).rejects.toThrow(
      /no \.runner in .*run config\.sh first/,
    );
  });
});
