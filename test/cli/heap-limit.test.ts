/**
 * The heap limit `runner-fleet start` sets for itself (src/cli/heap-limit.ts): the built CLI runs the controller in
 * a child process started with V8's limit, passes SIGTERM on and exits as the child does; a limit already given
 * (NODE_OPTIONS, as the Helm chart sets it) or RUNNER_FLEET_HEAP_LIMIT_MB=0 keeps one process; a bad value is a
 * usage error. Needs `npm run build`.
 */
import { readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { childEnv, heapLimitFlags } from '../../src/cli/heap-limit.js';
import { CLI, StartedCli } from '../support/start-cli.js';
import { startFleetPerFile } from '../support/start-fleet.js';

const fleet = startFleetPerFile();

const children = (pid: number): number[] =>
  readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
    .trim()
    .split(/\s+/)
    .filter((x) => x !== '')
    .map(Number);
const cmdline = (pid: number): string[] => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
const environ = (pid: number): string[] => readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');

describe('heap limit of runner-fleet start', () => {
  it('chooses the flags: 160 MiB by default, the variable, or none when a limit is set or it is off', () => {
    const env = { PATH: '/bin' };
    expect(heapLimitFlags(['start', '--config', 'f'], env, [])).toEqual([
      '--max-old-space-size=160',
      '--max-semi-space-size=8',
    ]);
    expect(heapLimitFlags(['start'], { RUNNER_FLEET_HEAP_LIMIT_MB: '300' }, [])?.[0]).toBe(
      '--max-old-space-size=300',
    );
    expect(heapLimitFlags(['start'], { RUNNER_FLEET_HEAP_LIMIT_MB: '0' }, [])).toBeNull();
    expect(heapLimitFlags(['start'], { NODE_OPTIONS: '--max-old-space-size=200' }, [])).toBeNull();
    expect(heapLimitFlags(['start'], {}, ['--max_old_space_size=90'])).toBeNull();
    expect(heapLimitFlags(['validate', '--config', 'f'], env, [])).toBeNull();
    expect(heapLimitFlags(['start', '--help'], env, [])).toBeNull();
    expect(childEnv({ PATH: '/bin' })).toMatchObject({ PATH: '/bin', MALLOC_MMAP_THRESHOLD_: '32768' });
    expect(childEnv({ MALLOC_MMAP_THRESHOLD_: '131072' }).MALLOC_MMAP_THRESHOLD_).toBe('131072');
    expect(() => heapLimitFlags(['start'], { RUNNER_FLEET_HEAP_LIMIT_MB: 'lots' }, [])).toThrow(
      /RUNNER_FLEET_HEAP_LIMIT_MB must be a whole number of MiB/,
    );
  });

  it('runs the controller in a child with the limit, passes SIGTERM on and exits as it does', async () => {
    const cli = new StartedCli(fleet.configPath);
    try {
      await cli.ready();
      const pid = childPid(cli);
      const [child] = children(pid);
      expect(child).toBeDefined();
      expect(cmdline(child!)).toContain('--max-old-space-size=160');
      expect(environ(child!)).toContain('MALLOC_MMAP_THRESHOLD_=32768');
      expect(cmdline(pid)).not.toContain('--max-old-space-size=160');
      cli.signal('SIGTERM');
      const exit = await cli.exited;
      expect(exit).toMatchObject({ code: 0, signal: null });
      expect(cli.output()).toContain('controller ready');
    } finally {
      await cli.kill();
    }
  });

  it('takes a child down with it when killed with SIGKILL', async () => {
    const cli = new StartedCli(fleet.configPath);
    await cli.ready();
    const pid = childPid(cli);
    const [child] = children(pid);
    cli.signal('SIGKILL');
    await cli.exited;
    const deadline = Date.now() + 10_000;
    let alive = true;
    while (alive && Date.now() < deadline) {
      try {
        process.kill(child!, 0);
        await new Promise((r) => setTimeout(r, 50));
      } catch {
        alive = false;
      }
    }
    expect(alive).toBe(false);
  });

  it('keeps one process when NODE_OPTIONS sets a limit, and refuses a bad RUNNER_FLEET_HEAP_LIMIT_MB', async () => {
    const cli = new StartedCli(fleet.configPath, {
      env: { PATH: process.env.PATH ?? '/bin', NODE_OPTIONS: '--max-old-space-size=200' },
    });
    try {
      await cli.ready();
      expect(children(childPid(cli))).toEqual([]);
    } finally {
      await cli.kill();
    }
    const bad = spawnSync(process.execPath, [CLI, 'start', '--config', fleet.configPath], {
      env: { PATH: process.env.PATH ?? '/bin', RUNNER_FLEET_HEAP_LIMIT_MB: '12' },
      encoding: 'utf8',
    });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('RUNNER_FLEET_HEAP_LIMIT_MB must be 0 or at least 64');
  });
});

function childPid(cli: StartedCli): number {
  return cli.pid;
}
