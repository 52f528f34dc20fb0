/**
 * The built `runner-fleet start` against the GitHub simulator: what it prints on the way up (config warnings, as
 * `validate` prints them), that a refusal exits at once (nothing, such as the store's checkpoint worker, keeps the
 * process alive), and that every controller serves the dashboard behind the same token rule as /api/v1.
 * Needs `npm run build`.
 */
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Simulator } from '../../src/sim/github/index.js';
import { startSimulator } from '../../src/sim/github/index.js';
import { StartedCli, requireBuiltCli, writeStartConfig } from '../support/start-cli.js';
import type { StartConfigOptions } from '../support/start-cli.js';

let sim: Simulator;
const cleanup: (() => Promise<void> | void)[] = [];

beforeAll(async () => {
  requireBuiltCli();
  sim = await startSimulator({ orgs: ['octo-org'] });
});

afterAll(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
  await sim.close();
});

function launch(options: StartConfigOptions = {}): { cli: StartedCli; configPath: string; dir: string } {
  const files = writeStartConfig(sim, options);
  const cli = new StartedCli(files.configPath);
  cleanup.push(
    () => cli.kill(),
    () => rmSync(files.dir, { recursive: true, force: true }),
  );
  return { cli, configPath: files.configPath, dir: files.dir };
}

describe('start refuses at once', () => {
  it('exits 1 within seconds when the server would be exposed without a dashboard token', async () => {
    const { cli } = launch({ host: '0.0.0.0' });
    const exit = await Promise.race([
      cli.exited,
      new Promise<null>((resolve) => setTimeout(() => resolve(null), 15_000)),
    ]);
    expect(exit, `still running after 15 s:\n${cli.output()}`).not.toBeNull();
    expect(exit!.code).toBe(1);
    // Loaded machine: node's start-up alone can take a second or two.
    expect(exit!.ms).toBeLessThan(10_000);
    expect(cli.stderr.text()).toMatch(/^runner-fleet start: server\.host is 0\.0\.0\.0, .*dashboardToken/m);
  });
});

describe('start prints the config warnings', () => {
  it('writes each warning to stderr as validate does, then runs', async () => {
    const { cli, configPath } = launch({ webhookSecret: 'short' });
    await cli.ready();
    expect(cli.stderr.text()).toMatch(
      new RegExp(
        `^warning: ${configPath.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:\\d+:\\d+ webhook\\.secret: is 5 characters long`,
        'm',
      ),
    );
  });
});

describe('start serves the dashboard', () => {
  it('on loopback without a token: the page, its assets and the snapshot', async () => {
    const { cli } = launch();
    const url = await cli.ready();
    const page = await fetch(`${url}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect(await page.text()).toContain('<html');
    for (const asset of ['/assets/dashboard.js', '/assets/dashboard.css', '/assets/favicon.svg']) {
      const res = await fetch(`${url}${asset}`);
      await res.arrayBuffer();
      expect(res.status, asset).toBe(200);
    }
    const snapshot = await fetch(`${url}/dashboard/v1/snapshot`);
    expect(snapshot.status).toBe(200);
    const body = (await snapshot.json()) as { snapshot: { title: string; scaleSets: { name: string }[] } };
    expect(body.snapshot.title).toBe('start');
    expect(body.snapshot.scaleSets.map((s) => s.name)).toEqual(['cloud']);
  });

  it('with a dashboard token: the page and the snapshot need the bearer token, as /api/v1 does', async () => {
    // Tests listen on loopback only; the token rule is the same on any address once a token is set.
    const token = 'dashboard-token-0123456789abcdef';
    const { cli } = launch({ dashboardToken: token });
    const url = await cli.ready();
    for (const path of ['/', '/assets/dashboard.js', '/dashboard/v1/snapshot', '/api/v1/scale-sets']) {
      const anonymous = await fetch(`${url}${path}`);
      await anonymous.arrayBuffer();
      expect(anonymous.status, path).toBe(401);
      const wrong = await fetch(`${url}${path}`, { headers: { authorization: 'Bearer nope' } });
      await wrong.arrayBuffer();
      expect(wrong.status, path).toBe(401);
      const allowed = await fetch(`${url}${path}`, { headers: { authorization: `Bearer ${token}` } });
      await allowed.arrayBuffer();
      expect(allowed.status, path).toBe(200);
    }
    expect(cli.output()).not.toContain(token);
  });
});
