import { describe, expect, it } from 'vitest';
import { memoryReadModel } from './dashboard.test-helpers.js';
import { History } from './history.js';

describe('History', () => {
  it('samples runners and the longest queue time, counting jobs that started since the last sample', async () => {
    const t0 = 1_700_000_000_000;
    const model = memoryReadModel(t0);
    const history = new History({ intervalMs: 1000, windowMs: 3000 });
    const first = await history.sample(model, t0);
    expect(first.sets['linux-small']).toEqual({ runners: 3, busy: 2, queued: 1, queueMs: 1500 });

    // The queued job starts after 4 s of waiting and completes before the next sample: still counted.
    model.jobList[0] = {
      ...model.jobList[0]!,
      status: 'completed',
      startedAt: t0 + 500,
      completedAt: t0 + 900,
      waitMs: 4000,
    };
    const second = await history.sample(model, t0 + 1000);
    expect(second.sets['linux-small']!.queueMs).toBe(4000);
    // Not again in the following interval.
    const third = await history.sample(model, t0 + 2000);
    expect(third.sets['linux-small']!.queueMs).toBe(0);
  });

  it('keeps only the window', async () => {
    const history = new History({ intervalMs: 1000, windowMs: 3000 });
    for (let i = 0; i < 10; i++) history.add({ at: i * 1000, sets: {} });
    const view = history.view();
    expect(view.points.map((p) => p.at)).toEqual([7000, 8000, 9000]);
  });
});
