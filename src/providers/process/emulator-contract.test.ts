/**
 * The provider contract for `process` running the real runner emulator (`runner-fleet emulate-runner`, as the demo
 * does) against a real GitHub simulator: the JIT config travels through ACTIONS_RUNNER_INPUT_JITCONFIG, the token
 * through ACTIONS_RUNNER_INPUT_TOKEN and the non-secret config.sh flags, and runners really register, take jobs and
 * exit with the real runner's codes.
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import type { ScaleSetConfig } from '../../core/fleet-config.js';
import { startSimulator } from '../../sim/github/index.js';
import { runProviderContract } from '../../../test/support/provider-contract.js';
import type { ProviderContext } from '../provider.js';
import { simSpecMaker } from '../sim/registrations.test-helpers.js';
import { ProcessProvider } from './process-provider.js';
import type { ProcessProviderConfig } from './schema.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const built = join(root, 'dist/cli/main.js');

/** `node dist/cli/main.js emulate-runner` when the build has it (npm test builds first), else the same source via tsx. */
function emulatorCommand(): string[] {
  try {
    const help = execFileSync(process.execPath, [built, 'emulate-runner', '--help'], { encoding: 'utf8' });
    if (help.includes('ACTIONS_RUNNER_INPUT_JITCONFIG')) return [built, 'emulate-runner'];
  } catch {
    // not built, or built before the emulator existed
  }
  console.warn(
    'emulator contract: dist/cli/main.js has no emulate-runner; running src/cli/main.ts through tsx',
  );
  return ['--import', 'tsx', join(root, 'src/cli/main.ts'), 'emulate-runner'];
}

runProviderContract('process (runner-fleet emulate-runner against the simulator)', async () => {
  const sim = await startSimulator();
  const workDir = await mkdtemp(join(tmpdir(), 'rf-process-emulator-'));
  const context: ProviderContext = {
    fleet: 'contract-fleet',
    scaleSet: { name: 'linux-small' } as ScaleSetConfig,
    logger: pino({ level: 'silent' }),
  };
  const config: ProcessProviderConfig = {
    kind: 'process',
    command: process.execPath,
    args: emulatorCommand(),
    workDir,
    stopGracePeriod: 5000,
  };
  const provider = new ProcessProvider(config, context);
  const failingProvider = new ProcessProvider(
    { ...config, command: join(workDir, 'missing', 'run.sh') },
    context,
  );
  return {
    provider,
    failingProvider,
    makeSpec: simSpecMaker(sim, context.fleet, context.scaleSet.name),
    async cleanup() {
      await provider.close();
      await sim.close();
      await rm(workDir, { recursive: true, force: true });
    },
  };
});
