/**
 * The shutdown bound of the built `runner-fleet start` (SHUTDOWN.totalMs, 10 s): SIGTERM ends the process within it
 * whatever GitHub does. GitHub is made to hang twice over: the simulator answering nothing for ten minutes while a
 * resync is waiting on it, and a blackhole (a port that accepts connections and never answers) from the start, so
 * the SIGTERM comes during the start-up. Before the bound, the first took 71 s here (each attempt's 15 s timeout,
 * three retries and their waits, for the resync and the webhook redelivery scan alike).
 * Needs `npm run build`.
 */
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SHUTDOWN } from '../../src/app/compose.js';
import type { Simulator } from '../../src/sim/github/index.js';
import { startSimulator } from '../../src/sim/github/index.js';
import { startBlackhole } from '../support/blackhole.js';
import { StartedCli, requireBuiltCli, writeStartConfig } from '../support/start-cli.js';
import type { StartConfigOptions } from '../support/start-cli.js';
import { untilEvery } from '../support/until.js';

const until = untilEvery(50);

let sim: Simulator;
const cleanup: (() => Promise<void> | void)[] = [];

beforeAll(async () => {
  requireBuiltCli();
  sim = await startSimulator({ orgs: ['octo-org'] });
});

afterAll(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
  await sim.setFaults({ latencyMs: 0 });
  await sim.close();
});

function launch(options: StartConfigOptions = {}): StartedCli {
  const files = writeStartConfig(sim, options);
  const cli = new StartedCli(files.configPath, { logLevel: 'debug' });
  cleanup.push(
    () => cli.kill(),
    () => rmSync(files.dir, { recursive: true, force: true }),
  );
  return cli;
}

const LIST = 'GET /orgs/{org}/actions/runners';

describe(`SIGTERM ends start within ${SHUTDOWN.totalMs / 1000} s whatever GitHub does`, () => {
  it('GitHub stops answering while the controller runs: a resync is waiting on it', async () => {
    const cli = launch({ resyncInterval: '1s' });
    await cli.ready();
    const before = sim.stats().apiCalls.byRoute[LIST] ?? 0;
    await sim.setFaults({ latencyMs: 600_000 });
    // A resync has asked GitHub for the runner list and is waiting for the answer.
    await until(() => (sim.stats().apiCalls.byRoute[LIST] ?? 0) > before, 30_000, 'a runner list in flight');
    await new Promise((r) => setTimeout(r, 300));
    cli.signal('SIGTERM');
    const exit = await cli.exited;
    await sim.setFaults({ latencyMs: 0 });
    expect(exit.code, cli.output().slice(-3000)).toBe(0);
    expect(exit.ms).toBeLessThan(SHUTDOWN.totalMs);
    const stopped = cli.logLines().find((l) => l.msg === 'controller stopped');
    expect(stopped, 'a clean stop: nothing abandoned').toBeDefined();
    expect(stopped!.ms as number).toBeLessThan(SHUTDOWN.controllerMs);
  });

  it('GitHub is a blackhole from the start: SIGTERM during the first resync', async () => {
    const blackhole = await startBlackhole();
    cleanup.push(() => blackhole.close());
    const cli = launch({ githubUrl: blackhole.url });
    await cli.waitForLog(/^Server listening at /);
    await until(() => blackhole.accepted() > 0, 30_000, 'a call to GitHub waiting on the blackhole');
    cli.signal('SIGTERM');
    const exit = await cli.exited;
    expect(exit.code, cli.output().slice(-3000)).toBe(0);
    expect(exit.ms).toBeLessThan(SHUTDOWN.totalMs);
    expect(cli.logLines().some((l) => l.msg === 'controller ready')).toBe(false);
    expect(cli.logLines().find((l) => l.msg === 'controller stopped')).toBeDefined();
  });
});
