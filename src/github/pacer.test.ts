import { describe, expect, it } from 'vitest';
import { Pacer } from './pacer.js';

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
