/**
 * The simulated cloud (/_sim/instances), exactly as the `sim` provider uses it over HTTP: idempotent create,
 * list by tags, get, delete; instance state follows the hosted emulated runner; secrets never come back.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSimulator } from '../../src/sim/github/index.js';
import type { InstanceView, Simulator } from '../../src/sim/github/index.js';
import { call, waitFor } from './helpers.js';

let sim: Simulator;

beforeAll(async () => {
  sim = await startSimulator({ runnerOfflineAfterMs: 500 });
});

afterAll(async () => {
  await sim?.close();
});

async function jitConfig(name: string, labels: string[]): Promise<string> {
  const r = await call(`${sim.apiUrl}/orgs/octo-org/actions/runners/generate-jitconfig`, {
    method: 'POST',
    token: sim.token,
    body: { name, runner_group_id: 1, labels },
  });
  expect(r.status).toBe(201);
  return (r.body as { encoded_jit_config: string }).encoded_jit_config;
}

const instance = async (name: string) =>
  (await call(`${sim.baseUrl}/_sim/instances/${name}`)).body as InstanceView;

describe('/_sim/instances', () => {
  it('hosts a JIT runner that runs one job; the instance succeeds; create is idempotent; no secret is shown', async () => {
    const config = await jitConfig('inst-jit-1', ['cloud']);
    const body = {
      name: 'inst-jit-1',
      tags: { fleet: 'f1', scaleSet: 'small' },
      registration: { mode: 'jit', jitConfig: config },
    };
    const created = await call(`${sim.baseUrl}/_sim/instances`, { method: 'POST', body });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ name: 'inst-jit-1', tags: { fleet: 'f1', scaleSet: 'small' } });
    expect(['pending', 'running']).toContain((created.body as InstanceView).state);
    expect(typeof (created.body as InstanceView).createdAt).toBe('number');
    expect(created.text).not.toContain(config.slice(0, 24));

    const again = await call(`${sim.baseUrl}/_sim/instances`, { method: 'POST', body });
    expect(again.status).toBe(200);
    expect((again.body as InstanceView).createdAt).toBe((created.body as InstanceView).createdAt);

    await waitFor('runner online', () =>
      sim.runners().find((r) => r.name === 'inst-jit-1' && r.status === 'online'),
    );
    expect((await instance('inst-jit-1')).state).toBe('running');
    const [job] = sim.createJobs({ owner: 'octo-org', repo: 'app', labels: ['cloud'], durationMs: 30 });
    await waitFor('instance succeeded', async () => (await instance('inst-jit-1')).state === 'succeeded');
    expect(await instance('inst-jit-1')).toMatchObject({ state: 'succeeded', exitCode: 0 });
    expect(sim.job(job!.id)).toMatchObject({ status: 'completed', runnerName: 'inst-jit-1' });
    expect(sim.runners().some((r) => r.name === 'inst-jit-1')).toBe(false);
  });

  it('lists by tags and fails an instance whose JIT config was already used', async () => {
    const config = await jitConfig('inst-used', ['used']);
    await call(`${sim.baseUrl}/_sim/instances`, {
      method: 'POST',
      body: {
        name: 'inst-used-a',
        tags: { fleet: 'f2', scaleSet: 'a' },
        registration: { mode: 'jit', jitConfig: config },
      },
    });
    await waitFor('online', () => sim.runners().find((r) => r.name === 'inst-used' && r.status === 'online'));
    await call(`${sim.baseUrl}/_sim/instances`, {
      method: 'POST',
      body: {
        name: 'inst-used-b',
        tags: { fleet: 'f2', scaleSet: 'b' },
        registration: { mode: 'jit', jitConfig: config },
      },
    });
    const failed = await waitFor('second instance failed', async () => {
      const i = await instance('inst-used-b');
      return i.state === 'failed' ? i : undefined;
    });
    expect(failed.exitCode).toBe(1);
    expect(failed.message).toMatch(/exited with code 1/);

    const all = (await call(`${sim.baseUrl}/_sim/instances?tag.fleet=f2`)).body as {
      instances: InstanceView[];
    };
    expect(all.instances.map((i) => i.name).sort()).toEqual(['inst-used-a', 'inst-used-b']);
    const one = (await call(`${sim.baseUrl}/_sim/instances?tag.fleet=f2&tag.scaleSet=b`)).body as {
      instances: InstanceView[];
    };
    expect(one.instances.map((i) => i.name)).toEqual(['inst-used-b']);
    const none = (await call(`${sim.baseUrl}/_sim/instances?tag.fleet=nope`)).body as {
      instances: InstanceView[];
    };
    expect(none.instances).toEqual([]);
  });

  it('deletes an instance: 204, its runner stops (offline), then 404', async () => {
    const token = await call(`${sim.apiUrl}/orgs/octo-org/actions/runners/registration-token`, {
      method: 'POST',
      token: sim.token,
    });
    const created = await call(`${sim.baseUrl}/_sim/instances`, {
      method: 'POST',
      body: {
        name: 'inst-persistent',
        tags: { fleet: 'f3' },
        registration: {
          mode: 'token',
          url: `${sim.baseUrl}/octo-org`,
          token: (token.body as { token: string }).token,
          labels: ['persist'],
          runnerGroup: 'Default',
          ephemeral: false,
        },
      },
    });
    expect(created.status).toBe(201);
    expect(created.text).not.toContain((token.body as { token: string }).token);
    await waitFor(
      'online',
      () => sim.runners().find((r) => r.name === 'inst-persistent' && r.status === 'online'),
      15_000,
    );
    const jobs = sim.createJobs({
      owner: 'octo-org',
      repo: 'app',
      labels: ['persist'],
      durationMs: 10,
      count: 3,
    });
    await waitFor('jobs done', () => jobs.every((j) => sim.job(j.id)!.status === 'completed'));
    expect((await instance('inst-persistent')).state).toBe('running');

    const del = await call(`${sim.baseUrl}/_sim/instances/inst-persistent`, { method: 'DELETE' });
    expect(del.status).toBe(204);
    await waitFor('offline', () =>
      sim.runners().find((r) => r.name === 'inst-persistent' && r.status === 'offline'),
    );
    expect((await call(`${sim.baseUrl}/_sim/instances/inst-persistent`)).status).toBe(404);
    expect((await call(`${sim.baseUrl}/_sim/instances/inst-persistent`, { method: 'DELETE' })).status).toBe(
      404,
    );
  });

  it('keeps an instance pending during its boot delay', async () => {
    const config = await jitConfig('inst-slow', ['slow']);
    await call(`${sim.baseUrl}/_sim/instances`, {
      method: 'POST',
      body: {
        name: 'inst-slow',
        tags: {},
        registration: { mode: 'jit', jitConfig: config },
        bootDelayMs: 300,
      },
    });
    expect((await instance('inst-slow')).state).toBe('pending');
    await waitFor('running', async () => (await instance('inst-slow')).state === 'running');
    expect((await call(`${sim.baseUrl}/_sim/instances/inst-slow`, { method: 'DELETE' })).status).toBe(204);
  });

  it('settles an instance stopped during its boot delay, so a reset does not wait for it', async () => {
    const config = await jitConfig('inst-never-booted', ['slow']);
    await call(`${sim.baseUrl}/_sim/instances`, {
      method: 'POST',
      body: {
        name: 'inst-never-booted',
        tags: {},
        registration: { mode: 'jit', jitConfig: config },
        bootDelayMs: 60_000,
      },
    });
    expect(
      (await call(`${sim.baseUrl}/_sim/instances/inst-never-booted/kill`, { method: 'POST' })).status,
    ).toBe(200);
    expect((await instance('inst-never-booted')).state).toBe('failed');
    // reset() waits for every instance's runner to settle: it must not hang on one that never booted.
    const started = Date.now();
    expect((await call(`${sim.baseUrl}/_sim/reset`, { method: 'POST' })).status).toBeLessThan(300);
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('rejects bad input with 400 and a message', async () => {
    const bad = [
      {},
      { name: 'x' },
      { name: 'has space', registration: { mode: 'jit', jitConfig: 'x' } },
      { name: 'x', registration: { mode: 'jit' } },
      {
        name: 'x',
        registration: {
          mode: 'token',
          url: 'u',
          token: 't',
          labels: 'a',
          runnerGroup: 'Default',
          ephemeral: true,
        },
      },
      { name: 'x', tags: { a: 1 }, registration: { mode: 'jit', jitConfig: 'x' } },
      { name: 'x', registration: { mode: 'jit', jitConfig: 'x' }, bootDelayMs: -1 },
    ];
    for (const body of bad) {
      const r = await call(`${sim.baseUrl}/_sim/instances`, { method: 'POST', body });
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect((r.body as { message: string }).message).toEqual(expect.any(String));
    }
    expect((await call(`${sim.baseUrl}/_sim/instances`, { method: 'POST', raw: '{nope' })).status).toBe(400);
  });
});
