/**
 * Ctrl-C in the middle of a demo: everything it started stops, runner processes included, and it says so.
 */
import { readdirSync, readlinkSync, rmSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { startCli } from './helpers.js';

/** Pids of live processes whose working directory is inside `dir` (the process provider runs runners there). */
function processesUnder(dir: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readlinkSync(`/proc/${entry}/cwd`).startsWith(`${dir}/`)) pids.push(Number(entry));
    } catch {
      // gone, or not ours to read
    }
  }
  return pids;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('runner-fleet demo interrupted', () => {
  it('SIGINT stops the workload, the controller, the simulator and every runner process; exit 130', async () => {
    const demo = startCli(['demo', '--jobs', '300', '--duration', '40s']);
    const [, dir] = await demo.waitFor(/Controller log: (\/\S+)\/controller\.log/);
    try {
      // Wait until runner processes of the process scale set are running.
      const deadline = Date.now() + 45_000;
      while (processesUnder(dir!).length === 0 && Date.now() < deadline) await sleep(200);
      expect(processesUnder(dir!).length).toBeGreaterThan(0);
      demo.signal('SIGINT');
      const run = await demo.exited;
      expect(run.code).toBe(130);
      expect(run.stdout).toContain('interrupted; everything it started was stopped');
      // The log of an interrupted run is kept, and the output says where.
      expect(run.stdout).toContain(`Controller log kept: ${dir}/controller.log`);
      expect(processesUnder(dir!)).toEqual([]);
    } finally {
      demo.signal('SIGKILL');
      rmSync(dir!, { recursive: true, force: true });
    }
  }, 120_000);
});
