import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MIGRATIONS, migrate } from './migrations.js';
import { Store } from './store.js';
import { jobEvent } from './store.test-helpers.js';
import type { ScaleSetConfig } from '../core/fleet-config.js';
import { Observations } from '../core/observations.js';
import { releaseDeletedRunners } from '../core/snapshot.js';

const here = path.dirname(fileURLToPath(import.meta.url));

const route = ({ labels }: { readonly labels: readonly string[] }) =>
  labels.map((l) => l.toLowerCase()).includes('linux') ? 'linux' : null;

let dir: string;
let file: string;
let clock: number;
const now = () => clock;

beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'rf-store-'));
  file = path.join(dir, 'fleet.db');
  clock = 10_000;
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('migrations', () => {
  it('brings a new file to the latest version once, in WAL mode', () => {
    const store = Store.open({ path: file, route, now });
    store.close();
    const db = new Database(file);
    expect(db.pragma('user_version', { simple: true })).toBe(MIGRATIONS.at(-1)!.version);
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(migrate(db)).toEqual([]);
    db.close();
  });

  it('applies only the missing steps, in order', () => {
    const db = new Database(file);
    const steps = [
      { version: 1, description: 'a', sql: 'CREATE TABLE a (x INTEGER)' },
      { version: 2, description: 'b', sql: 'ALTER TABLE a ADD COLUMN y INTEGER' },
    ];
    expect(migrate(db, steps.slice(0, 1))).toEqual([1]);
    expect(migrate(db, steps)).toEqual([2]);
    expect(db.prepare('SELECT y FROM a').all()).toEqual([]);
    db.close();
  });

  it('refuses a database written by a newer version', () => {
    const db = new Database(file);
    db.pragma('user_version = 99');
    db.close();
    expect(() => Store.open({ path: file, route, now })).toThrow(/newer than this runner-fleet/);
  });

  it('rolls back a failing step', () => {
    const db = new Database(file);
    expect(() =>
      migrate(db, [{ version: 1, description: 'bad', sql: 'CREATE TABLE ok (x); CREATE TABLE ok (x);' }]),
    ).toThrow(/migration 1/);
    expect(db.pragma('user_version', { simple: true })).toBe(0);
    expect(db.prepare("SELECT name FROM sqlite_master WHERE name = 'ok'").all()).toEqual([]);
    db.close();
  });
});

describe('webhook sink', () => {
  it('deduplicates by delivery id and by (job id, action)', () => {
    const store = Store.open({ path: file, route, now });
    expect(store.acceptWorkflowJob(jobEvent('d1', 'queued', 1))).toEqual({
      duplicate: false,
      scaleSet: 'linux',
    });
    expect(store.acceptWorkflowJob(jobEvent('d1', 'queued', 1)).duplicate).toBe(true);
    expect(store.acceptWorkflowJob(jobEvent('d2', 'queued', 1)).duplicate).toBe(true); // same job, same action
    expect(store.acceptWorkflowJob(jobEvent('d1', 'in_progress', 1)).duplicate).toBe(true); // same delivery id
    expect(store.acceptWorkflowJob(jobEvent('d3', 'in_progress', 1)).duplicate).toBe(false);
    expect(store.stats().deliveries).toBe(2);
    store.close();
  });

  it('accepts a batch in one transaction: results in order, dedupe within the batch and against the file', () => {
    const store = Store.open({ path: file, route, now });
    store.acceptWorkflowJob(jobEvent('old', 'queued', 1));
    const changes: string[] = [];
    store.subscribe((c) => changes.push(`${c.job.id}:${c.job.status}`));
    const writes = store.writes;
    const results = store.acceptWorkflowJobs([
      jobEvent('old', 'in_progress', 1), // delivery id already on file
      jobEvent('a', 'queued', 1), // (job, action) already on file
      jobEvent('b', 'queued', 2),
      jobEvent('b', 'completed', 3), // same delivery id as an earlier event of this batch
      jobEvent('c', 'queued', 2), // same (job, action) as an earlier event of this batch
      jobEvent('d', 'queued', 4, { labels: ['windows'] }),
      jobEvent('e', 'in_progress', 1, { runnerName: 'r1', startedAt: 2_000 }),
    ]);
    expect(results).toEqual([
      { duplicate: true, scaleSet: 'linux' },
      { duplicate: true, scaleSet: 'linux' },
      { duplicate: false, scaleSet: 'linux' },
      { duplicate: true, scaleSet: null },
      { duplicate: true, scaleSet: 'linux' },
      { duplicate: false, scaleSet: null },
      { duplicate: false, scaleSet: 'linux' },
    ]);
    expect(store.writes).toBe(writes + 1);
    expect(changes).toEqual(['2:queued', '4:queued', '1:in_progress']);
    expect(store.job(3)).toBeNull();
    expect(store.stats().deliveries).toBe(4);
    expect(store.acceptWorkflowJobs([])).toEqual([]);
    store.close();
  });

  it('merges several events of one job in a batch in order, as one-by-one would', () => {
    const store = Store.open({ path: file, route, now });
    store.acceptWorkflowJob(jobEvent('q', 'queued', 1)); // in the open-job index before the batch
    const changes: string[] = [];
    store.subscribe((c) => changes.push(`${c.previous?.status ?? 'new'}->${c.job.status}`));
    store.acceptWorkflowJobs([
      jobEvent('p', 'in_progress', 1, { runnerName: 'r1', startedAt: 2_000 }),
      jobEvent('c', 'completed', 1, { runnerName: null, completedAt: 3_000 }),
      jobEvent('q2', 'queued', 2),
      jobEvent('p2', 'in_progress', 2, { runnerName: 'r2', startedAt: 2_500 }),
    ]);
    expect(changes).toEqual([
      'queued->in_progress',
      'in_progress->completed',
      'new->queued',
      'queued->in_progress',
    ]);
    const done = store.job(1);
    expect(done).toMatchObject({
      status: 'completed',
      runnerName: 'r1',
      startedAt: 2_000,
      completedAt: 3_000,
    });
    expect(store.openJobs().map((j) => [j.id, j.status, j.runnerName])).toEqual([[2, 'in_progress', 'r2']]);
    store.close();
    const again = Store.open({ path: file, route, now });
    expect(again.job(1)).toMatchObject({ status: 'completed', runnerName: 'r1' });
    expect(again.job(2)).toMatchObject({ status: 'in_progress', runnerName: 'r2' });
    again.close();
  });

  it('keeps a batch after the file is reopened, and a failed batch leaves nothing behind', () => {
    const store = Store.open({ path: file, route, now });
    const batch = Array.from({ length: 50 }, (_, i) => jobEvent(`d${i}`, 'queued', i + 1));
    expect(store.acceptWorkflowJobs(batch).every((r) => !r.duplicate)).toBe(true);
    // The second event cannot be written (NOT NULL action): the whole batch rolls back, the first one too.
    const bad = { ...jobEvent('x2', 'queued', 101), action: null } as unknown as ReturnType<typeof jobEvent>;
    expect(() => store.acceptWorkflowJobs([jobEvent('x1', 'queued', 100), bad])).toThrow(
      expect.objectContaining({ code: 'store-write' }),
    );
    expect(store.job(100)).toBeNull();
    store.close();
    const again = Store.open({ path: file, route, now });
    expect(again.stats().deliveries).toBe(50);
    for (let i = 1; i <= 50; i++) expect(again.job(i)?.status).toBe('queued');
    expect(again.acceptWorkflowJobs(batch).every((r) => r.duplicate)).toBe(true);
    expect(again.acceptWorkflowJob(jobEvent('x1', 'queued', 100)).duplicate).toBe(false);
    again.close();
  });

  it('ignores the started_at of a queued payload (GitHub sets it to created_at) and takes in_progress', () => {
    const store = Store.open({ path: file, route, now });
    store.acceptWorkflowJob(jobEvent('d1', 'queued', 1, { createdAt: 1_000, startedAt: 1_000 }));
    expect(store.job(1)?.startedAt).toBeNull();
    store.acceptWorkflowJob(jobEvent('d2', 'in_progress', 1, { createdAt: 1_000, startedAt: 4_000 }));
    expect(store.job(1)?.startedAt).toBe(4_000);
    store.close();
  });

  it('remembers when the newest delivery was received, across a reopen', () => {
    clock = 5_000;
    const store = Store.open({ path: file, route, now });
    expect(store.lastDeliveryAt()).toBeNull();
    store.acceptWorkflowJob(jobEvent('d1', 'queued', 1));
    clock = 7_000;
    store.acceptWorkflowJob(jobEvent('d2', 'in_progress', 1));
    clock = 9_000;
    store.acceptWorkflowJob(jobEvent('d2', 'completed', 1)); // a duplicate is not a new delivery
    expect(store.lastDeliveryAt()).toBe(7_000);
    store.close();
    expect(Store.open({ path: file, route, now }).lastDeliveryAt()).toBe(7_000);
  });

  it('routes a job when first seen and records unroutable jobs, not drops them', () => {
    const store = Store.open({ path: file, route, now });
    store.acceptWorkflowJob(jobEvent('d1', 'queued', 1));
    store.acceptWorkflowJob(jobEvent('d2', 'queued', 2, { labels: ['ubuntu-latest'] }));
    expect(store.job(1)?.scaleSet).toBe('linux');
    expect(store.job(2)?.scaleSet).toBeNull();
    expect(store.openJobs(null).map((j) => j.id)).toEqual([2]);
    expect(store.openJobs('linux').map((j) => j.id)).toEqual([1]);
    store.close();
  });

  it('never moves a job backwards when events arrive out of order', () => {
    const store = Store.open({ path: file, route, now });
    store.acceptWorkflowJob(
      jobEvent('c', 'completed', 1, { runnerName: 'linux-abcdefgh', completedAt: 5_000 }),
    );
    store.acceptWorkflowJob(
      jobEvent('i', 'in_progress', 1, { runnerName: 'linux-abcdefgh', startedAt: 3_000 }),
    );
    store.acceptWorkflowJob(jobEvent('q', 'queued', 1));
    const job = store.job(1)!;
    expect(job.status).toBe('completed');
    expect(job.startedAt).toBe(3_000);
    expect(job.runnerName).toBe('linux-abcdefgh');
    expect(store.openJobs()).toEqual([]);
    store.close();
  });

  it('records the latest job of each runner for the planner', () => {
    const store = Store.open({ path: file, route, now });
    store.insertRunners([{ name: 'linux-abcdefgh', scaleSet: 'linux' }]);
    store.acceptWorkflowJob(
      jobEvent('a', 'in_progress', 2, { runnerName: 'linux-abcdefgh', startedAt: 2_000 }),
    );
    clock += 5;
    // a late event about an earlier job on the same (persistent) runner does not hide the current one
    store.acceptWorkflowJob(
      jobEvent('b', 'completed', 1, { runnerName: 'linux-abcdefgh', startedAt: 1_000 }),
    );
    expect(store.runnerJob('linux-abcdefgh')).toEqual({
      id: 2,
      status: 'in_progress',
      conclusion: null,
      at: 10_000,
    });
    // With its conclusion once completed (the planner tells a job GitHub failed from one that succeeded).
    store.acceptWorkflowJob(
      jobEvent('c', 'completed', 2, {
        runnerName: 'linux-abcdefgh',
        startedAt: 2_000,
        conclusion: 'failure',
      }),
    );
    expect(store.runnerJob('linux-abcdefgh')).toMatchObject({
      id: 2,
      status: 'completed',
      conclusion: 'failure',
    });
    store.close();
    const again = Store.open({ path: file, route, now });
    expect(again.runnerJob('linux-abcdefgh')).toMatchObject({
      id: 2,
      status: 'completed',
      conclusion: 'failure',
    });
    again.close();
  });

  it('marks open jobs loaded at open as unverified until a webhook or a status check about them', () => {
    const store = Store.open({ path: file, route, now });
    store.acceptWorkflowJob(jobEvent('a', 'queued', 1));
    store.acceptWorkflowJob(jobEvent('b', 'queued', 2));
    store.acceptWorkflowJob(jobEvent('c', 'queued', 3));
    expect(store.isUnverified(1)).toBe(false);
    store.close();
    const again = Store.open({ path: file, route, now });
    expect([1, 2, 3].map((id) => again.isUnverified(id))).toEqual([true, true, true]);
    again.acceptWorkflowJob(jobEvent('a', 'queued', 1)); // a redelivery confirms nothing
    again.acceptWorkflowJob(jobEvent('d', 'in_progress', 2));
    again.applyJobStatus(3, { id: 3, status: 'queued', conclusion: null, runnerName: null, labels: [] });
    expect([1, 2, 3].map((id) => again.isUnverified(id))).toEqual([true, false, false]);
    again.close();
  });

  it('lists completed jobs most recent first, or only those recorded since a time', () => {
    const store = Store.open({ path: file, route, now });
    store.acceptWorkflowJob(jobEvent('d1', 'completed', 1, { completedAt: 5_000 }));
    clock += 1000;
    store.acceptWorkflowJob(jobEvent('d2', 'completed', 2, { completedAt: 6_000 }));
    store.acceptWorkflowJob(jobEvent('d3', 'queued', 3));
    expect(store.recentCompletedJobs(10).map((j) => j.id)).toEqual([2, 1]);
    expect(store.recentCompletedJobs(1).map((j) => j.id)).toEqual([2]);
    expect(store.recentCompletedJobs(10, 10_500).map((j) => j.id)).toEqual([2]);
    expect(store.recentCompletedJobs(10, clock)).toEqual([]);
    store.close();
  });

  it('applies status checks and notifies subscribers', () => {
    const store = Store.open({ path: file, route, now });
    const seen: string[] = [];
    store.subscribe((c) => seen.push(`${c.source}:${c.job.status}`));
    store.acceptWorkflowJob(jobEvent('a', 'queued', 1));
    clock += 1000;
    store.applyJobStatus(1, { id: 1, status: 'queued', conclusion: null, runnerName: null, labels: [] });
    expect(store.job(1)?.checkedAt).toBe(clock);
    store.applyJobStatus(1, {
      id: 1,
      status: 'completed',
      conclusion: 'success',
      runnerName: 'x',
      labels: [],
    });
    expect(store.job(1)?.status).toBe('completed');
    store.acceptWorkflowJob(jobEvent('b', 'queued', 2));
    store.applyJobStatus(2, null);
    expect(store.job(2)).toMatchObject({ status: 'completed', conclusion: 'not_found' });
    expect(seen).toEqual([
      'webhook:queued',
      'check:queued',
      'check:completed',
      'webhook:queued',
      'check:completed',
    ]);
    store.close();
  });
});

describe('runners', () => {
  it('keeps state, ids and history, and reloads them', () => {
    const store = Store.open({ path: file, route, now });
    store.insertRunners([
      { name: 'linux-aaaaaaaa', scaleSet: 'linux' },
      { name: 'linux-bbbbbbbb', scaleSet: 'linux' },
    ]);
    clock += 10;
    store.updateRunner('linux-aaaaaaaa', { state: 'creating', reason: 'obtaining registration' });
    store.updateRunner('linux-aaaaaaaa', { githubId: 42 });
    clock += 10;
    const { before, after } = store.updateRunner('linux-aaaaaaaa', {
      state: 'starting',
      reason: 'instance created',
    });
    expect(before.state).toBe('creating');
    expect(after).toMatchObject({
      state: 'starting',
      githubId: 42,
      stateChangedAt: 10_020,
      createdAt: 10_000,
    });
    store.close();

    const again = Store.open({ path: file, route, now });
    expect(again.runner('linux-aaaaaaaa')).toMatchObject({ state: 'starting', githubId: 42 });
    expect(
      again
        .runners('linux')
        .map((r) => r.state)
        .sort(),
    ).toEqual(['requested', 'starting']);
    const history = again
      .recentEvents({ runner: 'linux-aaaaaaaa' })
      .map((e) => e.event)
      .reverse();
    expect(history).toEqual(['requested', 'creating', 'starting']);
    expect(() => again.updateRunner('nope', { state: 'idle' })).toThrow(/unknown runner/);
    again.close();
  });

  it('applies several changes in one call, in order; a change that changes nothing writes nothing', () => {
    const store = Store.open({ path: file, route, now });
    store.insertRunners([
      { name: 'linux-aaaaaaaa', scaleSet: 'linux' },
      { name: 'linux-bbbbbbbb', scaleSet: 'linux' },
    ]);
    clock += 10;
    const updates = store.updateRunners([
      { name: 'linux-aaaaaaaa', change: { state: 'creating', reason: 'obtaining registration' } },
      { name: 'linux-bbbbbbbb', change: { state: 'requested', reason: 'planned' } },
      { name: 'linux-aaaaaaaa', change: { state: 'starting', reason: 'instance created', githubId: 7 } },
    ]);
    expect(updates.map((u) => `${u.before.state}>${u.after.state}`)).toEqual([
      'requested>creating',
      'requested>requested',
      'creating>starting',
    ]);
    // Unchanged: the very record, no event.
    expect(updates[1]!.after).toBe(updates[1]!.before);
    expect(() =>
      store.updateRunners([
        { name: 'linux-bbbbbbbb', change: { state: 'creating', reason: 'x' } },
        { name: 'nope', change: { state: 'idle' } },
      ]),
    ).toThrow(/unknown runner nope/);
    store.close();

    // What the file holds: the changes of the first call, nothing of the refused one.
    const again = Store.open({ path: file, route, now });
    expect(again.runner('linux-aaaaaaaa')).toMatchObject({
      state: 'starting',
      githubId: 7,
      stateChangedAt: 10_010,
    });
    expect(again.runner('linux-bbbbbbbb')).toMatchObject({ state: 'requested', stateChangedAt: 10_000 });
    const history = (name: string) =>
      again
        .recentEvents({ runner: name })
        .map((e) => e.event)
        .reverse();
    expect(history('linux-aaaaaaaa')).toEqual(['requested', 'creating', 'starting']);
    expect(history('linux-bbbbbbbb')).toEqual(['requested']);
    again.close();
  });

  it('keeps the backoff of a scale set across restarts', () => {
    const store = Store.open({ path: file, route, now });
    store.setBackoff('linux', { failures: 3, until: 99_000 }, { reason: 'instance failed', at: 10_000 });
    store.close();
    const again = Store.open({ path: file, route, now });
    expect(again.backoff('linux')).toEqual({
      failures: 3,
      until: 99_000,
      lastFailure: 'instance failed',
      lastFailureAt: 10_000,
    });
    again.close();
  });

  it('prunes what is past retention, in the file and in memory', () => {
    const store = Store.open({ path: file, route, now });
    store.insertRunners([{ name: 'linux-aaaaaaaa', scaleSet: 'linux' }]);
    store.updateRunner('linux-aaaaaaaa', { state: 'deleted' });
    store.acceptWorkflowJob(jobEvent('a', 'queued', 1, { labels: ['ubuntu-latest'], createdAt: clock }));
    clock += 2 * 24 * 60 * 60_000; // two days
    store.prune();
    expect(store.runners()).toEqual([]); // evicted from memory after an hour
    expect(store.runner('linux-aaaaaaaa')?.state).toBe('deleted'); // still in the file for three days
    expect(store.openJobs(null)).toEqual([]); // unroutable jobs dropped after a day
    clock += 2 * 24 * 60 * 60_000;
    store.prune();
    expect(store.runner('linux-aaaaaaaa')).toBeNull();
    store.close();
  });
});

describe('deleted runners in memory', () => {
  const timings = { resyncInterval: 30_000, orphanGracePeriod: 120_000 };
  const sets = [{ name: 'linux' }] as unknown as ScaleSetConfig[];
  const nothingInFlight = { runnerInFlight: () => false, jobInFlight: () => false };
  const lists = (observations: Observations, at: number): void => {
    observations.setGitHub('linux', at, []);
    observations.setInstances('linux', at, []);
  };
  const inMemory = (store: Store): string[] => {
    const names: string[] = [];
    store.forEachRunner('linux', (r) => names.push(r.name));
    return names;
  };

  it('leave memory once planning no longer needs them (lists after the deletion, the grace period), and are still found in the file', () => {
    const store = Store.open({ path: file, route, now });
    const observations = new Observations();
    const release = () => releaseDeletedRunners(sets, store, observations, nothingInFlight, timings, clock);
    store.insertRunners([
      { name: 'linux-aaaaaaaa', scaleSet: 'linux' },
      { name: 'linux-bbbbbbbb', scaleSet: 'linux' },
    ]);
    store.acceptWorkflowJob(jobEvent('q', 'queued', 1, { createdAt: clock }));
    store.acceptWorkflowJob(
      jobEvent('i', 'in_progress', 1, { runnerName: 'linux-aaaaaaaa', startedAt: clock + 1 }),
    );
    lists(observations, clock);
    clock += 1_000;
    const deletedAt = clock;
    store.updateRunner('linux-aaaaaaaa', { state: 'deleted', reason: 'job completed' });

    // Held while the lists predate the deletion: they would still show its registration and instance.
    clock = deletedAt + 10 * 60_000;
    expect(release()).toBe(0);
    expect(inMemory(store)).toEqual(['linux-aaaaaaaa', 'linux-bbbbbbbb']);
    // Lists taken after it, but within the orphan grace period: still held.
    lists(observations, deletedAt + 1);
    clock = deletedAt + 1 + timings.orphanGracePeriod - 1;
    lists(observations, clock);
    expect(release()).toBe(0);
    expect(inMemory(store)).toContain('linux-aaaaaaaa');
    // After it: gone from memory, the live runner stays.
    clock = deletedAt + timings.orphanGracePeriod + 1;
    lists(observations, clock);
    expect(release()).toBe(1);
    expect(inMemory(store)).toEqual(['linux-bbbbbbbb']);
    expect(store.runners().map((r) => r.name)).toEqual(['linux-bbbbbbbb']);

    // Still found by name (the planner's new-name check), with its job, and listed for display for an hour.
    expect(store.runner('linux-aaaaaaaa')).toMatchObject({ state: 'deleted', stateChangedAt: deletedAt });
    expect(store.runnerJob('linux-aaaaaaaa')).toMatchObject({ id: 1, status: 'in_progress' });
    expect(store.deletedRunners('linux').map((r) => r.name)).toEqual(['linux-aaaaaaaa']);
    expect(store.deletedRunners().map((r) => r.name)).toEqual(['linux-aaaaaaaa']);
    expect(store.deletedRunners('other')).toEqual([]);
    // A late webhook naming it is recorded, and its latest job is read from the file.
    store.acceptWorkflowJob(
      jobEvent('c', 'completed', 1, { runnerName: 'linux-aaaaaaaa', completedAt: clock }),
    );
    expect(store.runnerJob('linux-aaaaaaaa')).toMatchObject({
      id: 1,
      status: 'completed',
      conclusion: 'success',
    });
    expect(inMemory(store)).toEqual(['linux-bbbbbbbb']);
    // A live runner never leaves memory; one without a job has none.
    expect(store.runnerJob('linux-bbbbbbbb')).toBeNull();

    // After the hour it is no longer listed, but the file keeps it (completed jobs' retention).
    clock = deletedAt + 60 * 60_000 + 1;
    store.prune();
    expect(store.deletedRunners('linux')).toEqual([]);
    expect(store.runner('linux-aaaaaaaa')?.state).toBe('deleted');
    // Reopened: a deleted runner is loaded only within the hour, and released as before.
    store.close();
    const again = Store.open({ path: file, route, now });
    expect(again.runners()).toHaveLength(1);
    again.close();
  });

  it('keeps one the executor still works on, and keeps all while a list is missing', () => {
    const store = Store.open({ path: file, route, now });
    const observations = new Observations();
    store.insertRunners([
      { name: 'linux-aaaaaaaa', scaleSet: 'linux' },
      { name: 'linux-bbbbbbbb', scaleSet: 'linux' },
    ]);
    store.updateRunners([
      { name: 'linux-aaaaaaaa', change: { state: 'deleted' } },
      { name: 'linux-bbbbbbbb', change: { state: 'deleted' } },
    ]);
    clock += 10 * 60_000;
    observations.setGitHub('linux', clock, []);
    // No instance list yet (a provider that failed to list since the start).
    expect(releaseDeletedRunners(sets, store, observations, nothingInFlight, timings, clock)).toBe(0);
    observations.setInstances('linux', clock, []);
    const busy = { runnerInFlight: (name: string) => name === 'linux-aaaaaaaa', jobInFlight: () => false };
    expect(releaseDeletedRunners(sets, store, observations, busy, timings, clock)).toBe(1);
    expect(inMemory(store)).toEqual(['linux-aaaaaaaa']);
    expect(releaseDeletedRunners(sets, store, observations, nothingInFlight, timings, clock)).toBe(1);
    expect(inMemory(store)).toEqual([]);
    store.close();
  });
});

describe('crash safety', () => {
  it('keeps every acknowledged write when the process is killed with SIGKILL', async () => {
    // A child process accepts deliveries and runner changes as fast as it can and prints an acknowledgement after
    // each one returns; we kill it mid-stream, reopen the file, and every acknowledged write must be there.
    const script = path.join(dir, 'writer.mts');
    writeFileSync(
      script,
      `
      import { Store } from ${JSON.stringify(path.join(here, 'store.ts'))};
      const store = Store.open({ path: ${JSON.stringify(file)}, route: () => 'linux' });
      for (let i = 1; ; i++) {
        store.acceptWorkflowJob({ deliveryId: 'd' + i, action: 'queued', installationId: 1, job: { id: i, runId: i,
          owner: 'o', repo: 'r', labels: ['linux'], status: 'queued', conclusion: null, runnerId: null,
          runnerName: null, createdAt: 1, startedAt: null, completedAt: null } });
        store.insertRunners([{ name: 'linux-' + String(i).padStart(8, '0'), scaleSet: 'linux' }]);
        const batch = [1, 2, 3].map((k) => ({ deliveryId: 'b' + i + '-' + k, action: 'queued', installationId: 1,
          job: { id: 1e6 + i * 10 + k, runId: i, owner: 'o', repo: 'r', labels: ['linux'], status: 'queued',
          conclusion: null, runnerId: null, runnerName: null, createdAt: 1, startedAt: null, completedAt: null } }));
        store.acceptWorkflowJobs(batch);
        process.stdout.write(i + '\\n');
        if (i % 50 === 0) await new Promise((r) => setImmediate(r));
      }
      `,
    );
    const tsx = path.join(here, '..', '..', 'node_modules', '.bin', 'tsx');
    const child = spawn(tsx, [script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let acked = 0;
    let buffer = '';
    await new Promise<void>((resolve, reject) => {
      child.on('error', reject);
      child.on('exit', (code) => reject(new Error(`writer exited early (${code})`)));
      child.stdout.on('data', (chunk: Buffer) => {
        buffer += chunk.toString();
        const lines = buffer.split('\n');
        buffer = lines.pop() ?? '';
        for (const l of lines) if (l) acked = Number(l);
        if (acked >= 300 && !child.killed) {
          child.kill('SIGKILL');
          resolve();
        }
      });
    });
    await new Promise((r) => child.once('exit', r));
    const store = Store.open({ path: file, route, now });
    for (let i = 1; i <= acked; i++) {
      expect(store.job(i)?.status).toBe('queued');
      expect(store.runner(`linux-${String(i).padStart(8, '0')}`)?.state).toBe('requested');
      for (const k of [1, 2, 3]) expect(store.job(1e6 + i * 10 + k)?.status).toBe('queued');
    }
    // and a redelivery of an acknowledged event is still recognised as a duplicate
    expect(store.acceptWorkflowJob(jobEvent(`d${acked}`, 'queued', acked)).duplicate).toBe(true);
    store.close();
  });
});
