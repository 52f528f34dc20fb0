/**
 * Store files for the corruption suites and `npm run reliability`: a store of realistic size (what a busy fleet keeps
 * under the default retention), and real damage done to a file: one page overwritten, the file truncated, garbage.
 */
import { openSync, closeSync, readFileSync, statSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import Database from 'better-sqlite3';
import { DEFAULT_RETENTION } from '../../src/core/records.js';
import { Store } from '../../src/store/store.js';

const DAY = 24 * 60 * 60_000;

export interface StoreFill {
  /** Jobs a day (each with its three deliveries, runner and events); default 10,000. */
  readonly jobsPerDay?: number;
  readonly now?: number;
  /** Open (queued) jobs at the end; default 20. */
  readonly openJobs?: number;
  readonly scaleSet?: string;
}

export interface StoreSize {
  readonly bytes: number;
  readonly jobs: number;
  readonly deliveries: number;
  readonly runners: number;
  readonly events: number;
}

/**
 * Creates (through the Store, so the schema is the real one) and fills a store file with what a fleet running
 * `jobsPerDay` jobs keeps under the default retention: 3 days of completed jobs, their deliveries and runners,
 * and 7 days of events (about 11 per job: its runner's states, the job's, the instance's and registration's).
 */
export function fillStore(path: string, fill: StoreFill = {}): StoreSize {
  const now = fill.now ?? Date.now();
  const set = fill.scaleSet ?? 'cloud';
  Store.open({ path, route: () => set }).close();
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  const perDay = fill.jobsPerDay ?? 10_000;
  const jobDays = DEFAULT_RETENTION.completedJobsMs / DAY;
  const eventDays = DEFAULT_RETENTION.eventsMs / DAY;
  const insertJob = db.prepare(
    `INSERT INTO jobs (id, run_id, owner, repo, labels, status, conclusion, scale_set, runner_name, queued_at,
       started_at, completed_at, updated_at) VALUES (?, ?, 'octo-org', ?, '["self-hosted","linux","cloud"]', ?, ?, ?,
       ?, ?, ?, ?, ?)`,
  );
  const insertDelivery = db.prepare(
    'INSERT INTO deliveries (delivery_id, job_id, action, received_at) VALUES (?, ?, ?, ?)',
  );
  const insertRunner = db.prepare(
    `INSERT INTO runners (name, scale_set, state, reason, github_id, created_at, state_changed_at,
       instance_deleted_at, registration_deleted_at) VALUES (?, ?, 'deleted', 'job completed', ?, ?, ?, ?, ?)`,
  );
  const insertEvent = db.prepare(
    'INSERT INTO events (at, kind, scale_set, runner, job_id, event, reason) VALUES (?, ?, ?, ?, ?, ?, ?)',
  );
  const RUNNER_EVENTS = ['requested', 'creating', 'starting', 'idle', 'busy', 'finished', 'deleted'];
  let jobs = 0;
  let deliveries = 0;
  let runners = 0;
  let events = 0;
  const jobTotal = Math.round(perDay * eventDays);
  db.transaction(() => {
    for (let i = 0; i < jobTotal; i++) {
      const queuedAt = now - eventDays * DAY + Math.floor((i * DAY) / perDay);
      const id = 5_000_000_000 + i;
      const runner = `${set}-${i.toString(36).padStart(8, '0')}`;
      const startedAt = queuedAt + 20_000;
      const completedAt = startedAt + 300_000;
      for (const [k, event] of RUNNER_EVENTS.entries()) {
        insertEvent.run(
          queuedAt + k * 10_000,
          'runner',
          set,
          runner,
          null,
          event,
          k === 0 ? 'planned' : null,
        );
      }
      insertEvent.run(queuedAt, 'job', set, null, id, 'queued', null);
      insertEvent.run(startedAt, 'job', set, null, id, 'in_progress', null);
      insertEvent.run(completedAt, 'job', set, null, id, 'completed', null);
      insertEvent.run(completedAt + 1_000, 'instance', set, runner, null, 'deleted', null);
      events += RUNNER_EVENTS.length + 4;
      // Jobs, deliveries and runners are kept for the shorter retention.
      if (queuedAt < now - jobDays * DAY) continue;
      insertJob.run(
        id,
        id + 7,
        `repo-${i % 50}`,
        'completed',
        'success',
        set,
        runner,
        queuedAt,
        startedAt,
        completedAt,
        completedAt,
      );
      for (const [k, action] of ['queued', 'in_progress', 'completed'].entries()) {
        insertDelivery.run(`d${i}-${k}-0f3e8a4c-9b1d-4e2a-8c7f`, id, action, queuedAt + k * 150_000);
      }
      insertRunner.run(
        runner,
        set,
        1_000_000 + i,
        queuedAt,
        completedAt + 1_000,
        completedAt + 1_000,
        completedAt + 1_000,
      );
      jobs++;
      deliveries += 3;
      runners++;
    }
    for (let o = 0; o < (fill.openJobs ?? 20); o++) {
      const id = 9_000_000_000 + o;
      insertJob.run(id, id + 7, 'app', 'queued', null, set, null, now - o * 1000, null, null, now - o * 1000);
      insertDelivery.run(`open-${o}-5a1c`, id, 'queued', now - o * 1000);
      jobs++;
      deliveries++;
    }
  })();
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.close();
  return { bytes: statSync(path).size, jobs, deliveries, runners, events };
}

/** The database's page size and the pages of one table or index (root first), read with SQLite's dbstat. */
export function pagesOf(path: string, name: string): { pageSize: number; pages: number[] } {
  const db = new Database(path, { readonly: true });
  try {
    const pageSize = db.pragma('page_size', { simple: true }) as number;
    const rows = db
      .prepare<[string], { pageno: number }>('SELECT pageno FROM dbstat WHERE name = ? ORDER BY pageno')
      .all(name);
    const root = db
      .prepare<[string], { rootpage: number }>('SELECT rootpage FROM sqlite_schema WHERE name = ?')
      .get(name)?.rootpage;
    if (root === undefined) throw new Error(`no table or index ${name} in ${path}`);
    return { pageSize, pages: [root, ...rows.map((r) => r.pageno).filter((p) => p !== root)] };
  } finally {
    db.close();
  }
}

/** Deterministic garbage: what a bad sector or a stray write leaves. */
export function garbage(bytes: number, seed = 1): Buffer {
  const out = Buffer.alloc(bytes);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < bytes; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** Overwrites whole pages of the file (1-based page numbers) with garbage, in place. */
export function overwritePages(path: string, pages: readonly number[], pageSize = 4096): void {
  const fd = openSync(path, 'r+');
  try {
    for (const page of pages) writeSync(fd, garbage(pageSize, page), 0, pageSize, (page - 1) * pageSize);
  } finally {
    closeSync(fd);
  }
}

/** Cuts the file to `fraction` of its size. */
export function truncateStoreFile(path: string, fraction = 0.5): void {
  truncateSync(path, Math.floor(statSync(path).size * fraction));
}

/** Replaces the file's content with garbage of the same size (at least one page). */
export function garbageStoreFile(path: string): void {
  let size = 4096;
  try {
    size = Math.max(size, readFileSync(path).length);
  } catch {
    // a new file
  }
  writeFileSync(path, garbage(size, 7));
}
