/**
 * SQLite's errors as the store reports them: every store error carries SQLite's own message and code (as its
 * `cause`, and in its message), and the errors that mean the file or the disk failed (the store cannot go on) are
 * told apart from those that concern one statement.
 */
import type { StoreFailure } from '../core/store-port.js';

export class StoreError extends Error {
  readonly code: string;
  constructor(message: string, options: { code: string; cause?: unknown }) {
    super(message, { cause: options.cause });
    this.name = 'StoreError';
    this.code = options.code;
  }
}

/** SQLite's message and code, when `error` is (or wraps) an error of SQLite's. */
export function sqliteCause(error: unknown): { code: string; message: string } | null {
  for (let e = error, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && code.startsWith('SQLITE_')) return { code, message: e.message };
  }
  return null;
}

/**
 * The store failure a SQLite error code means, or null for an error of one statement (a constraint, a busy lock):
 * a damaged file (SQLITE_CORRUPT*, SQLITE_NOTADB) or a failing disk (SQLITE_IOERR*, SQLITE_FULL, SQLITE_CANTOPEN).
 */
export function failureKind(sqliteCode: string): StoreFailure['code'] | null {
  if (/^SQLITE_(CORRUPT|NOTADB)(_|$)/.test(sqliteCode)) return 'store-corrupt';
  if (/^SQLITE_(IOERR|FULL|CANTOPEN)(_|$)/.test(sqliteCode)) return 'store-io';
  return null;
}

/** "database disk image is malformed (SQLITE_CORRUPT)", or the error's own message when SQLite's is not in it. */
export function describeCause(error: unknown): string {
  const sqlite = sqliteCause(error);
  if (sqlite !== null) return `${sqlite.message} (${sqlite.code})`;
  return error instanceof Error ? error.message : String(error);
}

/** What to do with a damaged store file: the advice `start` prints and the log repeats. */
export function moveAsideAdvice(path: string): string {
  return (
    `Move it aside together with its -wal and -shm files, which belong to it (for example: mkdir ${path}.damaged && ` +
    `mv ${path} ${path}-wal ${path}-shm ${path}.damaged/; the last two may not exist), and start again: the ` +
    'controller creates a new store and rebuilds its state from GitHub and the providers.'
  );
}
