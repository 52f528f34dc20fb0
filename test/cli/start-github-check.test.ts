/**
 * `runner-fleet start` checks the GitHub App before anything else: the installation's permissions for each scope
 * and the `workflow_job` subscription of the App and its installations. A missing one refuses the start (exit 1,
 * within seconds) naming it and the fix; `doctor` prints the same fix. When nothing is missing, the installations
 * alone are read, once each. The controller runs as a real process against the simulator, whose App is given too
 * few permissions or events.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { command as doctor } from '../../src/cli/doctor.js';
import type { Simulator, SimulatorOptions } from '../../src/sim/github/index.js';
import { freePort } from '../support/free-port.js';
import { simulatorCredentials, startFleetSimulator } from '../support/sim-fleet.js';

const CLI = join(import.meta.dirname, '../../dist/cli/main.js');

interface Run {
  readonly code: number | null;
  readonly out: string;
  readonly ms: number;
}

/** Runs `start` until it exits, or until /readyz answers 200 (then it is stopped and `code` is 'ready'). */
async function start(configPath: string, port: number): Promise<Run | 'ready'> {
  const began = Date.now();
  const child = spawn(process.execPath, [CLI, 'start', '--config', configPath], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
  });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const deadline = Date.now() + 60_000;
  for (;;) {
    const code = await Promise.race([exited, new Promise<'poll'>((r) => setTimeout(() => r('poll'), 200))]);
    if (code !== 'poll') return { code, out, ms: Date.now() - began };
    const ready = await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined);
    await ready?.body?.cancel();
    if (ready?.status === 200) {
      child.kill('SIGTERM');
      await exited;
      return 'ready';
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`start neither exited nor became ready within 60 s: ${out.slice(-2000)}`);
    }
  }
}

describe('start: the GitHub App self-check', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rf-start-gh-'));
  const sims: Simulator[] = [];
  let n = 0;
  afterAll(async () => {
    await Promise.all(sims.map((s) => s.close()));
    rmSync(dir, { recursive: true, force: true });
  });

  async function fleet(options: SimulatorOptions, scopes: object[]) {
    const sim = await startFleetSimulator(options);
    sims.push(sim);
    const sub = mkdtempSync(join(dir, `f${++n}-`));
    const port = await freePort();
    const doc = {
      name: 'check',
      ...simulatorCredentials(sim, sub),
      server: { host: '127.0.0.1', port },
      store: { path: join(sub, 'fleet.db') },
      scaleSets: scopes.map((scope, i) => ({
        name: `set${i}`,
        scope,
        labels: ['linux', `set${i}`],
        max: 1,
        provider: { kind: 'sim' },
      })),
    };
    const configPath = join(sub, 'fleet.yaml');
    writeFileSync(configPath, stringify(doc));
    return { sim, configPath, port };
  }

  it('starts when the App has what the fleet needs, reading each installation once and the App not at all', async () => {
    const { sim, configPath, port } = await fleet({}, [{ org: 'octo-org' }, { repo: 'octo-org/app' }]);
    expect(await start(configPath, port)).toBe('ready');
    // The installations say all the check needs; the controller's client reuses the ids the check read.
    const calls = sim.stats().apiCalls.byRoute;
    expect(calls['GET /app'] ?? 0).toBe(0);
    expect(calls['GET /orgs/{org}/installation']).toBe(1);
    expect(calls['GET /repos/{owner}/{repo}/installation']).toBe(1);
    expect(calls['GET /orgs/{org}/actions/runner-groups'] ?? 0).toBe(0);
  }, 90_000);

  it('refuses (exit 1, in seconds) naming each missing permission and where to grant it', async () => {
    const { sim, configPath, port } = await fleet(
      { permissions: { actions: 'read', metadata: 'read', administration: 'read' } },
      [{ org: 'octo-org' }, { repo: 'octo-org/app' }],
    );
    const run = await start(configPath, port);
    expect(run).not.toBe('ready');
    const { code, out, ms } = run as Run;
    expect(code).toBe(1);
    expect(ms).toBeLessThan(30_000);
    expect(out).toContain(
      'runner-fleet start: refusing to start: the GitHub credentials cannot run this fleet:',
    );
    expect(out).toMatch(
      /organization octo-org: App installation \d+ lacks permissions \(organization_self_hosted_runners: needs write, has none\)/,
    );
    expect(out).toContain('Organization permissions > Self-hosted runners: Read and write');
    expect(out).toMatch(/repository octo-org\/app: .*administration: needs write, has read/);
    expect(out).toContain('Repository permissions > Administration: Read and write');
    expect(out).toMatch(
      new RegExp(
        `accept the new permissions at ${sim.baseUrl}/organizations/octo-org/settings/installations/\\d+`,
      ),
    );
    // Nothing was started: no server, no store.
    expect(await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => 'refused')).toBe('refused');
    expect(out).not.toContain('PRIVATE KEY');
  }, 90_000);

  it('refuses when the App does not subscribe to workflow_job; doctor prints the same fix', async () => {
    const { sim, configPath, port } = await fleet({ events: ['push'] }, [{ org: 'octo-org' }]);
    const run = await start(configPath, port);
    const { code, out } = run as Run;
    expect(code).toBe(1);
    expect(out).toContain(`GitHub App ${sim.appSlug} does not subscribe to the workflow_job event`);
    expect(out).toMatch(
      /organization octo-org: App installation \d+ does not receive the workflow_job event/,
    );
    expect(out).toContain('tick "Workflow job"');

    const stdout = new PassThrough();
    let text = '';
    stdout.on('data', (c: Buffer) => (text += c.toString()));
    const exit = await doctor.run(['--config', configPath], { stdout, stderr: new PassThrough(), env: {} });
    expect(exit).toBe(1);
    expect(text).toContain(`FAIL  GitHub App ${sim.appSlug} does not subscribe to the workflow_job event`);
    expect(text).toMatch(/\n {6}fix: in the App's settings \(.*\/apps\/runner-fleet-sim\/permissions\)/);
  }, 90_000);
});
