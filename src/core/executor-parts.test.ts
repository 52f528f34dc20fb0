import { describe, expect, it } from 'vitest';
import { ProviderError } from '../providers/provider.js';
import { afterFailure, backoffDelay, MAX_BACKOFF_MS, NO_BACKOFF } from './backoff.js';
import { classifyError, scrub } from './errors.js';
import { coolDownMs } from './executor.js';
import { isRunnerOf, runnerName, scaleSetOf, seededRandom } from './names.js';
import { Pool } from './pool.js';

describe('error classification', () => {
  it('honours an explicit verdict, then the HTTP status, and treats the unknown as transient', () => {
    expect(classifyError(new ProviderError('quota', { code: 'quota', retryable: false }))).toMatchObject({
      code: 'quota',
      retryable: false,
    });
    const http = (status: number) => classifyError(Object.assign(new Error('x'), { status }));
    expect([408, 409, 429, 500, 502].map((s) => http(s).retryable)).toEqual([true, true, true, true, true]);
    expect([400, 401, 403, 404, 422].map((s) => http(s).retryable)).toEqual([
      false,
      false,
      false,
      false,
      false,
    ]);
    expect(http(503).code).toBe('HTTP_503');
    expect(classifyError(new TypeError('fetch failed'))).toMatchObject({ code: 'UNKNOWN', retryable: true });
    expect(classifyError(Object.assign(new Error('gone'), { name: 'AbortError' }))).toMatchObject({
      code: 'aborted',
    });
  });

  it('scrubs secrets out of messages', () => {
    const jit = 'eyJ'.padEnd(64, 'A');
    expect(scrub(`bad config ${jit} rejected`, [jit])).toBe('bad config [redacted] rejected');
  });
});

describe('backoff', () => {
  it('doubles per failure from the base, capped, and does not escalate inside an open window', () => {
    expect([1, 2, 3, 4].map((n) => backoffDelay(n, 5000))).toEqual([5000, 10_000, 20_000, 40_000]);
    expect(backoffDelay(30, 5000)).toBe(MAX_BACKOFF_MS);
    const first = afterFailure(NO_BACKOFF, 1000, 5000);
    expect(first).toEqual({ failures: 1, until: 6000 });
    expect(afterFailure(first, 2000, 5000)).toBe(first); // a burst of failures is one step
    expect(afterFailure(first, 6000, 5000)).toEqual({ failures: 2, until: 16_000 });
    expect([1, 2, 3, 20].map(coolDownMs)).toEqual([1000, 2000, 4000, 120_000]);
  });
});

describe('runner names', () => {
  it('are deterministic for a seed and belong to exactly one scale set', () => {
    const a = Array.from(
      { length: 5 },
      (
        (r) => () =>
          runnerName('linux', r)
      )(seededRandom(3)),
    );
    const b = Array.from(
      { length: 5 },
      (
        (r) => () =>
          runnerName('linux', r)
      )(seededRandom(3)),
    );
    expect(a).toEqual(b);
    for (const n of a) expect(n).toMatch(/^linux-[a-z0-9]{8}$/);
    expect(isRunnerOf('linux', 'linux-x-ab12cd34')).toBe(false);
    expect(scaleSetOf('linux-x-ab12cd34', ['linux', 'linux-x'])).toBe('linux-x');
    expect(scaleSetOf('linux-ab12cd34', ['linux', 'linux-x'])).toBe('linux');
    expect(scaleSetOf('linux-AB12cd34', ['linux'])).toBeNull();
  });
});

describe('pool', () => {
  it('runs at most `limit` tasks at once, in order, and reports idle', async () => {
    const pool = new Pool(2);
    let running = 0;
    let peak = 0;
    const order: number[] = [];
    const task = (i: number) => async () => {
      running++;
      peak = Math.max(peak, running);
      await new Promise((r) => setTimeout(r, 5));
      running--;
      order.push(i);
      if (i === 3) throw new Error('task 3 failed');
      return i;
    };
    const results = await Promise.allSettled([1, 2, 3, 4, 5].map((i) => pool.run(task(i))));
    await pool.idle();
    expect(peak).toBe(2);
    expect(order.slice(0, 2).sort()).toEqual([1, 2]);
    expect(results.map((r) => r.status)).toEqual([
      'fulfilled',
      'fulfilled',
      'rejected',
      'fulfilled',
      'fulfilled',
    ]);
    expect(pool.size).toBe(0);
  });
});
