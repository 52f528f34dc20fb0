/**
 * Group commit against the real store (SQLite file) and a real listening server: concurrent webhooks share one
 * transaction, and no 202 goes out before the transaction holding its event committed.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { WorkflowJobEvent } from '../../src/core/ports.js';
import type { BatchWebhookSink } from '../../src/server/batching-sink.js';
import { Store } from '../../src/store/store.js';
import { signedHeaders, startTestServer, workflowJobPayload } from './helpers.js';
import type { TestServer } from './helpers.js';

let dir: string;
let file: string;
let store: Store;
let t: TestServer | null = null;

/** The real store, with its calls recorded; a delivery id listed in `refuse` is refused, alone or in a batch. */
function recordingStore(refuse = new Set<string>()) {
  const calls: string[][] = [];
  const check = (events: readonly WorkflowJobEvent[]) => {
    const bad = events.find((e) => refuse.has(e.deliveryId));
    if (bad) throw new Error(`refused ${bad.deliveryId}`);
  };
  const sink: BatchWebhookSink = {
    acceptWorkflowJob(event) {
      calls.push([event.deliveryId]);
      check([event]);
      return store.acceptWorkflowJob(event);
    },
    acceptWorkflowJobs(events) {
      calls.push(events.map((e) => e.deliveryId));
      check(events);
      return store.acceptWorkflowJobs(events);
    },
  };
  return { sink, calls };
}

/** Deliveries committed to the file, read through a second connection (not the store's caches). */
function committed(): string[] {
  const db = new Database(file, { readonly: true });
  try {
    return db
      .prepare<[], { delivery_id: string }>('SELECT delivery_id FROM deliveries ORDER BY delivery_id')
      .all()
      .map((r) => r.delivery_id);
  } finally {
    db.close();
  }
}

async function send(url: string, delivery: string, jobId: number, action = 'queued') {
  const body = JSON.stringify(workflowJobPayload({ jobId, action }));
  const res = await fetch(`${url}/webhook`, {
    method: 'POST',
    body,
    headers: await signedHeaders(body, 'workflow_job', delivery),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'rf-group-commit-'));
  file = path.join(dir, 'fleet.db');
  store = Store.open({ path: file, route: () => 'linux' });
});

afterEach(async () => {
  await t?.server.close();
  t = null;
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('webhook group commit', () => {
  it('sends no 202 before the transaction holding the event committed', async () => {
    const { sink, calls } = recordingStore();
    let flush: (() => void) | null = null;
    // The batch is written only when the test says so (or when 3 events are queued).
    t = await startTestServer({ sink, webhookBatch: { maxEvents: 3, schedule: (f) => (flush = f) } });
    const url = await t.server.listen();
    const replies: number[] = [];
    const a = send(url, 'd-a', 1).then((r) => (replies.push(r.status), r));
    const b = send(url, 'd-b', 2).then((r) => (replies.push(r.status), r));
    for (let i = 0; i < 200 && flush === null; i++) await new Promise((r) => setTimeout(r, 5));
    await new Promise((r) => setTimeout(r, 300));
    expect(flush).not.toBeNull();
    expect(replies).toEqual([]);
    expect(calls).toEqual([]);
    expect(committed()).toEqual([]);
    flush!();
    expect((await a).status).toBe(202);
    expect((await b).body).toEqual({ accepted: true, duplicate: false });
    expect(calls).toHaveLength(1);
    expect([...calls[0]!].sort()).toEqual(['d-a', 'd-b']);
    expect(committed()).toEqual(['d-a', 'd-b']);
    expect(t.woken.map((e) => e.job.id).sort()).toEqual([1, 2]);
  });

  it('writes concurrent webhooks in one transaction, each answered with its own result, durable on reopen', async () => {
    const { sink, calls } = recordingStore();
    t = await startTestServer({ sink, webhookBatch: { maxEvents: 5, schedule: () => undefined } });
    const url = await t.server.listen();
    // Five at once: two of them duplicate another of the same batch (same delivery id; same job and action).
    const replies = await Promise.all([
      send(url, 'd1', 1),
      send(url, 'd2', 2),
      send(url, 'd1', 3),
      send(url, 'd4', 2),
      send(url, 'd5', 1, 'in_progress'),
    ]);
    expect(replies.map((r) => r.status)).toEqual([202, 202, 202, 202, 202]);
    expect(calls).toHaveLength(1);
    expect(calls[0]).toHaveLength(5);
    // The requests raced each other to the batch: of each pair of duplicates, the one first in the batch won.
    const batchOrder = calls[0]!;
    const d2First = batchOrder.indexOf('d2') < batchOrder.indexOf('d4');
    expect(replies[1]!.body.duplicate).toBe(!d2First);
    expect(replies[3]!.body.duplicate).toBe(d2First);
    expect([replies[0]!.body.duplicate, replies[2]!.body.duplicate].sort()).toEqual([false, true]);
    expect(replies[4]!.body.duplicate).toBe(false);
    expect(committed()).toEqual(['d1', d2First ? 'd2' : 'd4', 'd5'].sort());
    const firstD1IsJob1 = replies[0]!.body.duplicate === false;
    await t.server.close();
    t = null;
    store.close();
    store = Store.open({ path: file, route: () => 'linux' });
    expect(store.job(1)?.status).toBe('in_progress');
    expect(store.job(2)?.status).toBe('queued');
    expect(store.job(3)?.status ?? null).toBe(firstD1IsJob1 ? null : 'queued');
  });

  it('fails only the refused event of a batch (503) and writes the others one by one', async () => {
    const { sink, calls } = recordingStore(new Set(['bad']));
    t = await startTestServer({ sink, webhookBatch: { maxEvents: 3, schedule: () => undefined } });
    const url = await t.server.listen();
    const replies = await Promise.all([send(url, 'ok1', 1), send(url, 'bad', 2), send(url, 'ok2', 3)]);
    const byDelivery = Object.fromEntries(['ok1', 'bad', 'ok2'].map((d, i) => [d, replies[i]!.status]));
    expect(byDelivery).toEqual({ ok1: 202, bad: 503, ok2: 202 });
    expect(calls[0]).toHaveLength(3); // the batch, refused as a whole
    expect(calls.slice(1).map((c) => c.length)).toEqual([1, 1, 1]); // then each alone
    expect(committed()).toEqual(['ok1', 'ok2']);
    expect(t.woken.map((e) => e.job.id).sort()).toEqual([1, 3]);
  });
});
