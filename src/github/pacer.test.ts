import { describe, expect, it } from 'vitest';
import { Pacer, RetryLimiter } from './pacer.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('Pacer', () => {
  it('never runs more than maxConcurrent jobs at once and runs them all', async () => {
    const pacer = new Pacer({ maxConcurrent: 3, minIntervalMs: 0 });
    let running = 0;
    let peak = 0;
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        pacer.schedule<number>(
          {},
          async (n: number) => {
            running += 1;
            peak = Math.max(peak, running);
            await sleep(5);
            running -= 1;
            return n * 2;
          },
          i,
        ),
      ),
    );
    expect(results).toEqual(Array.from({ length: 20 }, (_, i) => i * 2));
    expect(peak).toBe(3);
  });

  it('spaces starts by minIntervalMs', async () => {
    const pacer = new Pacer({ maxConcurrent: 10, minIntervalMs: 40 });
    const starts: number[] = [];
    await Promise.all(Array.from({ length: 4 }, () => pacer.schedule({}, () => starts.push(Date.now()))));
    for (let i = 1; i < starts.length; i++) expect(starts[i]! - starts[i - 1]!).toBeGreaterThanOrEqual(38);
  });

  it('lets retries (weight 0) through without queueing, and propagates failures', async () => {
    const pacer = new Pacer({ maxConcurrent: 1, minIntervalMs: 0 });
    let release = () => {};
    const blocker = pacer.schedule({}, () => new Promise<void>((r) => (release = r)));
    expect(await pacer.schedule({ weight: 0 }, () => 'retry')).toBe('retry');
    await expect(pacer.schedule({ weight: 0 }, () => Promise.reject(new Error('boom')))).rejects.toThrow(
      'boom',
    );
    const queued = pacer.schedule({}, () => 'after');
    expect(pacer.pending).toBe(1);
    release();
    await blocker;
    expect(await queued).toBe('after');
  });
});

describe('RetryLimiter', () => {
  it('runs a job without waiting for a timer', async () => {
    const limiter = new RetryLimiter();
    let ran = false;
    const job = limiter.schedule<number>(async (n: number) => {
      ran = true;
      return n + 1;
    }, 1);
    // started synchronously, like a direct call
    expect(ran).toBe(true);
    expect(await job).toBe(2);
  });

  it('retries after the wait a failed listener answers, with the retry count, and rethrows when none answers', async () => {
    const waits: number[] = [];
    const limiter = new RetryLimiter(async (ms) => {
      waits.push(ms);
    });
    const seen: number[] = [];
    limiter.on('failed', (_error, info) => {
      seen.push(info.retryCount);
      return info.retryCount < 2 ? 250 : undefined;
    });
    let attempts = 0;
    const failing = limiter.schedule({ priority: 1 }, async () => {
      attempts++;
      throw new Error(`attempt ${attempts}`);
    });
    await expect(failing).rejects.toThrow('attempt 3');
    expect(attempts).toBe(3);
    expect(seen).toEqual([0, 1, 2]);
    expect(waits).toEqual([250, 250]);
    let tries = 0;
    const recovers = await limiter.schedule(async () => {
      if (++tries === 1) throw new Error('once');
      return 'ok';
    });
    expect(recovers).toBe('ok');
  });
});
