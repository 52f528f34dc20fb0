/**
 * For suites that run the built `runner-fleet start` against a simulator: the simulator and a fleet.yaml for it,
 * set up before the file's tests and removed after them.
 */
import { rmSync } from 'node:fs';
import { afterAll, beforeAll } from 'vitest';
import type { Simulator } from '../../src/sim/github/index.js';
import { startFleetSimulator } from './sim-fleet.js';
import { requireBuiltCli, writeStartConfig } from './start-cli.js';

export interface StartFleet {
  /** Set once the file's beforeAll ran. */
  readonly sim: Simulator;
  readonly configPath: string;
}

export function startFleetPerFile(): StartFleet {
  const fleet = {} as { sim: Simulator; configPath: string; dir?: string };
  beforeAll(async () => {
    requireBuiltCli();
    fleet.sim = await startFleetSimulator();
    const files = writeStartConfig(fleet.sim);
    fleet.configPath = files.configPath;
    fleet.dir = files.dir;
  });
  afterAll(async () => {
    await fleet.sim?.close();
    if (fleet.dir !== undefined) rmSync(fleet.dir, { recursive: true, force: true });
  });
  return fleet;
}
