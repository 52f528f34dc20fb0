/**
 * Bad input gets GitHub's status codes and error bodies, and nothing crashes the simulator: malformed JSON, wrong
 * types, missing fields, unknown routes, bad or expired JWTs and tokens, and a seeded loop of random requests
 * against the REST API, the broker and the control API.
 */
import { createPrivateKey, createSign, generateKeyPairSync } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSimulator } from '../../src/sim/github/index.js';
import type { Simulator } from '../../src/sim/github/index.js';
import { call } from './helpers.js';

let sim: Simulator;

beforeAll(async () => {
  sim = await startSimulator({ installationTokenTtlMs: 300 });
});

afterAll(async () => {
  await sim?.close();
});

function jwt(claims: Record<string, unknown>, pem: string, alg = 'RS256'): string {
  const header = Buffer.from(JSON.stringify({ alg, typ: 'JWT' })).toString('base64url');
  const payload = Buffer.from(JSON.stringify(claims)).toString('base64url');
  const signer = createSign('RSA-SHA256');
  signer.update(`${header}.${payload}`);
  return `${header}.${payload}.${signer.sign(createPrivateKey(pem)).toString('base64url')}`;
}

const nowS = () => Math.floor(Date.now() / 1000);
const runnersUrl = () => `${sim.apiUrl}/orgs/octo-org/actions/runners`;
const jitUrl = () => `${runnersUrl()}/generate-jitconfig`;

function expectGitHubError(r: { status: number; body: unknown }, status: number, message?: RegExp): void {
  expect(r.status).toBe(status);
  const body = r.body as { message: string; documentation_url: string; status: string };
  expect(body.message).toEqual(expect.any(String));
  expect(body.documentation_url).toMatch(/^https:\/\/docs\.github\.com\//);
  expect(body.status).toBe(String(status));
  if (message) expect(body.message).toMatch(message);
}

describe('bad input', () => {
  it('malformed JSON: 400 Problems parsing JSON', async () => {
    const r = await call(jitUrl(), { method: 'POST', token: sim.token, raw: '{"name": "x",' });
    expectGitHubError(r, 400, /^Problems parsing JSON$/);
  });

  it("wrong types and missing fields: 422 with GitHub's messages", async () => {
    expectGitHubError(
      await call(jitUrl(), { method: 'POST', token: sim.token, body: { runner_group_id: 1, labels: ['a'] } }),
      422,
      /"name" wasn't supplied/,
    );
    expectGitHubError(
      await call(jitUrl(), {
        method: 'POST',
        token: sim.token,
        body: { name: 'a', runner_group_id: '1', labels: ['a'] },
      }),
      422,
      /For 'properties\/runner_group_id', "1" is not an integer/,
    );
    expectGitHubError(
      await call(jitUrl(), {
        method: 'POST',
        token: sim.token,
        body: { name: 'a', runner_group_id: 1, labels: 'a' },
      }),
      422,
      /is not an array/,
    );
    expectGitHubError(await call(jitUrl(), { method: 'POST', token: sim.token, body: [1, 2] }), 422);
    expectGitHubError(
      await call(`${runnersUrl()}/1/labels`, { method: 'PUT', token: sim.token, body: { labels: [1] } }),
      404,
    );
  });

  it('unknown routes and ids: 404 Not Found with rate-limit headers', async () => {
    for (const path of [
      '/nope',
      '/orgs/octo-org/actions/runners/abc',
      '/orgs/unknown-org/actions/runners',
      '/repos/octo-org/bad%20name/actions/runners',
    ]) {
      const r = await call(`${sim.apiUrl}${path}`, { token: sim.token });
      expectGitHubError(r, 404, /^Not Found$/);
      expect(r.headers.get('x-ratelimit-limit')).not.toBeNull();
    }
    expectGitHubError(
      await call(`${sim.apiUrl}/orgs/octo-org/actions/runners`, { method: 'PATCH', token: sim.token }),
      404,
    );
  });

  it('missing, bad and expired credentials: 401 with the messages clients look for', async () => {
    expectGitHubError(await call(runnersUrl()), 401, /^Requires authentication$/);
    expectGitHubError(
      await call(runnersUrl(), { headers: { authorization: 'Basic Zm9vOmJhcg==' } }),
      401,
      /Bad credentials/,
    );
    expectGitHubError(
      await call(runnersUrl(), { token: 'ghp_wrongwrongwrongwrongwrongwrongwrong' }),
      401,
      /Bad credentials/,
    );
    expectGitHubError(await call(`${sim.apiUrl}/app`, { token: sim.token }), 401, /JSON web token/);

    const pem = sim.privateKeyPem;
    const appUrl = `${sim.apiUrl}/app`;
    expect(
      (await call(appUrl, { token: jwt({ iat: nowS() - 30, exp: nowS() + 500, iss: sim.appId }, pem) }))
        .status,
    ).toBe(200);
    expectGitHubError(
      await call(appUrl, { token: jwt({ iat: nowS() - 700, exp: nowS() - 100, iss: sim.appId }, pem) }),
      401,
      /'Expiration time' claim \('exp'\) must be a numeric value/,
    );
    expectGitHubError(
      await call(appUrl, { token: jwt({ iat: nowS() - 30, exp: nowS() + 3600, iss: sim.appId }, pem) }),
      401,
      /is too far in the future/,
    );
    expectGitHubError(
      await call(appUrl, { token: jwt({ iat: nowS() + 600, exp: nowS() + 700, iss: sim.appId }, pem) }),
      401,
      /'Issued at' claim/,
    );
    const otherKey = generateKeyPairSync('rsa', { modulusLength: 2048 })
      .privateKey.export({ type: 'pkcs1', format: 'pem' })
      .toString();
    expectGitHubError(
      await call(appUrl, { token: jwt({ iat: nowS() - 30, exp: nowS() + 500, iss: sim.appId }, otherKey) }),
      401,
      /could not be decoded/,
    );
    expectGitHubError(
      await call(appUrl, { token: jwt({ iat: nowS() - 30, exp: nowS() + 500, iss: 999 }, pem) }),
      401,
    );
    const unsigned = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from(JSON.stringify({ iss: sim.appId })).toString('base64url')}.`;
    expectGitHubError(await call(appUrl, { token: unsigned }), 401);
    expectGitHubError(await call(appUrl, { token: 'a.b.c' }), 401);

    const issued = await call(`${sim.apiUrl}/app/installations/${sim.installations[0]!.id}/access_tokens`, {
      method: 'POST',
      token: jwt({ iat: nowS() - 30, exp: nowS() + 500, iss: sim.appId }, pem),
    });
    expect(issued.status).toBe(201);
    const token = (issued.body as { token: string }).token;
    expect((await call(runnersUrl(), { token })).status).toBe(200);
    await new Promise((r) => setTimeout(r, 400));
    expectGitHubError(await call(runnersUrl(), { token }), 401, /Bad credentials/);
  });

  it('survives a seeded loop of random requests: no 5xx, error bodies always JSON with a message', async () => {
    let seed = 0x5eed;
    const rnd = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed / 0x7fffffff;
    };
    const pick = <T>(items: readonly T[]): T => items[Math.floor(rnd() * items.length)]!;
    const junk = () =>
      pick([
        '',
        'null',
        '[]',
        '{}',
        '"x"',
        '42',
        '{"name":',
        '\u0000\u0001',
        '{"name":"r","runner_group_id":1,"labels":["a"]}',
        '{"name":{"$gt":1},"runner_group_id":1e309,"labels":[null]}',
        '{"labels":["' + 'x'.repeat(300) + '"]}',
        JSON.stringify({ owner: 'octo-org', repo: 'a', labels: [rnd() > 0.5 ? 'x' : 1], count: rnd() * 5 }),
        JSON.stringify({ name: 'i', registration: { mode: pick(['jit', 'token', 'x']), jitConfig: 'e30=' } }),
        'grant_type=client_credentials&client_assertion=a.b.c',
        Buffer.from(Array.from({ length: 64 }, () => Math.floor(rnd() * 256))).toString('latin1'),
      ]);
    const segment = () =>
      pick([
        'octo-org',
        'x',
        '1',
        '0',
        '-1',
        '99999999999999999999',
        '%00',
        '%E2%82%AC',
        '..',
        'a'.repeat(120),
        'runners',
        '%',
      ]);
    const paths = [
      () => `/orgs/${segment()}/actions/runners`,
      () => `/orgs/octo-org/actions/runners/${segment()}`,
      () => `/orgs/octo-org/actions/runners/${segment()}/labels/${segment()}`,
      () => `/repos/${segment()}/${segment()}/actions/runners/generate-jitconfig`,
      () => `/enterprises/${segment()}/actions/runners`,
      () => `/repos/octo-org/${segment()}/actions/jobs/${segment()}`,
      () => `/app/installations/${segment()}/access_tokens`,
      () => `/app/hook/deliveries/${segment()}/attempts`,
      () => `/rate_limit?per_page=${segment()}`,
      () => `/orgs/octo-org/actions/runners?per_page=${segment()}&page=${segment()}`,
      () => `/${segment()}/${segment()}`,
    ];
    const control = [
      () => '/_sim/jobs',
      () => `/_sim/jobs/${segment()}/cancel`,
      () => '/_sim/faults',
      () => '/_sim/instances',
      () => `/_sim/instances/${segment()}`,
      () => '/_sim/webhook',
      () => '/_runner/oauth2/token',
      () => '/_runner/sessions',
      () => `/_runner/message?sessionId=${segment()}&waitMs=5`,
      () => `/_runner/jobs/${segment()}/renew?waitMs=5`,
      () => `/_runner/jobs/${segment()}/complete`,
      () => '/_runner/agents',
      () => '/api/v3/actions/runner-registration',
    ];
    const auths = [undefined, sim.token, 'garbage', 'Bearer', 'token ghs_x', 'RemoteAuth X', 'Bearer a.b.c'];
    for (let i = 0; i < 600; i++) {
      const isControl = rnd() < 0.35;
      const path = isControl ? pick(control)() : pick(paths)();
      const method = pick(['GET', 'POST', 'PUT', 'DELETE', 'PATCH']);
      const auth = pick(auths);
      const headers: Record<string, string> = {
        'content-type': pick([
          'application/json',
          'text/plain',
          'application/x-www-form-urlencoded',
          'application/octet-stream',
        ]),
      };
      if (auth) headers.authorization = auth.includes(' ') ? auth : `token ${auth}`;
      const hasBody = method !== 'GET' && method !== 'DELETE' ? true : rnd() < 0.1;
      let response: Response;
      try {
        response = await fetch(`${sim.apiUrl}${path}`, {
          method,
          headers,
          body: hasBody && method !== 'GET' ? junk() : undefined,
        });
      } catch (error) {
        throw new Error(`request ${i} ${method} ${path} failed`, { cause: error });
      }
      const text = await response.text();
      expect(response.status, `${method} ${path}`).toBeLessThan(500);
      if (response.status >= 400 && text.length > 0) {
        const body = JSON.parse(text) as { message?: unknown };
        expect(typeof body.message, `${method} ${path} ${text}`).toBe('string');
      }
    }
    // Clean up what random bodies may have created, then check the simulator still serves.
    await call(`${sim.baseUrl}/_sim/reset`, { method: 'POST' });
    expect((await call(`${sim.baseUrl}/_sim/stats`)).status).toBe(200);
    expect((await call(runnersUrl(), { token: sim.token })).status).toBe(200);
  });
});
