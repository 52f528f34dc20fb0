import { describe, expect, it } from 'vitest';
import { CreatePacer, WINDOW_MS, budgetKey, windowShape } from './pacing.js';
import type { PacingGrant, PacingWaitEvent } from './pacing.js';
import { manualClock } from '../../test/support/core/manual-clock.js';
import { RateLimiter } from '../sim/github/rate-limit.js';
import { seededRandom as random } from './names.js';
import type { FleetConfig } from './fleet-config.js';

const KEY = 'api.github.com/org/octo';

/** The most grants any sliding minute holds. */
function busiestMinute(times: readonly number[]): number {
  const sorted = [...times].sort((x, y) => x - y);
  let most = 0;
  for (let i = 0, j = 0; i < sorted.length; i++) {
    while (sorted[j]! <= sorted[i]! - WINDOW_MS) j++;
    most = Math.max(most, i - j + 1);
  }
  return most;
}

describe('windowShape', () => {
  it('keeps 2 under the limit (none below 20), lets half go at once, and refills the window in half a minute', () => {
    const github = windowShape(180);
    expect(github).toMatchObject({ capacity: 178, burst: 89 });
    expect(github.ratePerMs * 30_000).toBeCloseTo(178);
    expect(windowShape(2)).toMatchObject({ capacity: 2, burst: 1 });
    expect(windowShape(20)).toMatchObject({ capacity: 20, burst: 10 });
    for (const limit of [2, 5, 21, 60, 900, 5000]) {
      const { capacity, burst } = windowShape(limit);
      expect(capacity).toBeLessThanOrEqual(limit);
      expect(burst).toBeGreaterThanOrEqual(1);
      expect(burst).toBeLessThanOrEqual(capacity);
    }
  });
});

describe('budgetKey', () => {
  const base = (auth: FleetConfig['github']['auth']) =>
    ({ github: { url: 'https://github.com', apiUrl: 'https://api.github.com', ghes: false, auth } }) as Pick<
      FleetConfig,
      'github'
    >;
  const app = { app: { id: 1, privateKey: 'k' } };
  it('is per host and installation: the scope owner, or the configured installation', () => {
    expect(budgetKey(base(app), { org: 'Octo' })).toBe('api.github.com/org/octo');
    expect(budgetKey(base(app), { repo: 'octo/app' })).toBe('api.github.com/owner/octo');
    expect(budgetKey(base(app), { enterprise: 'ent' })).toBe('api.github.com/enterprise/ent');
    expect(budgetKey(base({ app: { ...app.app, installationId: 7 } }), { org: 'a' })).toBe(
      'api.github.com/installation/7',
    );
    expect(budgetKey(base({ token: 't' }), { org: 'a' })).toBe('api.github.com/token');
  });
});

describe('CreatePacer', () => {
  it('grants half the window at once, the rest over half a minute, then as completed calls age out', async () => {
    const c = manualClock();
    const pacer = new CreatePacer({ clock: c.clock });
    const granted: number[] = [];
    const start = c.now();
    // calls that complete 1 s after their grant
    for (let i = 0; i < 1000; i++) {
      void pacer.acquire(KEY, 180, 'a', i).then((g) => {
        granted.push(c.now());
        c.clock.setTimeout(() => g.done(), 1000);
      });
    }
    await c.advance(0);
    expect(granted).toHaveLength(89);
    expect(pacer.waiting).toBe(911);
    await c.advance(16_000);
    expect(granted).toHaveLength(178); // the window is full after a quarter of a minute
    await c.advance(44_000);
    expect(granted).toHaveLength(178); // and stays full until the first calls are a minute past completion
    // the first 89 places free together, but the burst did not refill while the window was full: one at once, then
    // one every 169 ms
    await c.advance(1_000);
    expect(granted.length - 178).toBeGreaterThanOrEqual(1);
    await c.advance(3_000);
    expect(granted.length - 178).toBeGreaterThanOrEqual(10);
    expect(granted.length - 178).toBeLessThanOrEqual(20);
    await c.advance(400_000);
    expect(granted).toHaveLength(1000);
    expect(busiestMinute(granted)).toBeLessThanOrEqual(178);
    // 1,000 creates at 180 a minute: the floor is 333 s; five full windows of 61 s each, then the last 110
    const last = granted[999]! - start;
    console.info(`last of 1,000 granted after ${last} ms`);
    expect(last).toBeGreaterThan(5 * 61_000);
    expect(last).toBeLessThan(333_333);
  });

  it('counts a call in flight until a minute after it completes, and frees an unused grant at once', async () => {
    const c = manualClock();
    const pacer = new CreatePacer({ clock: c.clock });
    // limit 10: a window of 10, 5 at once
    const grants: PacingGrant[] = [];
    for (let i = 0; i < 12; i++) void pacer.acquire(KEY, 10, 'a', i).then((g) => grants.push(g));
    await c.advance(0);
    expect(grants).toHaveLength(5);
    await c.advance(10 * 60_000); // calls that never complete keep their places however long they take
    expect(grants).toHaveLength(10);
    grants[0]!.done();
    grants[0]!.unused(); // only the first settlement counts
    await c.advance(59_000);
    expect(grants).toHaveLength(10);
    await c.advance(1_000);
    expect(grants).toHaveLength(11); // a minute after that call completed
    grants[1]!.unused(); // no call made: free at once
    await c.advance(0);
    expect(grants).toHaveLength(12);
    expect(pacer.waiting).toBe(0);
  });

  it('serves the oldest job first within a scale set, and is fair between scale sets', async () => {
    const c = manualClock();
    const pacer = new CreatePacer({ clock: c.clock });
    const order: string[] = [];
    const take = (set: string, at: number) =>
      void pacer.acquire(KEY, 60, set, at).then((g) => {
        order.push(`${set}${at}`);
        g.done();
      });
    // limit 60: a window of 58, 29 at once, then one every 1.03 s
    for (let i = 0; i < 29; i++) take('x', i);
    await c.advance(0);
    expect(order).toHaveLength(29);
    // a backlog of 20 in `big`, then `small` asks with newer jobs, and `big` gets an older one late
    for (let i = 30; i < 50; i++) take('big', i);
    take('small', 100);
    take('small', 101);
    take('big', 5);
    await c.advance(10_000);
    // oldest first across sets (big's 5 before small's 100), then alternating: small is not starved by big
    expect(order.slice(29, 35)).toEqual(['big5', 'small100', 'big30', 'small101', 'big31', 'big32']);
  });

  it("serves a scale set that starts asking during another one's backlog within seconds", async () => {
    const c = manualClock();
    const pacer = new CreatePacer({ clock: c.clock });
    const start = c.now();
    const first: Record<string, number> = {};
    const take = (set: string, order: number) =>
      void pacer.acquire(KEY, 180, set, order).then((g) => {
        first[set] ??= c.now() - start;
        c.clock.setTimeout(() => g.done(), 500);
      });
    for (let i = 0; i < 240; i++) take('big', i);
    await c.advance(5_000);
    for (let i = 0; i < 30; i++) take('small', 5_000 + i);
    await c.advance(2_000);
    expect(first.small).toBeLessThan(6_000);
  });

  it('pauses the whole budget once on a refusal, and the burst starts empty after it', async () => {
    const c = manualClock();
    const waits: PacingWaitEvent[] = [];
    const pacer = new CreatePacer({ clock: c.clock, onWait: (e) => waits.push(e) });
    const granted: number[] = [];
    const start = c.now();
    pacer.pause(KEY, 180, 30_000);
    pacer.pause(KEY, 180, 10_000); // a second refusal in the same wait does not extend or restart it
    for (let i = 0; i < 3; i++)
      void pacer.acquire(KEY, 180, 'a', i).then((g) => {
        granted.push(c.now());
        g.done();
      });
    await c.advance(29_000);
    expect(granted).toEqual([]);
    expect(pacer.scaleSet('a')).toMatchObject({ waiting: 3, pausedUntil: start + 30_000 });
    await c.advance(5_000);
    expect(granted).toHaveLength(3);
    expect(granted[0]!).toBeGreaterThanOrEqual(start + 30_000);
    expect(granted[2]! - granted[0]!).toBeGreaterThan(300); // one every 169 ms, not all at once
    expect(waits[0]!.waitMs).toBeGreaterThanOrEqual(30_000);
    // another installation is not paused
    await pacer.acquire('other/org/x', 180, 'b', 0);
  });

  it('rejects waiters on close, and an aborted waiter leaves the queue', async () => {
    const c = manualClock();
    const pacer = new CreatePacer({ clock: c.clock });
    for (let i = 0; i < 89; i++) (await pacer.acquire(KEY, 180, 'a', i)).done();
    const abort = new AbortController();
    const aborted = pacer.acquire(KEY, 180, 'a', 100, abort.signal);
    const closed = pacer.acquire(KEY, 180, 'a', 101);
    expect(pacer.scaleSet('a').waiting).toBe(2);
    abort.abort(new Error('gone'));
    await expect(aborted).rejects.toThrow('gone');
    expect(pacer.scaleSet('a').waiting).toBe(1);
    pacer.close(new Error('shutting down'));
    await expect(closed).rejects.toThrow('shutting down');
    expect(pacer.waiting).toBe(0);
  });

  // GitHub counts a call when it arrives, which is after our grant (queued behind other calls, on the wire) and
  // before it completes. Whatever those delays, the simulator's limiter (GitHub's sliding minute of arrivals)
  // refuses none of the calls the pacer grants.
  it.each([1, 2, 3, 4, 5, 6])(
    'never lets a minute of arrivals at GitHub pass the limit, whatever the latencies (seed %i)',
    async (seed) => {
      const c = manualClock();
      const rnd = random(seed);
      const limiter = new RateLimiter(
        { perHour: 1e9, status: 403, secondaryPerMinute: 180, maxConcurrent: 1e9 },
        () => c.now(),
      );
      const bucket = limiter.bucket({ kind: 'pat' });
      const pacer = new CreatePacer({ clock: c.clock });
      /** A delay: mostly short, sometimes long (a slow pool, a slow GitHub), sometimes none. */
      const delay = (typical: number, long: number) => {
        const r = rnd();
        if (r < 0.2) return 0;
        if (r < 0.9) return Math.floor(rnd() * typical);
        return Math.floor(rnd() * long);
      };
      const arrivals: number[] = [];
      let settled = 0;
      let asked = 0;
      const ask = (set: string) => {
        asked++;
        void pacer.acquire(KEY, 180, set, c.now()).then((g) => {
          if (rnd() < 0.05) {
            c.clock.setTimeout(
              () => {
                g.unused();
                settled++;
              },
              delay(2_000, 10_000),
            );
            return;
          }
          c.clock.setTimeout(
            () => {
              arrivals.push(c.now());
              try {
                limiter.consumeCreate(bucket);
              } catch {
                // counted by the limiter's refusals
              }
              c.clock.setTimeout(
                () => {
                  g.done();
                  settled++;
                },
                delay(1_500, 40_000),
              );
            },
            delay(3_000, 20_000),
          );
        });
      };
      // bursts of different sizes into three scale sets over ten minutes, and a trickle
      for (let t = 0; t < 600_000; t += 1_000) {
        const r = rnd();
        if (r < 0.03) {
          const set = ['a', 'b', 'c'][Math.floor(rnd() * 3)]!;
          const n = 20 + Math.floor(rnd() * 300);
          for (let i = 0; i < n; i++) ask(set);
        } else if (r < 0.5) ask('trickle');
        await c.advance(1_000);
      }
      await c.advance(30 * 60_000);
      expect(settled).toBe(asked);
      expect(arrivals.length).toBeGreaterThan(500);
      expect(limiter.refusals.secondaryRefusals).toBe(0);
      expect(busiestMinute(arrivals)).toBeLessThanOrEqual(180);
    },
    60_000,
  );
});
