import { describe, expect, it } from 'vitest';
import { mapLimit, sleepUnlessAborted } from './async.js';

describe('sleepUnlessAborted', () => {
  it('waits the time, or ends early (resolving) when the signal aborts', async () => {
    const t0 = performance.now();
    await sleepUnlessAborted(30, new AbortController().signal);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(25);
    const abort = new AbortController();
    const t1 = performance.now();
    const slept = sleepUnlessAborted(10_000, abort.signal);
    abort.abort();
    await slept;
    expect(performance.now() - t1).toBeLessThan(1000);
    await expect(sleepUnlessAborted(10_000, abort.signal)).resolves.toBeUndefined();
  });
});

describe('mapLimit', () => {
  it('keeps the order of the items and never runs more than the limit at once', async () => {
    let running = 0;
    let peak = 0;
    const out = await mapLimit([5, 1, 4, 2, 3, 0], 2, async (n) => {
      running++;
      peak = Math.max(peak, running);
      await new Promise((r) => setTimeout(r, n));
      running--;
      return n * 10;
    });
    expect(out).toEqual([50, 10, 40, 20, 30, 0]);
    expect(peak).toBe(2);
    expect(await mapLimit([], 4, async () => 1)).toEqual([]);
  });
});
