/**
 * The integrity check of a store file before the controller opens it: `PRAGMA quick_check` (every page of every
 * table and index read and its structure checked; not the slower cross-check of index contents that
 * integrity_check adds), on a connection of its own in a worker thread, so it can be given up after `timeoutMs`.
 * Without it a file with one damaged page opens fine (the open reads only a few pages) and fails later, on the
 * first webhook or write that reaches the page.
 *
 * On a store of realistic size (91 MB: 10,000 jobs a day under the default retention) it takes about half a second
 * on 2 CPU cores, and seconds when the machine is busy; RELIABILITY.md has the figures (`npm run reliability`).
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { StoreError, describeCause, failureKind } from './sqlite-errors.js';

export interface IntegrityOptions {
  /** Give up (and report `checked: false`) after this long; default 60 s. */
  readonly timeoutMs?: number;
  /** Give up at once when it aborts (a stop requested during the start-up). */
  readonly signal?: AbortSignal;
}

export type IntegrityReport =
  /** The file is sound (or does not exist yet: a new store). */
  | { readonly checked: true; readonly ms: number; readonly bytes: number }
  /** The check did not finish in time; nothing is known. */
  | { readonly checked: false; readonly ms: number; readonly reason: string };

/** Runs in the worker; plain CommonJS, like the checkpointer's. */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { statSync } = require('node:fs');
const Database = require(workerData.driver);
let db;
try {
  const bytes = statSync(workerData.path).size;
  db = new Database(workerData.path, { fileMustExist: true });
  db.pragma('busy_timeout = 5000');
  const rows = db.pragma('quick_check(20)');
  const problems = rows.map((r) => String(r.quick_check)).filter((r) => r !== 'ok');
  parentPort.postMessage({ type: 'done', problems, bytes });
} catch (error) {
  parentPort.postMessage({ type: 'error', message: String((error && error.message) || error), code: error && error.code });
} finally {
  try { if (db) db.close(); } catch {}
}
`;

interface WorkerAnswer {
  readonly type: 'done' | 'error';
  readonly problems?: string[];
  readonly bytes?: number;
  readonly message?: string;
  readonly code?: string;
}

/**
 * Checks the store file at `path`. Resolves with how long it took, or `checked: false` if it did not finish within
 * the timeout; throws StoreError `store-corrupt` (damaged, or not a database) or `store-io` (unreadable) naming the
 * file and SQLite's cause. The file must not be open elsewhere in this process.
 */
export async function checkStoreFile(path: string, options: IntegrityOptions = {}): Promise<IntegrityReport> {
  const started = performance.now();
  const elapsed = () => Math.round(performance.now() - started);
  if (path === ':memory:' || !existsSync(path)) return { checked: true, ms: 0, bytes: 0 };
  const timeoutMs = options.timeoutMs ?? 60_000;
  const driver = createRequire(import.meta.url).resolve('better-sqlite3');
  const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { path, driver } });
  const answer = await new Promise<WorkerAnswer | 'timeout' | 'aborted'>((resolve) => {
    const onAbort = () => settle('aborted');
    const timer = setTimeout(() => settle('timeout'), timeoutMs);
    const settle = (value: WorkerAnswer | 'timeout' | 'aborted') => {
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      resolve(value);
    };
    if (options.signal?.aborted) settle('aborted');
    options.signal?.addEventListener('abort', onAbort, { once: true });
    worker.once('message', settle);
    worker.once('error', (error) => settle({ type: 'error', message: error.message }));
    worker.once('exit', (code) =>
      settle({ type: 'error', message: `integrity check exited with code ${code}` }),
    );
  });
  await worker.terminate();
  if (answer === 'timeout') {
    return {
      checked: false,
      ms: elapsed(),
      reason: `PRAGMA quick_check did not finish within ${timeoutMs} ms`,
    };
  }
  if (answer === 'aborted') return { checked: false, ms: elapsed(), reason: 'aborted' };
  if (answer.type === 'error') {
    const cause = Object.assign(new Error(answer.message ?? 'unknown error'), {
      name: 'SqliteError',
      ...(answer.code !== undefined ? { code: answer.code } : {}),
    });
    const kind = failureKind(answer.code ?? '') ?? 'store-io';
    const state = kind === 'store-corrupt' ? 'is damaged' : 'cannot be read';
    throw new StoreError(`the store ${path} ${state}: ${describeCause(cause)}`, { code: kind, cause });
  }
  const problems = (answer.problems ?? []).map((p) =>
    p
      .replace(/^\*\*\* in database \w+ \*\*\*\s*/, '')
      .replace(/\s+/g, ' ')
      .trim(),
  );
  if (problems.length > 0) {
    const more = problems.length > 3 ? `; and ${problems.length - 3} more` : '';
    const found = `${problems.slice(0, 3).join('; ')}${more}`;
    const cause = Object.assign(new Error(`PRAGMA quick_check: ${found}`), {
      name: 'SqliteError',
      code: 'SQLITE_CORRUPT',
    });
    throw new StoreError(`the store ${path} is damaged: ${describeCause(cause)}`, {
      code: 'store-corrupt',
      cause,
    });
  }
  return { checked: true, ms: elapsed(), bytes: answer.bytes ?? 0 };
}
