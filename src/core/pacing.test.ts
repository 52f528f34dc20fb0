import { describe, expect, it } from 'vitest';
import { CreatePacer, bucketShape, budgetKey } from './pacing.js';
import type { PacerClock, PacingWaitEvent } from './pacing.js';
import type { FleetConfig } from './fleet-config.js';

/** A manual clock: timers fire only when `advance` passes them. */
function manualClock() {
  let now = 1_000_000;
  let seq = 0;
  const timers = new Map<number, { at: number; fn: () => void }>();
  const clock: PacerClock = {
    now: () => now,
    setTimeout: (fn, ms) => {
      const id = ++seq;
      timers.set(id, { at: now + ms, fn });
      return id as unknown as ReturnType<typeof setTimeout>;
    },
    clearTimeout: (t) => {
      timers.delete(t as unknown as number);
    },
  };
  const advance = async (ms: number) => {
    const end = now + ms;
    for (;;) {
      let next: [number, { at: number; fn: () => void }] | undefined;
      for (const e of timers) if (e[1].at <= end && (next === undefined || e[1].at < next[1].at)) next = e;
      if (next === undefined) break;
      timers.delete(next[0]);
      now = next[1].at;
      next[1].fn();
      await Promise.resolve();
    }
    now = end;
    await new Promise((r) => setImmediate(r));
  };
  return { clock, advance, now: () => now };
}

const KEY = 'api.github.com/org/octo';

describe('bucketShape', () => {
  it('never lets a minute hold more than the limit: burst + a minute of refill stays under it', () => {
    for (const limit of [2, 5, 20, 60, 180, 900, 5000]) {
      const { burst, ratePerMs } = bucketShape(limit);
      expect(burst).toBeGreaterThanOrEqual(1);
      expect(burst + ratePerMs * 60_000).toBeLessThanOrEqual(limit + 1e-9);
    }
    const github = bucketShape(180);
    expect(github.burst).toBe(9);
    expect(github.ratePerMs * 60_000).toBe(169);
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
  it('grants a burst at once, then paces to the rate, and a minute never holds more than the limit', async () => {
    const c = manualClock();
    const pacer = new CreatePacer({ clock: c.clock });
    const granted: number[] = [];
    for (let i = 0; i < 400; i++) {
      void pacer.acquire(KEY, 180, 'a', i).then(() => granted.push(c.now()));
    }
    await c.advance(0);
    expect(granted).toHaveLength(9);
    expect(pacer.waiting).toBe(391);
    await c.advance(60_000);
    expect(granted.length).toBeLessThanOrEqual(180);
    await c.advance(120_000);
    expect(granted).toHaveLength(400);
    // every sliding minute holds at most 180 grants
    for (let i = 0; i < granted.length; i++) {
      let j = i;
      while (j < granted.length && granted[j]! < granted[i]! + 60_000) j++;
      expect(j - i).toBeLessThanOrEqual(180);
    }
    // 391 after the burst at 169 a minute: about 139 s for the last
    expect(granted[399]! - granted[0]!).toBeGreaterThan(138_000);
    expect(granted[399]! - granted[0]!).toBeLessThan(140_000);
  });

  it('serves the oldest job first within a scale set, and is fair between scale sets', async () => {
    const c = manualClock();
    const pacer = new CreatePacer({ clock: c.clock });
    const order: string[] = [];
    const take = (set: string, at: number) =>
      void pacer.acquire(KEY, 60, set, at).then(() => order.push(`${set}${at}`));
    // limit 60: burst 3, then about one a second (57 a minute)
    for (let i = 0; i < 3; i++) take('x', i);
    await c.advance(0);
    expect(order).toEqual(['x0', 'x1', 'x2']);
    // a backlog of 20 in `big`, then `small` asks with newer jobs, and `big` gets an older one late
    for (let i = 10; i < 30; i++) take('big', i);
    take('small', 100);
    take('small', 101);
    take('big', 5);
    await c.advance(10_000);
    // oldest first across sets (big's 5 before small's 100), then alternating: small is not starved by big
    expect(order.slice(3, 9)).toEqual(['big5', 'small100', 'big10', 'small101', 'big11', 'big12']);
  });

  it('pauses the whole budget once on a refusal, and the bucket starts empty after it', async () => {
    const c = manualClock();
    const waits: PacingWaitEvent[] = [];
    const pacer = new CreatePacer({ clock: c.clock, onWait: (e) => waits.push(e) });
    const granted: number[] = [];
    const start = c.now();
    pacer.pause(KEY, 180, 30_000);
    pacer.pause(KEY, 180, 10_000); // a second refusal in the same wait does not extend or restart it
    for (let i = 0; i < 3; i++) void pacer.acquire(KEY, 180, 'a', i).then(() => granted.push(c.now()));
    await c.advance(29_000);
    expect(granted).toEqual([]);
    expect(pacer.scaleSet('a')).toMatchObject({ waiting: 3, pausedUntil: start + 30_000 });
    await c.advance(5_000);
    expect(granted.length).toBeGreaterThan(0);
    expect(granted[0]!).toBeGreaterThanOrEqual(start + 30_000);
    expect(waits[0]!.waitMs).toBeGreaterThanOrEqual(30_000);
    // another installation is not paused
    await pacer.acquire('other/org/x', 180, 'b', 0);
  });

  it('rejects waiters on close, and an aborted waiter leaves the queue', async () => {
    const c = manualClock();
    const pacer = new CreatePacer({ clock: c.clock });
    for (let i = 0; i < 9; i++) await pacer.acquire(KEY, 180, 'a', i);
    const abort = new AbortController();
    const aborted = pacer.acquire(KEY, 180, 'a', 10, abort.signal);
    const closed = pacer.acquire(KEY, 180, 'a', 11);
    expect(pacer.scaleSet('a').waiting).toBe(2);
    abort.abort(new Error('gone'));
    await expect(aborted).rejects.toThrow('gone');
    expect(pacer.scaleSet('a').waiting).toBe(1);
    pacer.close(new Error('shutting down'));
    await expect(closed).rejects.toThrow('shutting down');
    expect(pacer.waiting).toBe(0);
  });
});
