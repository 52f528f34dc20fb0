/**
 * WAL checkpoints off the event loop. SQLite checkpoints on the committing connection by default: every 1,000 WAL
 * pages one commit copies the pages back into the database file and fsyncs it, and with better-sqlite3 that commit
 * is on the event loop, so a webhook burst stalls behind it (the webhook benchmark's store throughput was bounded by
 * it). The store turns automatic checkpoints off on its own connection and this checkpointer runs them instead, in
 * a worker thread with its own connection: PASSIVE checkpoints (they never block the writer) every `intervalMs`.
 *
 * Durability is unchanged: a committed transaction is in the WAL either way, and a checkpoint is itself crash-safe.
 * If the worker fails, the store falls back to automatic checkpoints on its own connection (`onFailure`), so the
 * WAL never grows without bound.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

export interface CheckpointerOptions {
  /** The database file (already in WAL mode). */
  readonly path: string;
  /** ms between checkpoints; default 1000. */
  readonly intervalMs?: number;
  /**
   * Called once if the worker cannot run checkpoints any more, with the reason (never secret: a SQLite error) and
   * SQLite's error code when there is one (SQLITE_CORRUPT, SQLITE_IOERR_WRITE...).
   */
  readonly onFailure: (reason: string, code?: string) => void;
}

/** Runs in the worker; plain CommonJS, so it needs no build step and no loader (it runs under tsx and vitest too). */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
let db;
let checkpoint;
try {
  db = new Database(workerData.path, { fileMustExist: true });
  db.pragma('busy_timeout = 1000');
  db.pragma('wal_autocheckpoint = 0');
  // Prepared once: a statement's SQLite memory is freed only when its JS object is collected, and this thread makes
  // so little garbage that a statement prepared on each tick (db.pragma) stayed for good, 1.8 KB a second.
  checkpoint = db.prepare('PRAGMA wal_checkpoint(PASSIVE)');
} catch (error) {
  parentPort.postMessage({ type: 'failed', reason: String(error && error.message || error), code: error && error.code });
  process.exit(0);
}
const timer = setInterval(() => {
  try {
    checkpoint.get();
  } catch (error) {
    if (error && error.code === 'SQLITE_BUSY') return;
    clearInterval(timer);
    parentPort.postMessage({ type: 'failed', reason: String(error && error.message || error), code: error && error.code });
  }
}, workerData.intervalMs);
parentPort.on('message', (message) => {
  if (message !== 'stop') return;
  clearInterval(timer);
  db.close();
  parentPort.close();
});
`;

export class Checkpointer {
  readonly #worker: Worker;
  readonly #exited: Promise<void>;
  #failed = false;
  #stopped = false;

  constructor(options: CheckpointerOptions) {
    const driver = createRequire(import.meta.url).resolve('better-sqlite3');
    this.#worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { path: options.path, intervalMs: Math.max(10, options.intervalMs ?? 1000), driver },
    });
    const fail = (reason: string, code?: string): void => {
      if (this.#failed || this.#stopped) return;
      this.#failed = true;
      options.onFailure(reason, code);
    };
    this.#worker.on('message', (m: { type?: string; reason?: string; code?: string }) => {
      if (m.type === 'failed') fail(m.reason ?? 'unknown error', m.code);
    });
    this.#worker.on('error', (error) => fail(error.message));
    this.#exited = new Promise((resolve) => {
      this.#worker.once('exit', (code) => {
        if (!this.#stopped) fail(`checkpoint worker exited with code ${code}`);
        resolve();
      });
    });
    // The worker must not keep a process alive that is otherwise done. After the listeners: adding a 'message'
    // listener refs the worker's port again, and an earlier unref() would be undone.
    this.#worker.unref();
  }

  /** True once the worker gave up (the store then checkpoints on its own connection). */
  get failed(): boolean {
    return this.#failed;
  }

  /** Stops the worker and waits until it closed its connection. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#worker.postMessage('stop');
    const timer = setTimeout(() => void this.#worker.terminate(), 5000);
    await this.#exited;
    clearTimeout(timer);
  }
}
