import v8 from 'node:v8';
import vm from 'node:vm';
import { describe, expect, it } from 'vitest';
import { keptBy } from '../../test/support/signals.js';
import { callSignal, mapLimit, sleepUnlessAborted } from './async.js';

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

describe('callSignal', () => {
  it('aborts with the reason of the source that aborted first, or of its own timeout', async () => {
    const a = new AbortController();
    const b = new AbortController();
    const call = callSignal([a.signal, undefined, b.signal], 10_000);
    expect(call.signal.aborted).toBe(false);
    b.abort(new Error('closing'));
    expect(call.signal.aborted).toBe(true);
    expect((call.signal.reason as Error).message).toBe('closing');
    expect(call.timedOut).toBe(false);

    // Many sub-requests of one call may wait on its signal: no "possible leak" warning for that.
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on('warning', onWarning);
    for (let i = 0; i < 50; i++) call.signal.addEventListener('abort', () => {});
    await new Promise((resolve) => setImmediate(resolve));
    process.off('warning', onWarning);
    expect(warnings.filter((w) => w.name === 'MaxListenersExceededWarning')).toEqual([]);

    const timed = callSignal([a.signal], 20);
    await new Promise((resolve) => timed.signal.addEventListener('abort', resolve, { once: true }));
    expect(timed.timedOut).toBe(true);
    expect((timed.signal.reason as Error).name).toBe('TimeoutError');
    expect(keptBy(a.signal).listeners).toBe(0); // the timeout released it
  });

  it('is aborted at once when a source already is', () => {
    const a = new AbortController();
    a.abort(new Error('gone'));
    const call = callSignal([new AbortController().signal, a.signal]);
    expect(call.signal.aborted).toBe(true);
    expect((call.signal.reason as Error).message).toBe('gone');
    expect(call.timedOut).toBe(false);
  });

  it('leaves nothing on a long-lived source once each call is released', () => {
    const process = new AbortController();
    for (let i = 0; i < 1_000; i++) {
      const call = callSignal([process.signal], 60_000);
      expect(keptBy(process.signal).listeners).toBe(1);
      call.release();
    }
    expect(keptBy(process.signal)).toEqual({ listeners: 0, derived: 0 });
    // What AbortSignal.any leaves, by contrast: every signal it derived.
    const any = new AbortController();
    for (let i = 0; i < 10; i++) AbortSignal.any([any.signal, new AbortController().signal]);
    expect(keptBy(any.signal).derived).toBe(10);
    // A released call no longer follows its source.
    const call = callSignal([process.signal]);
    call.release();
    process.abort();
    expect(call.signal.aborted).toBe(false);
  });

  it('is not kept alive by its timer once released (a pending timeout held every finished call)', async () => {
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as () => void;
    const source = new AbortController();
    const refs = (release: boolean): WeakRef<AbortSignal> => {
      const call = callSignal([source.signal], 60_000);
      call.signal.addEventListener('abort', () => {});
      if (release) call.release();
      return new WeakRef(call.signal);
    };
    const released = refs(true);
    const pending = refs(false);
    for (let i = 0; i < 3; i++) {
      await new Promise((resolve) => setImmediate(resolve));
      gc();
    }
    expect(released.deref()).toBeUndefined();
    // Not released: its timer and its listener on the source still hold it, as they must while the call runs.
    expect(pending.deref()).toBeDefined();
  });

  it('can leave its sources and keep its timeout, for an answer whose body is still on its way', async () => {
    const source = new AbortController();
    const call = callSignal([source.signal], 30);
    call.releaseSources();
    expect(keptBy(source.signal).listeners).toBe(0);
    source.abort(new Error('closing'));
    expect(call.signal.aborted).toBe(false);
    await new Promise((resolve) => call.signal.addEventListener('abort', resolve, { once: true }));
    expect(call.timedOut).toBe(true);
  });
});
