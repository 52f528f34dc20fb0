import { describe, expect, it } from 'vitest';
import { retryingFetch } from './github-preflight.js';

function scripted(answers: readonly (number | 'network')[]) {
  let calls = 0;
  const fetch = async (): Promise<Response> => {
    const answer = answers[Math.min(calls, answers.length - 1)]!;
    calls++;
    if (answer === 'network') throw new TypeError('fetch failed');
    return new Response('{}', { status: answer });
  };
  return { fetch, calls: () => calls };
}

describe('retryingFetch', () => {
  it('tries again after a 5xx, a 429 or no answer, and returns the first definite answer', async () => {
    const gh = scripted([500, 'network', 429, 200]);
    const response = await retryingFetch(gh.fetch)('http://127.0.0.1/app');
    expect(response.status).toBe(200);
    expect(gh.calls()).toBe(4);
  });

  it('does not retry a definite refusal', async () => {
    const gh = scripted([401, 200]);
    expect((await retryingFetch(gh.fetch)('http://127.0.0.1/app')).status).toBe(401);
    expect(gh.calls()).toBe(1);
  });

  it('gives the last failure after its tries', async () => {
    const failing = scripted([502]);
    expect((await retryingFetch(failing.fetch, 3)('http://127.0.0.1/app')).status).toBe(502);
    expect(failing.calls()).toBe(3);
    const down = scripted(['network']);
    await expect(retryingFetch(down.fetch, 2)('http://127.0.0.1/app')).rejects.toThrow('fetch failed');
    expect(down.calls()).toBe(2);
  });
});
