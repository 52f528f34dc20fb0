/** `runner-fleet status` against the controller of a running demo (`demo --keep`): the real CLI on both ends. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, startCli } from '../demo/helpers.js';
import type { CliProcess } from '../demo/helpers.js';

let demo: CliProcess;
let url = '';

beforeAll(async () => {
  demo = startCli(['demo', '--jobs', '20', '--duration', '3s', '--keep']);
  url = (await demo.waitFor(/Dashboard: +(http:\/\/127\.0\.0\.1:\d+)\//))[1]!;
  await demo.waitFor(/Still serving the dashboard/, 90_000);
}, 120_000);

afterAll(async () => {
  demo?.signal('SIGINT');
  const run = await demo?.exited;
  expect(run?.code).toBe(0);
}, 60_000);

describe('runner-fleet status against a demo controller', () => {
  it('shows the drained fleet: persistent set at minIdle, the unroutable job listed', async () => {
    const run = await runCli(['status', '--url', url]);
    expect(run.code, run.stderr).toBe(0);
    const rows = Object.fromEntries(
      run.stdout
        .split('\n')
        .filter((l) => /^(linux-process|linux-cloud|linux-listener|app-persistent) /.test(l))
        .map((l) => {
          const cells = l.split(/\s+/);
          return [cells[0], cells];
        }),
    );
    // name, provider, mode, min, max, active, starting, idle, busy, ending, queued, running, oldest wait
    expect(rows['linux-process']?.slice(1, 6)).toEqual(['process', 'ephemeral/jit', '0', '8', '0']);
    expect(rows['linux-cloud']?.slice(1, 6)).toEqual(['sim', 'ephemeral/jit', '0', '60', '0']);
    expect(rows['linux-listener']?.slice(1, 6)).toEqual(['sim', 'ephemeral/jit', '0', '16', '0']);
    expect(rows['app-persistent']?.slice(1, 8)).toEqual(['sim', 'persistent/token', '1', '4', '1', '0', '1']);
    expect(run.stdout).toMatch(
      /Unroutable jobs \(no scale set serves their labels\): 1\n.*\n#\d+\s+octo-org\/app\s+self-hosted,linux,arm64,gpu\s+queued/,
    );
  });

  it('--json for scripts', async () => {
    const run = await runCli(['status', '--url', url, '--json']);
    expect(run.code).toBe(0);
    const report = JSON.parse(run.stdout) as {
      scaleSets: { name: string; activeRunners: number; queuedJobs: number }[];
      unroutableJobs: { labels: string[] }[];
    };
    expect(report.scaleSets.map((s) => [s.name, s.activeRunners, s.queuedJobs])).toEqual([
      ['linux-process', 0, 0],
      ['linux-cloud', 0, 0],
      ['linux-listener', 0, 0],
      ['app-persistent', 1, 0],
    ]);
    expect(report.unroutableJobs.map((j) => j.labels)).toEqual([['self-hosted', 'linux', 'arm64', 'gpu']]);
  });
});
