/**
 * Files the controller creates are private to its user: the store (and SQLite's -wal and -shm files next to it),
 * whatever the umask. The demo's controller log is created 0600 (src/demo/controller.ts) and the process
 * provider's runner directories 0700 (src/providers/process); this suite covers the store the server writes every
 * webhook into.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openStore } from '../../src/store/store.js';

const dir = mkdtempSync(join(tmpdir(), 'rf-modes-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const mode = (path: string) => statSync(path).mode & 0o777;

describe('file modes', () => {
  it('creates the store and its WAL files readable by the owner only, even with umask 000', () => {
    const previous = process.umask(0);
    try {
      const path = join(dir, 'fleet.db');
      const store = openStore({ path, route: () => null });
      try {
        expect(mode(path).toString(8)).toBe('600');
        expect(mode(`${path}-wal`).toString(8)).toBe('600');
        expect(mode(`${path}-shm`).toString(8)).toBe('600');
      } finally {
        store.close();
      }
    } finally {
      process.umask(previous);
    }
  });
});
