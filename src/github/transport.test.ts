import { describe, expect, it } from 'vitest';
import { routeTemplate } from './transport.js';

describe('routeTemplate', () => {
  it.each([
    [
      'GET',
      'https://api.github.com/orgs/acme/actions/runners?per_page=100&page=3',
      '',
      'GET /orgs/{org}/actions/runners',
    ],
    [
      'post',
      'https://api.github.com/repos/acme/app/actions/runners/generate-jitconfig',
      '',
      'POST /repos/{owner}/{repo}/actions/runners/generate-jitconfig',
    ],
    [
      'DELETE',
      'https://ghe.example/api/v3/enterprises/e1/actions/runners/42',
      '/api/v3',
      'DELETE /enterprises/{enterprise}/actions/runners/{runner_id}',
    ],
    [
      'GET',
      'https://api.github.com/repos/acme/app/actions/jobs/123456789',
      '',
      'GET /repos/{owner}/{repo}/actions/jobs/{job_id}',
    ],
    [
      'POST',
      'https://api.github.com/app/installations/99/access_tokens',
      '',
      'POST /app/installations/{installation_id}/access_tokens',
    ],
    [
      'GET',
      'https://api.github.com/orgs/acme/actions/runner-groups',
      '',
      'GET /orgs/{org}/actions/runner-groups',
    ],
    ['GET', 'https://api.github.com/orgs/acme/installation', '', 'GET /orgs/{org}/installation'],
    [
      'POST',
      'https://api.github.com/app/hook/deliveries/12345678/attempts',
      '',
      'POST /app/hook/deliveries/{delivery_id}/attempts',
    ],
    ['GET', 'https://api.github.com/app/hook/deliveries?per_page=100', '', 'GET /app/hook/deliveries'],
  ])('%s %s -> %s', (method, url, base, expected) => {
    expect(routeTemplate(method, url, base)).toBe(expected);
  });
});
