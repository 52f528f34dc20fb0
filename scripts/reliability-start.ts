/**
 * The `runner-fleet start` part of `npm run reliability`: how long finding a damaged store takes (the integrity
 * check on stores of realistic size, a start refused on a damaged file, a store damaged while running) and how
 * long a shutdown takes when GitHub does not answer. Everything runs the built CLI against the simulator, as the
 * suites test/cli/store.test.ts and test/cli/shutdown.test.ts do with pass/fail bounds.
 */
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { SHUTDOWN } from '../src/app/compose.js';
import type { Simulator } from '../src/sim/github/index.js';
import { startSimulator } from '../src/sim/github/index.js';
import { checkStoreFile } from '../src/store/integrity.js';
import { signedHeaders, workflowJobPayload } from '../test/server/helpers.js';
import { startBlackhole } from '../test/support/blackhole.js';
import { StartedCli, requireBuiltCli, writeStartConfig } from '../test/support/start-cli.js';
import type { StartConfigOptions } from '../test/support/start-cli.js';
import {
  fillStore,
  garbageStoreFile,
  overwritePages,
  pagesOf,
  truncateStoreFile,
} from '../test/support/store-files.js';
import type { StoreSize } from '../test/support/store-files.js';
import { untilEvery } from '../test/support/until.js';

const until = untilEvery(20);
const MB = 1_000_000;

export interface StartFigures {
  readonly integrity: readonly { perDay: number; size: StoreSize; ms: number[] }[];
  readonly refusals: readonly { damage: string; exitCode: number | null; ms: number; cause: string }[];
  readonly running: {
    readonly webhookStatus: number;
    readonly readyzMs: number;
    readyz: string;
    healthz: string;
  };
  readonly shutdown: readonly { case: string; exitCode: number | null; ms: number; stopMs: number | null }[];
  readonly refusal: { readonly exitCode: number | null; readonly ms: number };
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

async function launch(
  sim: Simulator,
  cleanup: (() => Promise<void> | void)[],
  options: StartConfigOptions,
  prepare?: (storePath: string) => void,
): Promise<StartedCli> {
  const files = writeStartConfig(sim, options);
  prepare?.(files.storePath);
  const cli = new StartedCli(files.configPath, { logLevel: 'info' });
  cleanup.push(
    () => cli.kill(),
    () => rmSync(files.dir, { recursive: true, force: true }),
  );
  return cli;
}

export async function measureStart(log: (line: string) => void): Promise<StartFigures> {
  requireBuiltCli();
  const dir = mkdtempSync(path.join(tmpdir(), 'rf-reliability-start-'));
  const sim = await startSimulator({ orgs: ['octo-org'] });
  const cleanup: (() => Promise<void> | void)[] = [];
  try {
    // The integrity check on stores of the size a fleet of 1,000 to 30,000 jobs a day keeps.
    const integrity: { perDay: number; size: StoreSize; ms: number[] }[] = [];
    let realistic = '';
    for (const perDay of [1_000, 10_000, 30_000]) {
      log(`store of ${perDay} jobs a day...`);
      const file = path.join(dir, `store-${perDay}.db`);
      const size = fillStore(file, { jobsPerDay: perDay, now: Date.now() + 3_600_000 });
      const ms: number[] = [];
      // A first check reads the new file into the page cache (and waits for its writeback); the five after it count.
      await checkStoreFile(file);
      for (let i = 0; i < 5; i++) {
        const report = await checkStoreFile(file);
        if (!report.checked) throw new Error(`integrity check of ${file} did not finish`);
        ms.push(report.ms);
      }
      integrity.push({ perDay, size, ms });
      if (perDay === 10_000) realistic = file;
      else rmSync(file);
    }

    // start on a damaged copy of the 10,000-a-day store: from the spawn to the exit.
    const damages: [string, (file: string) => void][] = [
      [
        'one page of an index overwritten',
        (file) => {
          const { pages, pageSize } = pagesOf(file, 'sqlite_autoindex_deliveries_1');
          overwritePages(file, [pages[Math.floor(pages.length / 2)]!], pageSize);
        },
      ],
      [
        'one page of the events table overwritten',
        (file) => {
          const { pages, pageSize } = pagesOf(file, 'events');
          overwritePages(file, [pages[Math.floor(pages.length / 2)]!], pageSize);
        },
      ],
      ['truncated to half its size', (file) => truncateStoreFile(file, 0.5)],
      ['garbage', (file) => garbageStoreFile(file)],
    ];
    const refusals: { damage: string; exitCode: number | null; ms: number; cause: string }[] = [];
    for (const [damage, apply] of damages) {
      log(`start on a store ${damage}...`);
      const cli = await launch(sim, cleanup, {}, (storePath) => {
        copyFileSync(realistic, storePath);
        apply(storePath);
      });
      const exit = await cli.exited;
      const line = cli.stderr.lines.find((l) => l.startsWith('runner-fleet start: ')) ?? '';
      const cause = /is damaged: (.*?)\. Move it aside/.exec(line)?.[1] ?? line;
      refusals.push({ damage, exitCode: exit.code, ms: exit.ms, cause });
    }

    // Damaged while running: the deliveries' key index, which the controller has not read since it opened.
    log('store damaged while running...');
    const cli = await launch(sim, cleanup, {}, (storePath) => copyFileSync(realistic, storePath));
    const url = await cli.ready(120_000);
    const storePath = (cli.logLines().find((l) => l.msg === 'store file checked')?.store as string) ?? '';
    const { pages, pageSize } = pagesOf(storePath, 'sqlite_autoindex_deliveries_1');
    overwritePages(storePath, pages, pageSize);
    const body = JSON.stringify(workflowJobPayload({ jobId: 880_001 }));
    const headers = await signedHeaders(body, 'workflow_job', randomUUID(), sim.webhookSecret);
    const sent = performance.now();
    const webhook = await fetch(`${url}/webhook`, { method: 'POST', body, headers });
    await webhook.arrayBuffer();
    let readyz = '';
    await until(
      async () => {
        const res = await fetch(`${url}/readyz`);
        readyz = await res.text();
        return res.status === 503;
      },
      10_000,
      '/readyz to say not ready',
    );
    const readyzMs = Math.round(performance.now() - sent);
    const healthz = await (await fetch(`${url}/healthz`)).text();
    cli.signal('SIGTERM');
    await cli.exited;
    const running = { webhookStatus: webhook.status, readyzMs, readyz, healthz };
    rmSync(realistic);

    // SIGTERM while GitHub does not answer.
    const shutdown: { case: string; exitCode: number | null; ms: number; stopMs: number | null }[] = [];
    for (let i = 0; i < 3; i++) {
      log('SIGTERM while GitHub hangs...');
      const hung = await launch(sim, cleanup, { resyncInterval: '1s' });
      await hung.ready();
      const LIST = 'GET /orgs/{org}/actions/runners';
      const before = sim.stats().apiCalls.byRoute[LIST] ?? 0;
      await sim.setFaults({ latencyMs: 600_000 });
      await until(
        () => (sim.stats().apiCalls.byRoute[LIST] ?? 0) > before,
        30_000,
        'a runner list in flight',
      );
      await new Promise((r) => setTimeout(r, 300));
      hung.signal('SIGTERM');
      const exit = await hung.exited;
      await sim.setFaults({ latencyMs: 0 });
      const stopped = hung.logLines().find((l) => l.msg === 'controller stopped');
      shutdown.push({
        case: 'GitHub stops answering while the controller runs (a resync waiting on it)',
        exitCode: exit.code,
        ms: exit.ms,
        stopMs: (stopped?.ms as number | undefined) ?? null,
      });
    }
    for (let i = 0; i < 3; i++) {
      log('SIGTERM during the start-up, GitHub a blackhole...');
      const blackhole = await startBlackhole();
      cleanup.push(() => blackhole.close());
      const starting = await launch(sim, cleanup, { githubUrl: blackhole.url });
      await starting.waitForLog(/^Server listening at /);
      await until(() => blackhole.accepted() > 0, 30_000, 'a call waiting on the blackhole');
      starting.signal('SIGTERM');
      const exit = await starting.exited;
      const stopped = starting.logLines().find((l) => l.msg === 'controller stopped');
      shutdown.push({
        case: 'GitHub a blackhole (accepts, never answers): SIGTERM during the first resync',
        exitCode: exit.code,
        ms: exit.ms,
        stopMs: (stopped?.ms as number | undefined) ?? null,
      });
    }

    log('a start that refuses...');
    const refusing = await launch(sim, cleanup, { host: '0.0.0.0' });
    const refused = await refusing.exited;
    return {
      integrity,
      refusals,
      running,
      shutdown,
      refusal: { exitCode: refused.code, ms: refused.ms },
    };
  } finally {
    for (const step of cleanup.splice(0).reverse()) await step();
    await sim.setFaults({ latencyMs: 0 });
    await sim.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The RELIABILITY.md sections for these figures. */
export function startSections(f: StartFigures): string[] {
  const byCase = new Map<string, { exitCode: number | null; ms: number; stopMs: number | null }[]>();
  for (const s of f.shutdown) byCase.set(s.case, [...(byCase.get(s.case) ?? []), s]);
  const realistic = f.integrity.find((i) => i.perDay === 10_000);
  return [
    '## A damaged store',
    '',
    'The store file is checked before the controller opens it: `PRAGMA quick_check` (every page of every table and',
    'index read and checked) on a connection of its own in a worker thread, given up after 60 s (then the controller',
    'starts anyway and says so). On stores filled as a fleet running N jobs a day would leave them under the',
    'default retention (3 days of jobs, deliveries and runners, 7 days of events); five checks after a first one',
    '(which reads the file into the page cache), their median and fastest:',
    '',
    '| jobs a day | file | jobs | deliveries | runners | events | quick_check: median | fastest |',
    '|---|---|---|---|---|---|---|---|',
    ...f.integrity.map(
      (i) =>
        `| ${i.perDay.toLocaleString('en')} | ${(i.size.bytes / MB).toFixed(0)} MB | ${i.size.jobs.toLocaleString('en')} | ` +
        `${i.size.deliveries.toLocaleString('en')} | ${i.size.runners.toLocaleString('en')} | ` +
        `${i.size.events.toLocaleString('en')} | ${median(i.ms)} ms | ${Math.min(...i.ms)} ms |`,
    ),
    '',
    `\`runner-fleet start\` on a damaged copy of the ${realistic ? `${(realistic.size.bytes / MB).toFixed(0)} MB ` : ''}` +
      'store (10,000 jobs a day),',
    'from the spawn to the exit (Node start-up included):',
    '',
    "| damage | exit status | time to exit | SQLite's cause, as `start` prints it |",
    '|---|---|---|---|',
    ...f.refusals.map((r) => `| ${r.damage} | ${r.exitCode} | ${r.ms} ms | ${r.cause} |`),
    '',
    'Before the check, the first of these started, answered 200 on /healthz and /readyz, and failed every webhook',
    'with 503 (the open reads only a few pages; the damaged one was reached by the first webhook).',
    '',
    "Damaged while the controller runs (every page of the deliveries' key index overwritten, which the controller",
    'had not read since it opened the file): the first webhook that reaches the damage is refused',
    `(${f.running.webhookStatus}) and the store fails for good; /readyz said so ${f.running.readyzMs} ms after that ` +
      'webhook was sent:',
    '',
    '```',
    `GET /readyz  ${f.running.readyz}`,
    `GET /healthz ${f.running.healthz}`,
    '```',
    '',
    '## Shutdown when GitHub does not answer',
    '',
    `The bound: SIGTERM to exit within ${SHUTDOWN.totalMs / 1000} s (the controller's own stop within ` +
      `${SHUTDOWN.controllerMs / 1000} s, the Lease released within ${SHUTDOWN.leaseReleaseMs / 1000} s after it),`,
    "inside Kubernetes' default grace period of 30 s. `runner-fleet start` against the simulator, three runs each:",
    '',
    '| case | exit status | SIGTERM to exit | controller stop (its log) |',
    '|---|---|---|---|',
    ...[...byCase].map(
      ([c, runs]) =>
        `| ${c} | ${runs.map((r) => r.exitCode).join(', ')} | ${runs.map((r) => `${r.ms} ms`).join(', ')} | ` +
        `${runs.map((r) => (r.stopMs === null ? '-' : `${r.stopMs} ms`)).join(', ')} |`,
    ),
    '',
    'Before the bound, the first case took 71 s on this machine (each GitHub attempt waited out its 15 s timeout,',
    'three retries and their waits, for the resync and the webhook redelivery scan alike); the probe that found it',
    'saw 18 to 27 s.',
    '',
    `A start that refuses (server on 0.0.0.0 without a dashboard token) exits with status ${f.refusal.exitCode}, ` +
      `${f.refusal.ms} ms after the spawn;`,
    "before, the store's checkpoint worker kept it running until it was killed.",
    '',
  ];
}
