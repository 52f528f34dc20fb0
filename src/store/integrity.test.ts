/**
 * A damaged store file, found before the controller uses it (checkStoreFile) and while it runs (the store fails
 * for good on the first error that means a damaged file, and says so with SQLite's own cause). Real files, really
 * damaged: pages overwritten, the file truncated, garbage.
 */
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  fillStore,
  garbageStoreFile,
  overwritePages,
  pagesOf,
  truncateStoreFile,
} from '../../test/support/store-files.js';
import type { StoreFailure } from '../core/store-port.js';
import { checkStoreFile } from './integrity.js';
import { StoreError } from './sqlite-errors.js';
import { Store } from './store.js';
import { jobEvent } from './store.test-helpers.js';

let dir: string;
let sound: string;
let n = 0;

beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'rf-integrity-'));
  sound = path.join(dir, 'sound.db');
  fillStore(sound, { jobsPerDay: 300 });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A copy of the sound store to damage. */
function copy(): string {
  const file = path.join(dir, `copy-${++n}.db`);
  copyFileSync(sound, file);
  return file;
}

async function refusal(file: string): Promise<StoreError> {
  const error = await checkStoreFile(file).then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(StoreError);
  return error as StoreError;
}

describe('checkStoreFile', () => {
  it('passes a sound store, and a file that does not exist yet', async () => {
    const report = await checkStoreFile(sound);
    expect(report.checked).toBe(true);
    expect(report.checked && report.bytes).toBeGreaterThan(100_000);
    expect(await checkStoreFile(path.join(dir, 'new.db'))).toEqual({ checked: true, ms: 0, bytes: 0 });
  });

  it('finds one overwritten page of an index that opening the store never reads', async () => {
    const file = copy();
    const { pages, pageSize } = pagesOf(file, 'sqlite_autoindex_deliveries_1');
    overwritePages(file, [pages[Math.floor(pages.length / 2)]!], pageSize);
    const error = await refusal(file);
    expect(error.code).toBe('store-corrupt');
    expect(error.message).toMatch(
      new RegExp(
        `^the store ${file.replace(/[.]/g, '\\.')} is damaged: PRAGMA quick_check: .*\\(SQLITE_CORRUPT\\)$`,
      ),
    );
    expect((error.cause as { code?: string }).code).toBe('SQLITE_CORRUPT');
  });

  it('finds an overwritten table page, a truncated file and garbage, with SQLite’s message and code', async () => {
    const table = copy();
    const { pages, pageSize } = pagesOf(table, 'events');
    overwritePages(table, [pages[Math.floor(pages.length / 2)]!], pageSize);
    const truncated = copy();
    truncateStoreFile(truncated, 0.5);
    const junk = copy();
    garbageStoreFile(junk);
    const header = copy();
    overwritePages(header, [1]);
    const cases: [string, RegExp][] = [
      [table, /is damaged: database disk image is malformed \(SQLITE_CORRUPT\)$/],
      [truncated, /is damaged: database disk image is malformed \(SQLITE_CORRUPT\)$/],
      [junk, /is damaged: file is not a database \(SQLITE_NOTADB\)$/],
      [header, /is damaged: file is not a database \(SQLITE_NOTADB\)$/],
    ];
    for (const [file, message] of cases) {
      const error = await refusal(file);
      expect(error.code, file).toBe('store-corrupt');
      expect(error.message, file).toContain(file);
      expect(error.message, file).toMatch(message);
    }
  });

  it('gives up after its timeout, or when its signal aborts, saying so', async () => {
    const report = await checkStoreFile(sound, { timeoutMs: 1 });
    expect(report).toMatchObject({ checked: false, reason: 'PRAGMA quick_check did not finish within 1 ms' });
    const stop = new AbortController();
    const checking = checkStoreFile(sound, { signal: stop.signal });
    stop.abort();
    expect(await checking).toMatchObject({ checked: false, reason: 'aborted' });
  });
});

describe('Store.open on a damaged file', () => {
  it('names the file and SQLite’s cause', () => {
    const junk = copy();
    writeFileSync(junk, Buffer.alloc(8192, 0x5a));
    let error: unknown;
    try {
      Store.open({ path: junk, route: () => null });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(StoreError);
    expect((error as StoreError).code).toBe('store-corrupt');
    expect((error as StoreError).message).toBe(
      `the store ${junk} is damaged: file is not a database (SQLITE_NOTADB)`,
    );
  });
});

describe('a store whose file is damaged while it runs', () => {
  it('fails for good on the first error that means it, tells its listeners once, and writes nothing more', () => {
    const file = copy();
    // Opened first: the open reads the runners, open jobs and backoff, never the deliveries' key index.
    const store = Store.open({ path: file, route: () => 'cloud' });
    try {
      const failures: StoreFailure[] = [];
      store.onFailure((f) => failures.push(f));
      const { pages, pageSize } = pagesOf(file, 'sqlite_autoindex_deliveries_1');
      overwritePages(file, pages, pageSize);
      expect(store.failure()).toBeNull();

      let error: unknown;
      try {
        store.acceptWorkflowJob(jobEvent('fresh-delivery', 'queued', 77));
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(StoreError);
      expect((error as StoreError).code).toBe('store-corrupt');
      expect((error as StoreError).message).toBe(
        `store ${file}: cannot record delivery fresh-delivery: database disk image is malformed (SQLITE_CORRUPT)`,
      );
      expect((error as StoreError).cause).toMatchObject({ code: 'SQLITE_CORRUPT' });
      expect(store.failure()).toMatchObject({
        code: 'store-corrupt',
        sqliteCode: 'SQLITE_CORRUPT',
        message: 'database disk image is malformed',
      });

      // Nothing more is written into the damaged file, and the listeners heard of it once.
      expect(() => store.recordEvent({ kind: 'job', event: 'queued' })).toThrow(
        /cannot record a job event: refused, the store failed: database disk image is malformed \(SQLITE_CORRUPT\)$/,
      );
      expect(() => store.acceptWorkflowJob(jobEvent('another', 'queued', 78))).toThrow(StoreError);
      expect(failures).toHaveLength(1);
      // What is in memory can still be read.
      expect(store.openJobs('cloud').length).toBeGreaterThan(0);
    } finally {
      store.close();
    }
  });
});
