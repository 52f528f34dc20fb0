/**
 * The file system of one bridged instance: a 0700 temporary directory standing in for the machine's disk.
 *
 *   <sandbox>/user-data          the instance's user data, run with bash
 *   <sandbox>/bin/               first on PATH: shutdown, poweroff and halt stubs that record the request
 *   <sandbox>/runner/            RUNNER_FLEET_RUNNER_DIR: run.sh and config.sh wrappers around the runner emulator;
 *                                config.sh leaves the runner's settings here (.runner, .credentials, ...: secret)
 *   <sandbox>/home, <sandbox>/tmp   HOME and TMPDIR
 *   <sandbox>/calls.log          one line per run.sh / config.sh call with its arguments (never a secret: the
 *                                registration travels in the environment)
 *   <sandbox>/shutdown-requested written by the stubs
 *
 * It holds secrets once the runner is configured: the bridge removes it when the instance ends.
 */
import { chmod, mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface Sandbox {
  readonly dir: string;
  readonly userData: string;
  readonly bin: string;
  readonly runner: string;
  readonly home: string;
  readonly tmp: string;
  readonly calls: string;
  readonly shutdownMarker: string;
}

/** Quotes one word for sh. */
export const shellWord = (word: string): string => `'${word.replace(/'/g, `'\\''`)}'`;

function wrapper(name: 'run.sh' | 'config.sh', command: readonly string[], extra: readonly string[]): string {
  return [
    '#!/bin/sh',
    `# EC2 bridge stand-in for actions/runner's ${name}: the runner emulator, which reads ACTIONS_RUNNER_INPUT_*`,
    '# from the environment as the real runner does.',
    'here=$(cd "$(dirname "$0")" && pwd)',
    `{ printf '%s' ${shellWord(name)}; for arg in "$@"; do printf ' %s' "$arg"; done; echo; } >>"$here/../calls.log"`,
    `exec ${command.map(shellWord).join(' ')} ${extra.join(' ')} --runner-root "$here" "$@"`,
    '',
  ].join('\n');
}

const SHUTDOWN_STUB = [
  '#!/bin/sh',
  '# EC2 bridge stand-in for shutdown: records the request; the bridge then stops or terminates the instance.',
  'echo "$(basename "$0") $*" >>"$(dirname "$0")/../shutdown-requested"',
  '',
].join('\n');

export async function createSandbox(
  parent: string,
  instanceId: string,
  userData: string,
  runnerCommand: readonly string[],
): Promise<Sandbox> {
  const dir = await mkdtemp(join(parent, `rf-ec2-${instanceId}-`));
  await chmod(dir, 0o700);
  const box: Sandbox = {
    dir,
    userData: join(dir, 'user-data'),
    bin: join(dir, 'bin'),
    runner: join(dir, 'runner'),
    home: join(dir, 'home'),
    tmp: join(dir, 'tmp'),
    calls: join(dir, 'calls.log'),
    shutdownMarker: join(dir, 'shutdown-requested'),
  };
  for (const sub of [box.bin, box.runner, box.home, box.tmp]) await mkdir(sub, { mode: 0o700 });
  await writeFile(box.userData, userData, { mode: 0o600 });
  await writeFile(join(box.runner, 'run.sh'), wrapper('run.sh', runnerCommand, []), { mode: 0o755 });
  await writeFile(join(box.runner, 'config.sh'), wrapper('config.sh', runnerCommand, ['--config-only']), {
    mode: 0o755,
  });
  for (const stub of ['shutdown', 'poweroff', 'halt']) {
    await writeFile(join(box.bin, stub), SHUTDOWN_STUB, { mode: 0o755 });
  }
  return box;
}
