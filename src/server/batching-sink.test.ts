import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { jobEvent } from '../store/store.test-helpers.js';
import { Store } from '../store/store.js';
import { BatchingSink, isBatchWebhookSink } from './batching-sink.js';
import type { BatchWebhookSink } from './batching-sink.js';

let dir: string;
let store: Store;

beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'rf-batching-'));
  store = Store.open({ path: path.join(dir, 'fleet.db'), route: () => 'linux' });
});
afterEach(() => {
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

/** The real store, recording the size of each call. */
function counted(fail?: (ids: string[]) => boolean): { sink: BatchWebhookSink; calls: number[] } {
  const calls: number[] = [];
  return {
    calls,
    sink: {
      acceptWorkflowJob(e) {
        calls.push(1);
        if (fail?.([e.deliveryId])) throw new Error('refused');
        return store.acceptWorkflowJob(e);
      },
      acceptWorkflowJobs(events) {
        calls.push(events.length);
        if (fail?.(events.map((e) => e.deliveryId))) throw new Error('refused');
        return store.acceptWorkflowJobs(events);
      },
    },
  };
}

describe('BatchingSink', () => {
  it('recognises a sink that takes batches', () => {
    expect(isBatchWebhookSink(store)).toBe(true);
    expect(isBatchWebhookSink({ acceptWorkflowJob: () => ({ duplicate: false }) })).toBe(false);
  });

  it('writes the events of one turn in one call, after the turn, and settles each with its own result', async () => {
    const { sink, calls } = counted();
    const batching = new BatchingSink({ sink });
    const results = [
      batching.accept(jobEvent('a', 'queued', 1)),
      batching.accept(jobEvent('b', 'queued', 2)),
      batching.accept(jobEvent('a', 'queued', 3)),
    ];
    expect(calls).toEqual([]); // nothing written yet: no promise can have settled
    expect(batching.pending).toBe(3);
    expect(await Promise.all(results)).toEqual([
      { duplicate: false },
      { duplicate: false },
      { duplicate: true },
    ]);
    expect(calls).toEqual([3]);
    expect(store.stats().deliveries).toBe(2);
  });

  it('writes at once when maxEvents are queued', async () => {
    const { sink, calls } = counted();
    const batching = new BatchingSink({ sink, maxEvents: 2, schedule: () => undefined });
    const a = batching.accept(jobEvent('a', 'queued', 1));
    expect(calls).toEqual([]);
    const b = batching.accept(jobEvent('b', 'queued', 2));
    expect(calls).toEqual([2]);
    expect(await Promise.all([a, b])).toEqual([{ duplicate: false }, { duplicate: false }]);
  });

  it('retries a refused batch event by event: only the refused event fails', async () => {
    const { sink, calls } = counted((ids) => ids.includes('bad'));
    const batching = new BatchingSink({ sink });
    const settled = await Promise.allSettled([
      batching.accept(jobEvent('ok1', 'queued', 1)),
      batching.accept(jobEvent('bad', 'queued', 2)),
      batching.accept(jobEvent('ok2', 'queued', 3)),
    ]);
    expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(calls).toEqual([3, 1, 1, 1]);
    expect(store.job(1)).not.toBeNull();
    expect(store.job(2)).toBeNull();
    expect(store.job(3)).not.toBeNull();
  });

  it('fails every event when the store cannot write at all', async () => {
    const batching = new BatchingSink({ sink: store });
    store.close();
    const settled = await Promise.allSettled([
      batching.accept(jobEvent('a', 'queued', 1)),
      batching.accept(jobEvent('b', 'queued', 2)),
    ]);
    expect(settled.map((s) => s.status)).toEqual(['rejected', 'rejected']);
  });
});
