/**
 * A damaged store, through the built `runner-fleet start`: a file damaged before the start (one page overwritten,
 * truncated, garbage) is refused at once with the file, SQLite's cause and what to do; a file damaged while the
 * controller runs makes it unhealthy and not ready, saying why, logged once. Real files, really damaged.
 * Needs `npm run build`.
 */
import { copyFileSync, rmSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Simulator } from '../../src/sim/github/index.js';
import { startSimulator } from '../../src/sim/github/index.js';
import { signedHeaders, workflowJobPayload } from '../server/helpers.js';
import { StartedCli, requireBuiltCli, writeStartConfig } from '../support/start-cli.js';
import type { StartFiles } from '../support/start-cli.js';
import {
  fillStore,
  garbageStoreFile,
  overwritePages,
  pagesOf,
  truncateStoreFile,
} from '../support/store-files.js';

let sim: Simulator;
let sound: string;
const cleanup: (() => Promise<void> | void)[] = [];

beforeAll(async () => {
  requireBuiltCli();
  sim = await startSimulator({ orgs: ['octo-org'] });
  const files = writeStartConfig(sim);
  cleanup.push(() => rmSync(files.dir, { recursive: true, force: true }));
  sound = join(files.dir, 'sound.db');
  // An hour ahead: nothing in it is past its retention while the suite runs, so no prune reads the deliveries.
  fillStore(sound, { jobsPerDay: 300, now: Date.now() + 3_600_000 });
});

afterAll(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
  await sim.close();
});

/** A fleet.yaml whose store is a copy of the sound one, and the controller on it (not yet ready). */
function launch(damage?: (storePath: string) => void): { cli: StartedCli; files: StartFiles } {
  const files = writeStartConfig(sim);
  copyFileSync(sound, files.storePath);
  damage?.(files.storePath);
  const cli = new StartedCli(files.configPath);
  cleanup.push(
    () => cli.kill(),
    () => rmSync(files.dir, { recursive: true, force: true }),
  );
  return { cli, files };
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

describe('start on a damaged store file', () => {
  const cases: [string, (path: string) => void, string][] = [
    [
      'one page of an index overwritten (the open alone never reads it)',
      (path) => {
        const { pages, pageSize } = pagesOf(path, 'sqlite_autoindex_deliveries_1');
        overwritePages(path, [pages[Math.floor(pages.length / 2)]!], pageSize);
      },
      'PRAGMA quick_check: .* \\(SQLITE_CORRUPT\\)',
    ],
    [
      'truncated to half its size',
      (path) => truncateStoreFile(path, 0.5),
      'database disk image is malformed \\(SQLITE_CORRUPT\\)',
    ],
    ['garbage', (path) => garbageStoreFile(path), 'file is not a database \\(SQLITE_NOTADB\\)'],
  ];
  for (const [name, damage, cause] of cases) {
    it(`${name}: exits 1 at once, naming the file, SQLite's cause and what to do`, async () => {
      const { cli, files } = launch(damage);
      const exit = await cli.exited;
      expect(exit.code, cli.output()).toBe(1);
      expect(exit.ms).toBeLessThan(10_000);
      const stderr = cli.stderr.text();
      expect(stderr).toMatch(
        new RegExp(
          `^runner-fleet start: the store ${escape(files.storePath)} is damaged: ${cause}\\. Move it aside`,
          'm',
        ),
      );
      expect(stderr).toContain('rebuilds its state from GitHub and the providers');
      // It never listened: nothing answered /healthz with 200 meanwhile.
      expect(cli.url()).toBeNull();
    });
  }
});

describe('a store damaged while the controller runs', () => {
  it('the first webhook that reaches the damage fails; /readyz and /healthz then say why, and the log once', async () => {
    const { cli, files } = launch();
    const url = await cli.ready();
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    expect((await fetch(`${url}/readyz`)).status).toBe(200);

    // The deliveries' key index, which the controller has not read since it opened the file.
    const { pages, pageSize } = pagesOf(files.storePath, 'sqlite_autoindex_deliveries_1');
    overwritePages(files.storePath, pages, pageSize);

    const send = async (jobId: number) => {
      const body = JSON.stringify(workflowJobPayload({ jobId, labels: ['self-hosted', 'linux', 'cloud'] }));
      const res = await fetch(`${url}/webhook`, {
        method: 'POST',
        body,
        headers: await signedHeaders(body, 'workflow_job', randomUUID(), sim.webhookSecret),
      });
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    };
    expect(await send(990_001)).toEqual({
      status: 503,
      body: { error: 'unavailable', message: 'the event could not be stored' },
    });

    const ready = await fetch(`${url}/readyz`);
    expect(ready.status).toBe(503);
    expect(await ready.json()).toEqual({
      status: 'not ready',
      reason: 'store failed: database disk image is malformed (SQLITE_CORRUPT)',
    });
    const health = await fetch(`${url}/healthz`);
    expect(health.status).toBe(503);
    expect(await health.json()).toMatchObject({
      status: 'unhealthy',
      checks: {
        store: { status: 'failed', code: 'SQLITE_CORRUPT', reason: 'database disk image is malformed' },
      },
    });

    // Later webhooks are refused too (nothing more goes into the damaged file); the failure is logged once.
    expect((await send(990_002)).status).toBe(503);
    const failed = await cli.waitForLog(/^store failed: /);
    expect(failed).toMatchObject({
      level: 50,
      store: files.storePath,
      code: 'store-corrupt',
      sqliteCode: 'SQLITE_CORRUPT',
      reason: 'database disk image is malformed',
    });
    expect(failed.msg).toContain('Move it aside');
    expect(
      cli.logLines().filter((l) => typeof l.msg === 'string' && l.msg.startsWith('store failed:')),
    ).toHaveLength(1);

    // It still stops cleanly.
    cli.signal('SIGTERM');
    const exit = await cli.exited;
    expect(exit.code).toBe(0);
  });
});
