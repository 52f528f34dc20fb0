/**
 * Background checkpoints: with them the store's own commits never checkpoint (the database file only grows when the
 * worker copies the WAL back), and without the worker nothing would. Checked on a real file, through the store.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Checkpointer } from './checkpointer.js';
import { Store } from './store.js';
import { jobEvent } from './store.test-helpers.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'rf-checkpoint-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const route = () => 'linux';

async function until(check: () => boolean, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Enough events to fill many WAL pages. */
function fill(store: Store, from: number, count: number): void {
  const events = [];
  for (let i = 0; i < count; i++) events.push(jobEvent(`d-${from + i}`, 'queued', from + i));
  store.acceptWorkflowJobs(events);
}

describe('store: checkpoints in a worker thread', () => {
  it(
    'copies committed pages into the database file off the committing connection',
    { timeout: 30_000 },
    async () => {
      const file = path.join(dir, 'fleet.db');
      // The first checkpoint comes 5 s after the open; filling takes a fraction of that.
      const store = Store.open({ path: file, route, backgroundCheckpoints: { intervalMs: 5000 } });
      try {
        expect(store.checkpointsInBackground).toBe(true);
        const before = statSync(file).size;
        for (let b = 0; b < 20; b++) fill(store, b * 500, 500);
        // The commits themselves left the file as it was: every page is in the WAL ...
        expect(statSync(file).size).toBe(before);
        // ... until the worker's checkpoint copies them back.
        await until(() => statSync(file).size > before, 15_000);
        expect(store.openJobs()).toHaveLength(10_000);
      } finally {
        store.close();
        await store.closed();
      }
      // Closed cleanly: a new store sees everything.
      const again = Store.open({ path: file, route });
      expect(again.openJobs()).toHaveLength(10_000);
      again.close();
    },
  );

  it('a store without them checkpoints on its commits, as SQLite does by default', () => {
    const file = path.join(dir, 'fleet.db');
    const store = Store.open({ path: file, route });
    const before = statSync(file).size;
    for (let b = 0; b < 20; b++) fill(store, b * 500, 500);
    expect(store.checkpointsInBackground).toBe(false);
    expect(statSync(file).size).toBeGreaterThan(before);
    store.close();
  });

  it('the worker never keeps a process alive that is otherwise done (a store left open at exit)', () => {
    const script = path.join(dir, 'left-open.ts');
    writeFileSync(
      script,
      `import { Store } from ${JSON.stringify(path.resolve(import.meta.dirname, 'store.js'))};\n` +
        `Store.open({ path: ${JSON.stringify(path.join(dir, 'fleet.db'))}, route: () => null, ` +
        `backgroundCheckpoints: { intervalMs: 50 } });\n` +
        `console.log('opened');\n`,
    );
    const started = Date.now();
    const result = spawnSync(process.execPath, ['--import', 'tsx', script], {
      encoding: 'utf8',
      timeout: 15_000,
      cwd: path.resolve(import.meta.dirname, '../..'),
    });
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe('opened\n');
    // Killed at 15 s (signal SIGTERM, status null) if the worker held the event loop.
    expect(result.signal).toBeNull();
    expect(result.status).toBe(0);
    expect(Date.now() - started).toBeLessThan(15_000);
  });

  it('reports a worker that cannot run checkpoints', async () => {
    const reasons: string[] = [];
    const checkpointer = new Checkpointer({
      path: path.join(dir, 'missing', 'fleet.db'),
      intervalMs: 20,
      onFailure: (reason) => reasons.push(reason),
    });
    await until(() => reasons.length > 0, 10_000);
    expect(checkpointer.failed).toBe(true);
    expect(reasons[0]).toMatch(/unable to open|does not exist|directory/i);
    await checkpointer.stop();
    expect(reasons).toHaveLength(1);
  });
});
