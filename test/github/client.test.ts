import { inspect } from 'node:util';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { GitHubError } from '../../src/github/errors.js';
import type { Simulator } from '../../src/sim/github/index.js';
import { createMetrics } from '../../src/telemetry/metrics.js';
import { keptBy } from '../support/signals.js';
import { TestClock, clientFor, decodeJitConfig, startSim } from './helpers.js';

const ORG = { org: 'octo-org' } as const;
const REPO = { repo: 'octo-org/app' } as const;
const TOKENS = 'POST /app/installations/{installation_id}/access_tokens';
const JIT_ORG = 'POST /orgs/{org}/actions/runners/generate-jitconfig';
const LIST_ORG = 'GET /orgs/{org}/actions/runners';

async function caught(promise: Promise<unknown>): Promise<GitHubError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(GitHubError);
    return error as GitHubError;
  }
  throw new Error('expected a GitHubError');
}

describe('GitHub client against the simulator', () => {
  const clock = new TestClock();
  let sim: Simulator;
  // Lets a test decide which simulator dice rolls come up as faults.
  let rolls: number[] = [];

  beforeAll(async () => {
    sim = await startSim({
      now: clock.now,
      random: () => rolls.shift() ?? 0.999,
      installationTokenTtlMs: 10 * 60_000,
      registrationTokenTtlMs: 20 * 60_000,
      secondaryLimitPerMinute: 10_000,
    });
  });
  afterAll(async () => {
    await sim.close();
  });
  beforeEach(async () => {
    await sim.reset();
    await sim.setFaults({ rateLimit: { secondaryPerMinute: 10_000 } });
    rolls = [];
    clock.offsetMs = 0;
  });

  describe('App authentication', () => {
    it('finds each installation once and shares one cached installation token per installation', async () => {
      const t = clientFor(sim, { now: clock.now });
      await Promise.all(
        Array.from({ length: 20 }, (_, i) => t.client.listRunners(i % 2 ? ORG : { org: 'other-org' }, 'x-')),
      );
      await t.client.getJob('octo-org', 'app', 1);
      expect(t.count('GET /orgs/{org}/installation')).toBe(2);
      expect(t.count(TOKENS, 201)).toBe(2);
      // The repository of an org reuses the org's installation: no /repos/.../installation lookup.
      expect(t.count('GET /repos/{owner}/{repo}/installation')).toBe(0);
      // The simulator counted the same: nothing hidden from the hook.
      expect(sim.stats().apiCalls.byRoute[TOKENS]).toBe(2);
      expect(t.client.apiCallCount().total).toBe(sim.stats().apiCalls.total);
    });

    it('renews an installation token shortly before it expires, not after every call', async () => {
      const t = clientFor(sim, { now: clock.now, tokenRefreshMarginMs: 5 * 60_000 });
      await t.client.listRunners(ORG, 'x-');
      clock.advance(4 * 60_000);
      await t.client.listRunners(ORG, 'x-');
      expect(t.count(TOKENS)).toBe(1);
      // 10 min tokens, renewed 5 min before expiry.
      clock.advance(2 * 60_000);
      await t.client.listRunners(ORG, 'x-');
      expect(t.count(TOKENS)).toBe(2);
      expect(t.count(LIST_ORG, 200)).toBe(3);
    });

    it('uses a configured installation id without looking it up', async () => {
      const installationId = sim.installations.find((i) => i.account === 'octo-org')!.id;
      const t = clientFor(sim, {
        auth: { app: { id: sim.appId, privateKey: sim.privateKeyPem, installationId } },
      });
      await t.client.listRunners(ORG, 'x-');
      expect(t.count('GET /orgs/{org}/installation')).toBe(0);
      expect(t.count(TOKENS)).toBe(1);
    });

    it('reports an org the App is not installed on as installation_not_found', async () => {
      const t = clientFor(sim);
      const error = await caught(t.client.listRunners({ org: 'not-installed' }, 'x-'));
      expect(error.code).toBe('installation-not-found');
      expect(error.retryable).toBe(false);
    });

    it('works with a PAT: no installation, no token requests', async () => {
      const t = clientFor(sim, { auth: 'pat' });
      const r = await t.client.generateJitConfig(ORG, {
        name: 'fleet-pat1',
        runnerGroup: 'Default',
        labels: ['linux'],
      });
      expect(r.encodedJitConfig).not.toBe('');
      expect(t.count('GET /orgs/{org}/installation') + t.count(TOKENS)).toBe(0);
    });
  });

  describe('JIT configs', () => {
    it('creates JIT runners at org scope, resolving the runner group by name once', async () => {
      const t = clientFor(sim);
      const results = await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          t.client.generateJitConfig(ORG, {
            name: `fleet-org-${i}`,
            runnerGroup: 'GPU Runners',
            labels: ['linux', 'gpu'],
          }),
        ),
      );
      expect(t.count('GET /orgs/{org}/actions/runner-groups')).toBe(1);
      expect(t.count(JIT_ORG, 201)).toBe(10);
      const first = results[0]!;
      expect(first.runner).toMatchObject({ name: 'fleet-org-0', status: 'offline', busy: false });
      expect(first.runner.labels).toEqual(expect.arrayContaining(['self-hosted', 'linux', 'gpu']));
      const files = decodeJitConfig(first.encodedJitConfig);
      expect(Object.keys(files).sort()).toEqual(['.credentials', '.credentials_rsaparams', '.runner']);
      expect(files['.runner']).toMatchObject({ agentName: 'fleet-org-0', agentId: first.runner.id });
      const simRunner = sim.runners().find((r) => r.name === 'fleet-org-0')!;
      expect(simRunner).toMatchObject({ scope: 'org:octo-org', mode: 'jit', ephemeral: true });
    });

    it('creates JIT runners at repo scope in the default group (id 1) without a group lookup', async () => {
      const t = clientFor(sim);
      const r = await t.client.generateJitConfig(REPO, {
        name: 'fleet-repo-1',
        runnerGroup: 'Default',
        labels: ['linux'],
        workFolder: '_w',
      });
      expect(r.runner.name).toBe('fleet-repo-1');
      expect(t.count('GET /repos/{owner}/{repo}/actions/runner-groups')).toBe(0);
      expect(t.count('GET /orgs/{org}/actions/runner-groups')).toBe(0);
      expect(sim.runners().find((x) => x.name === 'fleet-repo-1')?.scope).toBe('repo:octo-org/app');
      expect(t.sent.find((s) => s.url.includes('generate-jitconfig'))?.body).toContain('"runner_group_id":1');
    });

    it("creates JIT runners in an org's Default group (id 1) without a group lookup", async () => {
      const t = clientFor(sim);
      const r = await t.client.generateJitConfig(ORG, {
        name: 'fleet-org-default',
        runnerGroup: 'Default',
        labels: ['linux'],
      });
      expect(r.runner.name).toBe('fleet-org-default');
      expect(t.count('GET /orgs/{org}/actions/runner-groups')).toBe(0);
      expect(t.count(JIT_ORG, 201)).toBe(1);
      expect(t.sent.find((s) => s.url.includes('generate-jitconfig'))?.body).toContain('"runner_group_id":1');
      expect(sim.runners().find((x) => x.name === 'fleet-org-default')?.scope).toBe('org:octo-org');
    });

    it('creates JIT runners at enterprise scope with a PAT', async () => {
      const t = clientFor(sim, { auth: 'pat' });
      const r = await t.client.generateJitConfig(
        { enterprise: sim.enterprise },
        { name: 'fleet-ent-1', runnerGroup: 'Default', labels: ['linux'] },
      );
      expect(r.runner.name).toBe('fleet-ent-1');
      expect(t.count('GET /enterprises/{enterprise}/actions/runner-groups')).toBe(1);
      expect(t.count('POST /enterprises/{enterprise}/actions/runners/generate-jitconfig', 201)).toBe(1);
    });

    it('treats a 409 on a name it already registered as success, with no usable config', async () => {
      const t = clientFor(sim);
      const created = await t.client.generateJitConfig(ORG, {
        name: 'fleet-dup',
        runnerGroup: 'linux',
        labels: ['linux'],
      });
      const again = await t.client.generateJitConfig(ORG, {
        name: 'fleet-dup',
        runnerGroup: 'linux',
        labels: ['linux'],
      });
      expect(again).toEqual({ runner: created.runner, encodedJitConfig: '' });
      expect(t.count(JIT_ORG, 409)).toBe(1);
      expect(sim.runners().filter((r) => r.name === 'fleet-dup')).toHaveLength(1);
    });

    it('recognises its own runner when the response to a successful POST was lost and the retry got 409', async () => {
      const t = clientFor(sim);
      await t.client.generateJitConfig(ORG, { name: 'fleet-warm', runnerGroup: 'linux', labels: ['linux'] });
      await sim.setFaults({ apiLostResponseRate: 0.5, apiErrorStatus: 502 });
      rolls = [0]; // the next call takes effect but its response is lost
      const r = await t.client.generateJitConfig(ORG, {
        name: 'fleet-lost',
        runnerGroup: 'linux',
        labels: ['linux'],
      });
      expect(r.encodedJitConfig).toBe('');
      expect(r.runner.name).toBe('fleet-lost');
      expect(t.calls.filter((c) => c.startsWith(JIT_ORG)).slice(1)).toEqual([
        `${JIT_ORG} 502`,
        `${JIT_ORG} 409`,
      ]);
      expect(sim.runners().filter((x) => x.name === 'fleet-lost')).toHaveLength(1);
    });

    it('reports an unknown runner group as runner_group_not_found, not retryable', async () => {
      const t = clientFor(sim);
      const error = await caught(
        t.client.generateJitConfig(ORG, { name: 'fleet-x', runnerGroup: 'no-such-group', labels: ['linux'] }),
      );
      expect(error).toMatchObject({ code: 'runner-group-not-found', retryable: false });
    });
  });

  describe('registration tokens', () => {
    it('fetches one token per scope for many runners, shared by concurrent callers, renewed near expiry', async () => {
      // Renewed 15 min before the simulator's 20 min expiry. (The App JWT is signed with the real clock, so the
      // test clock stays within its 10 min life.)
      const t = clientFor(sim, { now: clock.now, registrationTokenMarginMs: 15 * 60_000 });
      const tokens = await Promise.all(Array.from({ length: 50 }, () => t.client.registrationToken(ORG)));
      expect(new Set(tokens.map((x) => x.token)).size).toBe(1);
      expect(t.count('POST /orgs/{org}/actions/runners/registration-token')).toBe(1);
      expect(tokens[0]!.expiresAt).toBeGreaterThan(clock.now() + 19 * 60_000);
      await t.client.registrationToken(REPO);
      expect(t.count('POST /repos/{owner}/{repo}/actions/runners/registration-token')).toBe(1);
      clock.advance(4 * 60_000);
      expect((await t.client.registrationToken(ORG)).token).toBe(tokens[0]!.token);
      clock.advance(2 * 60_000);
      expect((await t.client.registrationToken(ORG)).token).not.toBe(tokens[0]!.token);
      expect(t.count('POST /orgs/{org}/actions/runners/registration-token')).toBe(2);
    });

    it('gives token-mode runners the web URL of their scope', () => {
      const { client } = clientFor(sim);
      expect(client.registrationUrl(ORG)).toBe(`${sim.baseUrl}/octo-org`);
      expect(client.registrationUrl(REPO)).toBe(`${sim.baseUrl}/octo-org/app`);
      expect(client.registrationUrl({ enterprise: 'octo-ent' })).toBe(`${sim.baseUrl}/enterprises/octo-ent`);
      expect(client.registrationUrl(ORG)).toBe(sim.webUrl({ kind: 'org', org: 'octo-org' } as never));
    });
  });

  describe('runners and jobs', () => {
    it('lists every runner with the fleet prefix across pages of 100', async () => {
      const t = clientFor(sim, { maxConcurrentWrites: 20 });
      const names = [
        ...Array.from({ length: 230 }, (_, i) => `fleet-${i}`),
        ...Array.from({ length: 25 }, (_, i) => `other-${i}`),
      ];
      await Promise.all(
        names.map((name) =>
          t.client.generateJitConfig(ORG, { name, runnerGroup: 'Default', labels: ['linux'] }),
        ),
      );
      const before = t.count(LIST_ORG);
      const listed = await t.client.listRunners(ORG, 'fleet-');
      expect(listed).toHaveLength(230);
      expect(new Set(listed.map((r) => r.name))).toEqual(
        new Set(names.filter((n) => n.startsWith('fleet-'))),
      );
      expect(t.count(LIST_ORG) - before).toBe(3);
      // the pages it took, counted over the whole scope (the prefix filter comes after)
      expect(listed.pages).toBe(3);
      expect(
        t.sent
          .filter((s) => s.url.includes('/actions/runners?') || s.url.endsWith('/actions/runners'))
          .every((s) => !s.url.includes('per_page=') || s.url.includes('per_page=100')),
      ).toBe(true);
      const none = await t.client.listRunners(ORG, 'nobody-');
      expect(none).toEqual([]);
      expect(none.pages).toBe(3);
      expect((await t.client.listRunners({ org: 'other-org' }, '')).pages).toBe(1);
    });

    it('gets and deletes runners; a missing runner is null and deleting it again succeeds', async () => {
      const t = clientFor(sim);
      const { runner } = await t.client.generateJitConfig(ORG, {
        name: 'fleet-del',
        runnerGroup: 'Default',
        labels: ['linux'],
      });
      expect(await t.client.getRunner(ORG, runner.id)).toMatchObject({ id: runner.id, name: 'fleet-del' });
      await t.client.deleteRunner(ORG, runner.id);
      await t.client.deleteRunner(ORG, runner.id);
      expect(await t.client.getRunner(ORG, runner.id)).toBeNull();
      expect(t.count('DELETE /orgs/{org}/actions/runners/{runner_id}', 404)).toBe(1);
      expect(sim.runners().some((r) => r.name === 'fleet-del')).toBe(false);
      expect(await t.client.findRunnerByName(ORG, 'fleet-del')).toBeNull();
    });

    it('reads job status; an unknown job is null', async () => {
      const t = clientFor(sim);
      const [job] = sim.createJobs({ owner: 'octo-org', repo: 'app', labels: ['self-hosted', 'linux'] });
      expect(await t.client.getJob('octo-org', 'app', job!.id)).toEqual({
        id: job!.id,
        status: 'queued',
        conclusion: null,
        runnerName: null,
        labels: ['self-hosted', 'linux'],
      });
      sim.cancelJob(job!.id);
      expect(await t.client.getJob('octo-org', 'app', job!.id)).toMatchObject({
        status: 'completed',
        conclusion: 'cancelled',
      });
      expect(await t.client.getJob('octo-org', 'app', 999_999_999)).toBeNull();
    });

    it('re-runs a job once its run has ended: refused as run-in-progress (retryable) before, counted by route', async () => {
      const RERUN = 'POST /repos/{owner}/{repo}/actions/jobs/{job_id}/rerun';
      const t = clientFor(sim, { auth: 'pat' });
      const [job] = sim.createJobs({ owner: 'octo-org', repo: 'app', labels: ['self-hosted', 'linux'] });
      const early = await caught(t.client.rerunJob('octo-org', 'app', job!.id));
      expect(early).toMatchObject({ code: 'run-in-progress', status: 403, retryable: true, route: RERUN });
      sim.cancelJob(job!.id);
      await t.client.rerunJob('octo-org', 'app', job!.id);
      expect(t.count(RERUN, 403)).toBe(1);
      expect(t.count(RERUN, 201)).toBe(1);
      const fresh = sim.jobs().find((j) => j.runId === job!.runId && j.id !== job!.id);
      expect(fresh).toMatchObject({ status: 'queued', labels: ['self-hosted', 'linux'] });
      const missing = await caught(t.client.rerunJob('octo-org', 'app', 999_999_999));
      expect(missing).toMatchObject({ code: 'not-found', retryable: false });
      // An App installation with actions: read may not re-run: a permission problem, not worth retrying.
      const app = clientFor(sim);
      const refused = await caught(app.client.rerunJob('octo-org', 'app', fresh!.id));
      expect(refused).toMatchObject({ code: 'forbidden', status: 403, retryable: false });
    });
  });

  describe('rate limits, retries and errors', () => {
    it('waits out a secondary rate limit (403 + retry-after) and succeeds', async () => {
      const t = clientFor(sim);
      await t.client.listRunners(ORG, 'x-');
      await sim.setFaults({ apiErrorRate: 0.5, apiErrorStatus: 403 });
      rolls = [0, 0];
      expect(await t.client.listRunners(ORG, 'x-')).toEqual([]);
      expect(t.calls.slice(-3)).toEqual([`${LIST_ORG} 403`, `${LIST_ORG} 403`, `${LIST_ORG} 200`]);
      expect(t.logs()).toContain('GitHub secondary rate limit hit');
    });

    it('never retries a refused runner-creating POST: the refusal and its retry-after reach the caller', async () => {
      const t = clientFor(sim);
      await t.client.listRunners(ORG, 'x-');
      await sim.setFaults({ rateLimit: { secondaryPerMinute: 1 } });
      await t.client.generateJitConfig(ORG, { name: 'paced-1', runnerGroup: 'Default', labels: ['linux'] });
      const error = await caught(
        t.client.generateJitConfig(ORG, { name: 'paced-2', runnerGroup: 'Default', labels: ['linux'] }),
      );
      expect(error).toMatchObject({ code: 'rate-limited', status: 403, retryable: true });
      expect(error.retryAfterMs).toBeGreaterThan(0);
      expect(t.count(JIT_ORG, 403)).toBe(1);
      expect(sim.stats().rateLimit.secondaryRefusals).toBe(1);
    });

    it('waits out a 429 with retry-after', async () => {
      const t = clientFor(sim);
      await t.client.listRunners(ORG, 'x-');
      await sim.setFaults({ apiErrorRate: 0.5, apiErrorStatus: 429 });
      rolls = [0];
      expect(await t.client.listRunners(ORG, 'x-')).toEqual([]);
      expect(t.calls.slice(-2)).toEqual([`${LIST_ORG} 429`, `${LIST_ORG} 200`]);
    });

    it('gives up after a bounded number of rate-limit retries with a retryable rate_limited error', async () => {
      const t = clientFor(sim, { maxRateLimitRetries: 2 });
      await t.client.listRunners(ORG, 'x-');
      await sim.setFaults({ apiErrorRate: 1, apiErrorStatus: 429 });
      const error = await caught(t.client.listRunners(ORG, 'x-'));
      expect(error).toMatchObject({
        code: 'rate-limited',
        status: 429,
        retryable: true,
        retryAfterMs: 1000,
        route: LIST_ORG,
      });
      expect(t.count(LIST_ORG, 429)).toBe(3);
    });

    it('fails fast on an exhausted primary limit, reporting when it resets', async () => {
      const t = clientFor(sim);
      await t.client.listRunners(ORG, 'x-');
      expect(t.client.rateLimitRemaining()).toBeGreaterThan(4000);
      await sim.setFaults({ rateLimit: { remaining: 0 } });
      const started = Date.now();
      const error = await caught(t.client.listRunners(ORG, 'x-'));
      expect(Date.now() - started).toBeLessThan(5_000);
      expect(error).toMatchObject({ code: 'rate-limited', status: 403, retryable: true });
      expect(error.retryAfterMs).toBeGreaterThan(60_000);
      expect(t.count(LIST_ORG, 403)).toBe(1);
      expect(t.client.rateLimitRemaining()).toBe(0);
    });

    it('retries 5xx a bounded number of times, then reports a retryable server_error', async () => {
      const t = clientFor(sim, { retries: 2 });
      await t.client.listRunners(ORG, 'x-');
      await sim.setFaults({ apiErrorRate: 1, apiErrorStatus: 503 });
      const error = await caught(t.client.getRunner(ORG, 1));
      expect(error).toMatchObject({ code: 'server-error', status: 503, retryable: true });
      expect(t.count('GET /orgs/{org}/actions/runners/{runner_id}', 503)).toBe(3);
      await sim.setFaults({ apiErrorRate: 0.5, apiErrorStatus: 500 });
      rolls = [0];
      expect(await t.client.getRunner(ORG, 1)).toBeNull();
    });

    it('times out each attempt and reports a retryable timeout', async () => {
      const t = clientFor(sim, { timeoutMs: 100, retries: 1 });
      await t.client.listRunners(ORG, 'x-');
      await sim.setFaults({ latencyMs: 400 });
      const error = await caught(t.client.listRunners(ORG, 'x-'));
      expect(error).toMatchObject({ code: 'timeout', retryable: true });
      expect(t.count(LIST_ORG, 'error')).toBe(2);
    });

    it('stops at once when the caller aborts, without retrying', async () => {
      const t = clientFor(sim);
      await t.client.listRunners(ORG, 'x-');
      await sim.setFaults({ latencyMs: 300 });
      const controller = new AbortController();
      setTimeout(() => controller.abort(), 50);
      const error = await caught(t.client.getRunner(ORG, 1, controller.signal));
      expect(error).toMatchObject({ code: 'aborted', retryable: false });
      expect(t.count('GET /orgs/{org}/actions/runners/{runner_id}')).toBe(1);
    });

    it('close() ends every call in flight at once (a hanging page, a retry wait) and every later one', async () => {
      const t = clientFor(sim, { retryBaseMs: 1000, retries: 3 });
      await t.client.listRunners(ORG, 'x-');
      await sim.setFaults({ latencyMs: 60_000 });
      const hanging = t.client.listRunners(ORG, 'x-').catch((e: unknown) => e);
      await sim.setFaults({ latencyMs: 0, apiErrorRate: 1, apiErrorStatus: 503 });
      // The first attempt answers 503 at once: the call then waits 1 s before its retry.
      const retrying = t.client.getRunner(ORG, 1).catch((e: unknown) => e);
      await new Promise((r) => setTimeout(r, 200));
      const started = performance.now();
      t.client.close();
      const [a, b] = await Promise.all([hanging, retrying]);
      expect(performance.now() - started).toBeLessThan(500);
      expect(a).toMatchObject({ code: 'aborted', retryable: false });
      expect(b).toMatchObject({ code: 'aborted', retryable: false });
      const later = await caught(t.client.getJob('octo-org', 'app', 1));
      expect(later).toMatchObject({ code: 'aborted' });
      t.client.close();
    });

    it('does not retry a call its caller aborted, whatever reason the abort gave', async () => {
      const t = clientFor(sim);
      await t.client.listRunners(ORG, 'x-');
      await sim.setFaults({ latencyMs: 300 });
      const controller = new AbortController();
      setTimeout(() => controller.abort(new Error('runner-fleet is shutting down')), 50);
      const error = await caught(t.client.listRunners(ORG, 'x-', controller.signal));
      expect(error).toMatchObject({ code: 'aborted', retryable: false });
      // Let a retry (5 ms apart here) show up if there were one.
      await new Promise((r) => setTimeout(r, 200));
      expect(t.count(LIST_ORG)).toBe(2);
      expect(t.count(LIST_ORG, 'error')).toBe(1);
    });

    it('classifies network failures as retryable', async () => {
      const closed = await startSim();
      const config = {
        url: closed.baseUrl,
        apiUrl: closed.apiUrl,
        ghes: false,
        auth: { token: closed.token },
      };
      await closed.close();
      const t = clientFor(sim, { config, retries: 1 });
      const error = await caught(t.client.getRunner(ORG, 1));
      expect(error).toMatchObject({ code: 'network', retryable: true });
      expect(t.count('GET /orgs/{org}/actions/runners/{runner_id}', 'error')).toBe(2);
    });

    it('reports a bad token as unauthorized, never showing the token', async () => {
      const badToken = 'ghp_' + 'Z'.repeat(36);
      const t = clientFor(sim, { auth: { token: badToken } });
      const error = await caught(t.client.listRunners(ORG, 'x-'));
      expect(error).toMatchObject({ code: 'unauthorized', status: 401, retryable: false });
      expect(t.count(LIST_ORG, 401)).toBe(1);
      expect(error.message).not.toContain(badToken);
      expect(inspect(error, { depth: 20 })).not.toContain(badToken);
      expect(JSON.stringify(error)).not.toContain(badToken);
    });

    it('keeps installation tokens and JIT configs out of errors and logs', async () => {
      const t = clientFor(sim);
      const { encodedJitConfig } = await t.client.generateJitConfig(ORG, {
        name: 'fleet-sec',
        runnerGroup: 'Default',
        labels: ['linux'],
      });
      const { token } = await t.client.registrationToken(ORG);
      await sim.setFaults({ apiErrorRate: 1, apiErrorStatus: 500 });
      const error = await caught(t.client.deleteRunner(ORG, 1));
      const dump = inspect(error, { depth: 20 }) + t.logs();
      expect(dump).not.toContain(encodedJitConfig);
      expect(dump).not.toContain(token);
      expect(dump).not.toContain(sim.privateKeyPem.split('\n')[1]!);
      expect(dump).not.toMatch(/ghs_[A-Za-z0-9]{20,}/);
      expect(dump).not.toMatch(/\beyJ[A-Za-z0-9_-]{10,}\.eyJ/);
    });
  });

  describe('webhook deliveries', () => {
    const ONE = 'GET /app/hook/deliveries/{delivery_id}';

    it('reads one delivery with its payload as the App, paced, retried and counted like every call', async () => {
      sim.setWebhook('http://127.0.0.1:9/webhook');
      const [job] = sim.createJobs({ owner: 'octo-org', repo: 'app', labels: ['linux'] });
      await sim.webhooksIdle();
      const metrics = createMetrics();
      const t = clientFor(sim, { metrics });
      const [listed] = await t.client.listWebhookDeliveries(0);
      expect(listed).toBeDefined();
      await sim.setFaults({ apiErrorRate: 0.5, apiErrorStatus: 502 });
      rolls = [0];
      const detail = await t.client.getWebhookDelivery(listed!.id);
      expect(detail).toMatchObject({ ...listed, event: 'workflow_job', action: 'queued' });
      expect(detail.payload).toMatchObject({ action: 'queued', workflow_job: { id: job!.id } });
      expect(t.calls.filter((c) => c.startsWith(ONE))).toEqual([`${ONE} 502`, `${ONE} 200`]);
      const text = await metrics.registry.metrics();
      expect(text).toContain(`runner_fleet_github_api_calls_total{route="${ONE}",status="502"} 1`);
      expect(text).toContain(`runner_fleet_github_api_calls_total{route="${ONE}",status="200"} 1`);

      await sim.setFaults({ apiErrorRate: 0 });
      expect(await caught(t.client.getWebhookDelivery(987_654_321))).toMatchObject({ code: 'not-found' });
      const pat = clientFor(sim, { auth: 'pat' });
      expect(await caught(pat.client.getWebhookDelivery(listed!.id))).toMatchObject({ code: 'unauthorized' });
      expect(pat.calls).toEqual([]);
    });
  });

  describe('metrics', () => {
    it('counts every attempt by route template and status and keeps the last x-ratelimit-remaining', async () => {
      const metrics = createMetrics();
      const t = clientFor(sim, { metrics });
      await t.client.generateJitConfig(ORG, { name: 'fleet-m1', runnerGroup: 'Default', labels: ['linux'] });
      await t.client.deleteRunner(ORG, 424242);
      const text = await metrics.registry.metrics();
      expect(text).toContain(`runner_fleet_github_api_calls_total{route="${JIT_ORG}",status="201"} 1`);
      expect(text).toContain(
        'runner_fleet_github_api_calls_total{route="DELETE /orgs/{org}/actions/runners/{runner_id}",status="404"} 1',
      );
      expect(text).toContain(`runner_fleet_github_rate_limit_remaining ${t.client.rateLimitRemaining()}`);
      expect(t.client.apiCallCount()).toMatchObject({ total: t.calls.length, byStatus: { 404: 1 } });
    });
  });

  it("keeps nothing on the caller's long-lived signal once its calls are done", async () => {
    // The executor hands every call the one signal it aborts at shutdown: what a call attaches to it must go when the
    // call ends, or a controller that runs for weeks keeps a little of every call it ever made.
    const t = clientFor(sim);
    const shutdown = new AbortController();
    for (let i = 0; i < 20; i++) {
      await t.client.generateJitConfig(
        ORG,
        { name: `fleet-s${i}`, runnerGroup: 'Default', labels: ['linux'] },
        shutdown.signal,
      );
      await t.client.listRunners(ORG, 'fleet-s', shutdown.signal);
    }
    await t.client.deleteRunner(ORG, 424242, shutdown.signal);
    expect(keptBy(shutdown.signal)).toEqual({ listeners: 0, derived: 0 });
    // And the signal still stops a call in flight.
    const pending = t.client.listRunners(ORG, 'fleet-s', shutdown.signal);
    shutdown.abort();
    expect((await caught(pending)).code).toBe('aborted');
  });
});

describe('GitHub Enterprise Server mode', () => {
  let sim: Simulator;
  beforeAll(async () => {
    sim = await startSim({ ghes: true });
  });
  afterAll(async () => {
    await sim.close();
  });

  it('talks to <url>/api/v3 with App auth and registers runners against the GHES web URL', async () => {
    expect(sim.apiUrl).toBe(`${sim.baseUrl}/api/v3`);
    const t = clientFor(sim);
    const r = await t.client.generateJitConfig(ORG, {
      name: 'ghes-1',
      runnerGroup: 'linux',
      labels: ['linux'],
    });
    expect(r.encodedJitConfig).not.toBe('');
    expect((await t.client.listRunners(ORG, 'ghes-')).map((x) => x.name)).toEqual(['ghes-1']);
    await t.client.registrationToken(REPO);
    expect(t.sent.every((s) => s.url.startsWith(`${sim.baseUrl}/api/v3/`))).toBe(true);
    // Route templates are the same as on github.com: metrics do not depend on the deployment.
    expect(t.calls).toContain(`${JIT_ORG} 201`);
    expect(t.client.registrationUrl(ORG)).toBe(`${sim.baseUrl}/octo-org`);
  });
});
