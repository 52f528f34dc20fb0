/**
 * The simulator's runner and job semantics, driven through its real HTTP API and in-process emulated runners:
 * JIT config -> online -> any matching job -> completed -> ephemeral runner removed; single-use JIT configs;
 * label matching; cancellation; a runner that vanishes mid-job; JIT expiry; token-mode registration.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSimulator } from '../../src/sim/github/index.js';
import type { Simulator } from '../../src/sim/github/index.js';
import { ExitCode, runEmulatedRunner } from '../../src/sim/runner/index.js';
import { call, waitFor, webhookReceiver } from './helpers.js';

let sim: Simulator;
let hook: Awaited<ReturnType<typeof webhookReceiver>>;

beforeAll(async () => {
  hook = await webhookReceiver();
  sim = await startSimulator({
    webhookUrl: hook.url,
    runnerOfflineAfterMs: 300,
    offlineJobTimeoutMs: 300,
    jitExpiryMs: 400,
    orgs: ['octo-org', 'other-org'],
  });
});

afterAll(async () => {
  await sim?.close();
  await hook?.close();
});

async function jit(
  name: string,
  labels: string[],
  scope = 'orgs/octo-org',
): Promise<{ id: number; config: string }> {
  const r = await call(`${sim.apiUrl}/${scope}/actions/runners/generate-jitconfig`, {
    method: 'POST',
    token: sim.token,
    body: { name, runner_group_id: 1, labels },
  });
  expect(r.status).toBe(201);
  const body = r.body as { runner: { id: number }; encoded_jit_config: string };
  return { id: body.runner.id, config: body.encoded_jit_config };
}

describe('runner and job lifecycle', () => {
  it('runs a matching job on a JIT runner, removes the runner, and refuses the config a second time', async () => {
    const { id, config } = await jit('life-1', ['linux', 'x64']);
    const lines: string[] = [];
    const exit = runEmulatedRunner({ jitConfig: config }, { log: (l) => lines.push(l) });
    await waitFor('runner online', () => sim.runners().find((r) => r.id === id && r.status === 'online'));
    const [job] = sim.createJobs({
      owner: 'octo-org',
      repo: 'app',
      labels: ['Linux', 'self-hosted'],
      durationMs: 100,
    });
    expect(await exit).toBe(ExitCode.Success);
    const done = sim.job(job!.id)!;
    expect(done.status).toBe('completed');
    expect(done.conclusion).toBe('success');
    expect(done.runnerName).toBe('life-1');
    expect(sim.runners().some((r) => r.id === id)).toBe(false);
    const get = await call(`${sim.apiUrl}/orgs/octo-org/actions/runners/${id}`, { token: sim.token });
    expect(get.status).toBe(404);
    expect(lines.join('\n')).not.toContain(config.slice(0, 40));

    const again = await runEmulatedRunner({ jitConfig: config }, {});
    expect(again).toBe(ExitCode.TerminatedError);

    await sim.webhooksIdle();
    const actions = hook.received
      .filter((d) => (d.body.workflow_job as { id: number }).id === job!.id)
      .map((d) => d.body.action);
    expect(actions).toEqual(['queued', 'in_progress', 'completed']);
  });

  it('refuses a JIT config used a second time while its runner is still online', async () => {
    const { config } = await jit('life-twice', ['twice']);
    const stop = new AbortController();
    const first = runEmulatedRunner({ jitConfig: config }, { signal: stop.signal });
    await waitFor('online', () =>
      sim.runners().find((r) => r.name === 'life-twice' && r.status === 'online'),
    );
    const lines: string[] = [];
    expect(await runEmulatedRunner({ jitConfig: config }, { log: (l) => lines.push(l) })).toBe(
      ExitCode.TerminatedError,
    );
    expect(lines.join('\n')).toMatch(/already been used/);
    expect(sim.runners().find((r) => r.name === 'life-twice')?.status).toBe('online');
    stop.abort();
    expect(await first).toBe(0);
  });

  it('does not give a job to a runner whose labels do not cover it, nor to another org', async () => {
    const small = await jit('life-small', ['linux']);
    const other = await jit('life-other', ['linux', 'gpu'], 'orgs/other-org');
    const stop = new AbortController();
    const runs = [
      runEmulatedRunner({ jitConfig: small.config }, { signal: stop.signal }),
      runEmulatedRunner({ jitConfig: other.config }, { signal: stop.signal }),
    ];
    await waitFor(
      'both online',
      () => sim.runners().filter((r) => r.status === 'online' && r.name.startsWith('life-')).length === 2,
    );
    const [job] = sim.createJobs({
      owner: 'octo-org',
      repo: 'app',
      labels: ['linux', 'gpu'],
      durationMs: 10,
    });
    await new Promise((r) => setTimeout(r, 150));
    expect(sim.job(job!.id)!.status).toBe('queued');
    expect(sim.cancelJob(job!.id)).toBe(true);
    expect(sim.job(job!.id)!.conclusion).toBe('cancelled');
    stop.abort();
    expect(await Promise.all(runs)).toEqual([0, 0]);
    await waitFor('offline', () => sim.runners().every((r) => r.status === 'offline'));
  });

  it('fails the job of a runner that vanishes mid-job, after the offline timeout', async () => {
    const { id, config } = await jit('life-vanish', ['vanish']);
    const kill = new AbortController();
    const exit = runEmulatedRunner({ jitConfig: config }, { signal: kill.signal });
    await waitFor('online', () => sim.runners().find((r) => r.id === id && r.status === 'online'));
    const [job] = sim.createJobs({ owner: 'octo-org', repo: 'app', labels: ['vanish'], durationMs: 60_000 });
    await waitFor('in progress', () => sim.job(job!.id)!.status === 'in_progress');
    kill.abort('SIGKILL');
    expect(await exit).toBe(137);
    const failed = await waitFor('job failed', () => {
      const j = sim.job(job!.id)!;
      return j.status === 'completed' ? j : undefined;
    });
    expect(failed.conclusion).toBe('failure');
    expect(sim.runners().find((r) => r.id === id)?.status).toBe('offline');
  });

  it('expires an unused JIT registration', async () => {
    const { id } = await jit('life-expire', ['linux']);
    expect(sim.runners().some((r) => r.id === id)).toBe(true);
    await waitFor('expired', () => !sim.runners().some((r) => r.id === id), 3_000);
  });

  it('answers 409 for a duplicate runner name', async () => {
    await jit('life-dup', ['linux']);
    const r = await call(`${sim.apiUrl}/orgs/octo-org/actions/runners/generate-jitconfig`, {
      method: 'POST',
      token: sim.token,
      body: { name: 'life-dup', runner_group_id: 1, labels: ['linux'] },
    });
    expect(r.status).toBe(409);
    expect(r.body).toMatchObject({ message: expect.any(String), documentation_url: expect.any(String) });
  });

  it('registers a persistent runner with a registration token (config.sh flow) and runs two jobs', async () => {
    const token = await call(`${sim.apiUrl}/repos/octo-org/svc/actions/runners/registration-token`, {
      method: 'POST',
      token: sim.token,
    });
    expect(token.status).toBe(201);
    const stop = new AbortController();
    const exit = runEmulatedRunner(
      {
        url: sim.webUrl({ kind: 'repo', owner: 'octo-org', repo: 'svc' }),
        token: (token.body as { token: string }).token,
        name: 'persistent-1',
        labels: ['big'],
        noDefaultLabels: true,
      },
      { signal: stop.signal },
    );
    await waitFor('online', () =>
      sim.runners().find((r) => r.name === 'persistent-1' && r.status === 'online'),
    );
    const jobs = sim.createJobs({
      owner: 'octo-org',
      repo: 'svc',
      labels: ['big'],
      durationMs: 20,
      count: 2,
    });
    await waitFor('both done', () => jobs.every((j) => sim.job(j.id)!.status === 'completed'));
    expect(sim.runners().find((r) => r.name === 'persistent-1')).toMatchObject({
      ephemeral: false,
      mode: 'token',
    });
    stop.abort();
    expect(await exit).toBe(0);

    const bad = await runEmulatedRunner(
      { url: sim.webUrl({ kind: 'org', org: 'octo-org' }), token: 'WRONGTOKEN', name: 'x' },
      {},
    );
    expect(bad).toBe(ExitCode.TerminatedError);
  });
});
