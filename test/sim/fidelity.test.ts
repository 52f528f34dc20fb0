/**
 * Fidelity of the simulator against material nobody here wrote:
 * - every REST exchange of a scenario driven by a real @octokit/core + @octokit/auth-app client (success and error
 *   paths) is validated against GitHub's OpenAPI description (api.github.com, ghec for enterprise-only operations,
 *   and the newest ghes-3.x in GHES mode), requests too where the operation documents a body;
 * - workflow_job webhook payloads against the description's x-webhooks schemas and the keys of
 *   @octokit/webhooks-examples;
 * - GitHub's HMAC test vector through the simulator's signer, and deliveries verified with @octokit/webhooks-methods.
 */
import { createRequire } from 'node:module';
import { createAppAuth } from '@octokit/auth-app';
import { Octokit } from '@octokit/core';
import { RequestError } from '@octokit/request-error';
import { verify } from '@octokit/webhooks-methods';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signPayload, startSimulator } from '../../src/sim/github/index.js';
import type { RecordedExchange, Simulator } from '../../src/sim/github/index.js';
import { runEmulatedRunner } from '../../src/sim/runner/index.js';
import { waitFor, webhookReceiver } from './helpers.js';
import { Description, descriptionFile } from './openapi.js';

const require = createRequire(import.meta.url);

let dotcom: Description;
let ghec: Description;
let ghes: Description;

beforeAll(() => {
  dotcom = new Description(descriptionFile('api.github.com'));
  ghec = new Description(descriptionFile('ghec'));
  ghes = new Description(descriptionFile('newest-ghes'));
}, 120_000);

/** Runs a request and returns its status, whether octokit threw (4xx/5xx) or not. */
async function status(p: Promise<{ status: number }>): Promise<number> {
  try {
    return (await p).status;
  } catch (error) {
    if (error instanceof RequestError) return error.status;
    throw error;
  }
}

/** The product's calls, success and error paths, through a real octokit App client. */
async function scenario(sim: Simulator): Promise<void> {
  const installationId = sim.installations[0]!.id;
  const org = sim.installations[0]!.account;
  const app = new Octokit({
    baseUrl: sim.apiUrl,
    authStrategy: createAppAuth,
    auth: { appId: sim.appId, privateKey: sim.privateKeyPem },
  });
  const inst = new Octokit({
    baseUrl: sim.apiUrl,
    authStrategy: createAppAuth,
    auth: { appId: sim.appId, privateKey: sim.privateKeyPem, installationId },
  });
  const pat = new Octokit({ baseUrl: sim.apiUrl, auth: sim.token });
  const bad = new Octokit({ baseUrl: sim.apiUrl, auth: 'ghs_notarealtokennotarealtokennotareal1' });
  const ent = sim.enterprise;

  expect(await status(app.request('GET /app'))).toBe(200);
  expect(await status(app.request('GET /app/installations'))).toBe(200);
  expect(await status(app.request('GET /orgs/{org}/installation', { org }))).toBe(200);
  expect(
    await status(app.request('GET /repos/{owner}/{repo}/installation', { owner: org, repo: 'app' })),
  ).toBe(200);
  expect(await status(app.request('GET /orgs/{org}/installation', { org: 'no-such-org' }))).toBe(404);
  expect(
    await status(
      app.request('POST /app/installations/{installation_id}/access_tokens', { installation_id: 1 }),
    ),
  ).toBe(404);
  expect(await status(app.request('GET /app/hook/deliveries/{delivery_id}', { delivery_id: 1 }))).toBe(404);

  expect(await status(inst.request('GET /orgs/{org}/actions/runner-groups', { org }))).toBe(200);
  expect(
    await status(
      inst.request('GET /orgs/{org}/actions/runner-groups/{runner_group_id}', { org, runner_group_id: 1 }),
    ),
  ).toBe(200);
  expect(
    await status(
      inst.request('GET /orgs/{org}/actions/runner-groups/{runner_group_id}', { org, runner_group_id: 99 }),
    ),
  ).toBe(404);

  const created: number[] = [];
  for (let i = 0; i < 3; i++) {
    const r = await inst.request('POST /orgs/{org}/actions/runners/generate-jitconfig', {
      org,
      name: `fid-org-${i}`,
      runner_group_id: 1,
      labels: ['linux', 'x64'],
      work_folder: '_work',
    });
    expect(r.status).toBe(201);
    created.push(r.data.runner.id);
  }
  const repoJit = await inst.request('POST /repos/{owner}/{repo}/actions/runners/generate-jitconfig', {
    owner: org,
    repo: 'app',
    name: 'fid-repo-0',
    runner_group_id: 1,
    labels: ['linux'],
  });
  expect(repoJit.status).toBe(201);
  const jitArgs = { org, name: 'fid-org-0', runner_group_id: 1, labels: ['linux'] };
  expect(await status(inst.request('POST /orgs/{org}/actions/runners/generate-jitconfig', jitArgs))).toBe(
    409,
  );
  expect(
    await status(
      inst.request('POST /orgs/{org}/actions/runners/generate-jitconfig', {
        ...jitArgs,
        name: 'fid-x',
        labels: [],
      }),
    ),
  ).toBe(422);
  expect(
    await status(
      inst.request('POST /orgs/{org}/actions/runners/generate-jitconfig', {
        ...jitArgs,
        name: 'fid-x',
        runner_group_id: 42,
      }),
    ),
  ).toBe(404);
  expect(
    await status(
      inst.request('POST /orgs/{org}/actions/runners/generate-jitconfig', {
        org,
        name: 'fid-x',
        labels: ['a'],
      } as never),
    ),
  ).toBe(422);

  const page1 = await inst.request('GET /orgs/{org}/actions/runners', { org, per_page: 2, page: 1 });
  expect(page1.data.total_count).toBe(3);
  expect(page1.headers.link).toContain('rel="next"');
  expect(await status(inst.request('GET /orgs/{org}/actions/runners', { org, per_page: 2, page: 2 }))).toBe(
    200,
  );
  expect(
    (await inst.request('GET /orgs/{org}/actions/runners', { org, name: 'fid-org-1' })).data.runners,
  ).toHaveLength(1);
  expect(
    await status(inst.request('GET /repos/{owner}/{repo}/actions/runners', { owner: org, repo: 'app' })),
  ).toBe(200);
  const id = created[0]!;
  expect(
    await status(inst.request('GET /orgs/{org}/actions/runners/{runner_id}', { org, runner_id: id })),
  ).toBe(200);
  expect(
    await status(inst.request('GET /orgs/{org}/actions/runners/{runner_id}', { org, runner_id: 987654 })),
  ).toBe(404);
  expect(
    await status(inst.request('GET /orgs/{org}/actions/runners/{runner_id}/labels', { org, runner_id: id })),
  ).toBe(200);
  expect(
    await status(
      inst.request('POST /orgs/{org}/actions/runners/{runner_id}/labels', {
        org,
        runner_id: id,
        labels: ['gpu'],
      }),
    ),
  ).toBe(200);
  expect(
    await status(
      inst.request('PUT /orgs/{org}/actions/runners/{runner_id}/labels', {
        org,
        runner_id: id,
        labels: ['a', 'b'],
      }),
    ),
  ).toBe(200);
  expect(
    await status(
      inst.request('DELETE /orgs/{org}/actions/runners/{runner_id}/labels/{name}', {
        org,
        runner_id: id,
        name: 'a',
      }),
    ),
  ).toBe(200);
  expect(
    await status(
      inst.request('DELETE /orgs/{org}/actions/runners/{runner_id}/labels/{name}', {
        org,
        runner_id: id,
        name: 'zz',
      }),
    ),
  ).toBe(404);
  expect(
    await status(
      inst.request('DELETE /orgs/{org}/actions/runners/{runner_id}/labels', { org, runner_id: id }),
    ),
  ).toBe(200);
  expect(await status(inst.request('POST /orgs/{org}/actions/runners/registration-token', { org }))).toBe(
    201,
  );
  expect(await status(inst.request('POST /orgs/{org}/actions/runners/remove-token', { org }))).toBe(201);
  expect(
    await status(
      inst.request('POST /repos/{owner}/{repo}/actions/runners/registration-token', {
        owner: org,
        repo: 'app',
      }),
    ),
  ).toBe(201);
  expect(
    await status(
      inst.request('DELETE /orgs/{org}/actions/runners/{runner_id}', { org, runner_id: created[2]! }),
    ),
  ).toBe(204);
  expect(
    await status(
      inst.request('DELETE /orgs/{org}/actions/runners/{runner_id}', { org, runner_id: created[2]! }),
    ),
  ).toBe(404);

  // A busy runner: a job in progress on an emulated runner cannot be deleted (422).
  const busy = await inst.request('POST /orgs/{org}/actions/runners/generate-jitconfig', {
    org,
    name: 'fid-busy',
    runner_group_id: 1,
    labels: ['busy'],
  });
  const stop = new AbortController();
  const emulator = runEmulatedRunner({ jitConfig: busy.data.encoded_jit_config }, { signal: stop.signal });
  const [job] = sim.createJobs({ owner: org, repo: 'app', labels: ['busy'], durationMs: 60_000 });
  await waitFor('job in progress', () => sim.job(job!.id)!.status === 'in_progress');
  expect(
    await status(
      inst.request('DELETE /orgs/{org}/actions/runners/{runner_id}', { org, runner_id: busy.data.runner.id }),
    ),
  ).toBe(422);
  expect(
    await status(
      inst.request('GET /repos/{owner}/{repo}/actions/jobs/{job_id}', {
        owner: org,
        repo: 'app',
        job_id: job!.id,
      }),
    ),
  ).toBe(200);
  expect(
    await status(
      inst.request('GET /repos/{owner}/{repo}/actions/jobs/{job_id}', { owner: org, repo: 'app', job_id: 1 }),
    ),
  ).toBe(404);
  const [queuedJob] = sim.createJobs({ owner: org, repo: 'app', labels: ['nobody-serves-this'] });
  const runs = await inst.request('GET /repos/{owner}/{repo}/actions/runs', {
    owner: org,
    repo: 'app',
    status: 'queued',
  });
  expect(runs.data.workflow_runs.map((r) => r.id)).toEqual([queuedJob!.runId]);
  expect(
    await status(
      inst.request('GET /repos/{owner}/{repo}/actions/runs/{run_id}', {
        owner: org,
        repo: 'app',
        run_id: job!.runId,
      }),
    ),
  ).toBe(200);
  expect(
    await status(
      inst.request('GET /repos/{owner}/{repo}/actions/runs/{run_id}/jobs', {
        owner: org,
        repo: 'app',
        run_id: job!.runId,
      }),
    ),
  ).toBe(200);
  // Re-running a job: refused while its run is in progress, then a new attempt with a new job, queued.
  const rerun = (job_id: number) =>
    status(
      pat.request('POST /repos/{owner}/{repo}/actions/jobs/{job_id}/rerun', {
        owner: org,
        repo: 'app',
        job_id,
      }),
    );
  expect(await rerun(job!.id)).toBe(403);
  // An App needs actions: write (the default installation has read).
  expect(
    await status(
      inst.request('POST /repos/{owner}/{repo}/actions/jobs/{job_id}/rerun', {
        owner: org,
        repo: 'app',
        job_id: job!.id,
      }),
    ),
  ).toBe(403);
  sim.cancelJob(job!.id);
  sim.cancelJob(queuedJob!.id);
  stop.abort();
  await emulator;
  expect(await rerun(job!.id)).toBe(201);
  expect(await rerun(1)).toBe(404);
  const attempt = await inst.request('GET /repos/{owner}/{repo}/actions/runs/{run_id}', {
    owner: org,
    repo: 'app',
    run_id: job!.runId,
  });
  expect(attempt.data.run_attempt).toBe(2);
  expect(attempt.data.previous_attempt_url).toMatch(/\/attempts\/1$/);
  const again = await inst.request('GET /repos/{owner}/{repo}/actions/runs/{run_id}/jobs', {
    owner: org,
    repo: 'app',
    run_id: job!.runId,
  });
  expect(again.data.jobs).toHaveLength(1);
  const fresh = again.data.jobs[0]!;
  expect(fresh).toMatchObject({ run_attempt: 2, status: 'queued', name: sim.job(job!.id)!.name });
  expect(fresh.id).not.toBe(job!.id);
  expect(sim.job(job!.id)).toMatchObject({ status: 'completed', conclusion: 'cancelled' });
  sim.cancelJob(Number(fresh.id));

  expect(await status(inst.request('GET /rate_limit'))).toBe(200);
  expect(await status(bad.request('GET /orgs/{org}/actions/runners', { org }))).toBe(401);
  expect(
    await status(inst.request('GET /enterprises/{enterprise}/actions/runners', { enterprise: ent })),
  ).toBe(403);

  // Enterprise endpoints with the classic PAT.
  expect(
    await status(pat.request('GET /enterprises/{enterprise}/actions/runner-groups', { enterprise: ent })),
  ).toBe(200);
  expect(
    await status(
      pat.request('GET /enterprises/{enterprise}/actions/runner-groups/{runner_group_id}', {
        enterprise: ent,
        runner_group_id: 1,
      }),
    ),
  ).toBe(200);
  const entJit = await pat.request('POST /enterprises/{enterprise}/actions/runners/generate-jitconfig', {
    enterprise: ent,
    name: 'fid-ent-0',
    runner_group_id: 1,
    labels: ['linux'],
  });
  expect(entJit.status).toBe(201);
  expect(
    await status(pat.request('GET /enterprises/{enterprise}/actions/runners', { enterprise: ent })),
  ).toBe(200);
  expect(
    await status(
      pat.request('GET /enterprises/{enterprise}/actions/runners/{runner_id}', {
        enterprise: ent,
        runner_id: entJit.data.runner.id,
      }),
    ),
  ).toBe(200);
  expect(
    await status(
      pat.request('GET /enterprises/{enterprise}/actions/runners/{runner_id}/labels', {
        enterprise: ent,
        runner_id: entJit.data.runner.id,
      }),
    ),
  ).toBe(200);
  expect(
    await status(
      pat.request('POST /enterprises/{enterprise}/actions/runners/registration-token', { enterprise: ent }),
    ),
  ).toBe(201);
  expect(
    await status(
      pat.request('DELETE /enterprises/{enterprise}/actions/runners/{runner_id}', {
        enterprise: ent,
        runner_id: entJit.data.runner.id,
      }),
    ),
  ).toBe(204);

  // Deliveries (the App webhook), when the simulator delivers.
  const deliveries = await app.request('GET /app/hook/deliveries', { per_page: 2 });
  if (deliveries.data.length > 0) {
    const first = { id: Number(deliveries.data[0]!.id) };
    expect(
      await status(app.request('GET /app/hook/deliveries/{delivery_id}', { delivery_id: first.id })),
    ).toBe(200);
    expect(
      await status(
        app.request('POST /app/hook/deliveries/{delivery_id}/attempts', { delivery_id: first.id }),
      ),
    ).toBe(202);
    await sim.webhooksIdle();
  }

  // Last: the primary rate limit, spent.
  sim.setFaults({ rateLimit: { remaining: 0 } });
  expect(await status(inst.request('GET /orgs/{org}/actions/runners', { org }))).toBe(403);
  sim.setFaults({ rateLimit: { limit: 5000, remaining: 5000 } });
}

interface Tally {
  readonly operations: Set<string>;
  readonly requests: Set<string>;
  readonly failures: string[];
}

function validateExchanges(
  exchanges: readonly RecordedExchange[],
  prefix: string,
  descriptions: Description[],
): Tally {
  const tally: Tally = { operations: new Set(), requests: new Set(), failures: [] };
  for (const ex of exchanges) {
    if (!ex.template) continue;
    const urlPath = ex.url.split('?')[0]!.slice(prefix.length);
    const description = descriptions.find((d) => d.operation(ex.method, urlPath));
    if (!description) {
      tally.failures.push(
        `${ex.method} ${ex.template}: in no description (${descriptions.map((d) => d.name).join(', ')})`,
      );
      continue;
    }
    const body = ex.responseBody === undefined ? undefined : (JSON.parse(ex.responseBody) as unknown);
    const check = description.checkResponse(ex.method, urlPath, ex.status, body);
    const key = `${description.name} ${ex.method} ${check.template ?? ex.template} -> ${ex.status}`;
    if (!check.ok) tally.failures.push(`${key}: ${check.errors}`);
    else tally.operations.add(key);
    if (ex.status < 400 && ex.requestBody) {
      const req = description.checkRequest(ex.method, urlPath, JSON.parse(ex.requestBody) as unknown);
      if (req.hasSchema) {
        if (!req.ok) tally.failures.push(`request of ${key}: ${req.errors}`);
        else tally.requests.add(`${description.name} ${ex.method} ${req.template}`);
      }
    }
  }
  return tally;
}

describe('REST fidelity against GitHub OpenAPI descriptions', () => {
  let sim: Simulator;
  let hook: Awaited<ReturnType<typeof webhookReceiver>>;

  beforeAll(async () => {
    hook = await webhookReceiver();
    sim = await startSimulator({
      recordExchanges: true,
      webhookUrl: hook.url,
      webhookSecret: 'fidelity-secret',
    });
  });

  afterAll(async () => {
    await sim?.close();
    await hook?.close();
  });

  it('github.com mode: every exchange validates against api.github.com (ghec for enterprise-only operations)', async () => {
    await scenario(sim);
    const tally = validateExchanges(sim.recordedExchanges(), '', [dotcom, ghec]);
    console.log(
      `validated ${tally.operations.size} operation/status pairs and ${tally.requests.size} request bodies against ${dotcom.name} and ${ghec.name}`,
    );
    expect(tally.failures).toEqual([]);
    expect(tally.operations.size).toBeGreaterThanOrEqual(40);
    expect(tally.requests.size).toBeGreaterThanOrEqual(5);
  });

  it('webhook payloads validate against x-webhooks and carry the keys of the real examples', async () => {
    await sim.webhooksIdle();
    const examples = (
      require('@octokit/webhooks-examples/api.github.com/index.json') as {
        name: string;
        examples: Record<string, unknown>[];
      }[]
    ).find((e) => e.name === 'workflow_job')!.examples;
    const seen = new Set<string>();
    for (const delivery of hook.received) {
      const action = delivery.body.action as string;
      seen.add(action);
      for (const d of [dotcom, ghes]) {
        const check = d.checkWebhook(`workflow-job-${action.replace('_', '-')}`, delivery.body);
        expect(check.errors ?? '', `${d.name} ${action}`).toBe('');
      }
      expect(
        await verify('fidelity-secret', delivery.raw, delivery.headers['x-hub-signature-256'] as string),
      ).toBe(true);
      const example = examples.find((e) => e.action === action)!;
      for (const key of Object.keys(example))
        if (key !== 'deployment') expect(delivery.body, `${action}: ${key}`).toHaveProperty(key);
      const job = delivery.body.workflow_job as Record<string, unknown>;
      for (const key of Object.keys(example.workflow_job as object))
        expect(job, `${action}.workflow_job`).toHaveProperty(key);
      if (action === 'queued') {
        expect(job).toMatchObject({
          runner_id: null,
          runner_name: null,
          runner_group_id: null,
          runner_group_name: null,
        });
      } else if (action === 'in_progress') {
        expect(job.runner_name).toBe('fid-busy');
      }
      expect(delivery.headers['x-github-hook-id']).toMatch(/^\d+$/);
    }
    expect([...seen].sort()).toEqual(['completed', 'in_progress', 'queued']);
    console.log(
      `validated ${hook.received.length} workflow_job deliveries against x-webhooks of ${dotcom.name} and ${ghes.name}`,
    );
  });
});

describe('GHES mode against the newest ghes-3.x description', () => {
  it('serves the API under /api/v3 and every exchange validates', async () => {
    const sim = await startSimulator({ ghes: true, recordExchanges: true });
    try {
      expect(sim.apiUrl).toBe(`${sim.baseUrl}/api/v3`);
      await scenario(sim);
      const tally = validateExchanges(sim.recordedExchanges(), '/api/v3', [ghes]);
      console.log(
        `validated ${tally.operations.size} operation/status pairs and ${tally.requests.size} request bodies against ${ghes.name}`,
      );
      expect(tally.failures).toEqual([]);
      expect(tally.operations.size).toBeGreaterThanOrEqual(40);
      expect(sim.recordedExchanges().every((e) => e.url.startsWith('/api/v3/'))).toBe(true);
    } finally {
      await sim.close();
    }
  });
});

describe('the validator itself', () => {
  it('rejects responses that break the description, so the checks above can fail', () => {
    expect(dotcom.checkResponse('GET', '/orgs/o/actions/runners/1', 200, { id: 1, name: 'x' }).ok).toBe(
      false,
    );
    expect(dotcom.checkResponse('GET', '/orgs/o/actions/runners/1', 201, {}).ok).toBe(false);
    expect(
      dotcom.checkResponse('GET', '/orgs/o/actions/runners', 200, { total_count: 0, runners: [] }).ok,
    ).toBe(true);
    expect(
      dotcom.checkRequest('POST', '/orgs/o/actions/runners/generate-jitconfig', { name: 'x', labels: [] }).ok,
    ).toBe(false);
    expect(dotcom.checkWebhook('workflow-job-queued', { action: 'queued' }).ok).toBe(false);
  });
});

describe('webhook signatures', () => {
  it("reproduces GitHub's HMAC test vector", () => {
    expect(signPayload("It's a Secret to Everybody", 'Hello, World!')).toBe(
      'sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17',
    );
  });
});

describe('a real octokit App client', () => {
  it('gets an installation token, generates a JIT config and lists runners', async () => {
    const sim = await startSimulator();
    try {
      const auth = createAppAuth({ appId: sim.appId, privateKey: sim.privateKeyPem, request: undefined });
      const installationAuth = await createAppAuth({
        appId: sim.appId,
        privateKey: sim.privateKeyPem,
        installationId: sim.installations[0]!.id,
        request: new Octokit({ baseUrl: sim.apiUrl }).request,
      })({ type: 'installation' });
      expect(installationAuth.token).toMatch(/^ghs_/);
      expect(Date.parse(installationAuth.expiresAt)).toBeGreaterThan(Date.now() + 50 * 60_000);
      expect((await auth({ type: 'app' })).token.split('.')).toHaveLength(3);

      const octokit = new Octokit({ baseUrl: sim.apiUrl, auth: installationAuth.token });
      const jit = await octokit.request('POST /orgs/{org}/actions/runners/generate-jitconfig', {
        org: 'octo-org',
        name: 'octokit-1',
        runner_group_id: 1,
        labels: ['linux'],
      });
      const decoded = JSON.parse(
        Buffer.from(jit.data.encoded_jit_config, 'base64').toString('utf8'),
      ) as Record<string, string>;
      expect(Object.keys(decoded).sort()).toEqual(['.credentials', '.credentials_rsaparams', '.runner']);
      const runnerFile = JSON.parse(Buffer.from(decoded['.runner']!, 'base64').toString('utf8')) as Record<
        string,
        unknown
      >;
      expect(runnerFile).toMatchObject({ agentId: jit.data.runner.id, agentName: 'octokit-1', poolId: 1 });
      const list = await octokit.request('GET /orgs/{org}/actions/runners', { org: 'octo-org' });
      expect(list.data.runners.map((r) => r.name)).toEqual(['octokit-1']);
      expect(list.headers['x-ratelimit-remaining']).toBe('4998');
    } finally {
      await sim.close();
    }
  });
});
