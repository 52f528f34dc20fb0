#!/usr/bin/env node
/**
 * Composition root of the runner-fleet CLI: resolves the command and runs it. Each command lives in its own file
 * and is imported only when it runs.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkoutRoot, staleBuild } from './build-stamp.js';
import type { Command, CommandIo } from './command.js';
import { UsageError } from './command.js';
import { followParent, heapLimitFlags, runWithFlags } from './heap-limit.js';

const commands: Record<string, () => Promise<{ command: Command }>> = {
  start: () => import('./start.js'),
  validate: () => import('./validate.js'),
  demo: () => import('./demo.js'),
  simulate: () => import('./simulate.js'),
  'emulate-runner': () => import('./emulate-runner.js'),
  status: () => import('./status.js'),
  doctor: () => import('./doctor.js'),
  rbac: () => import('./rbac.js'),
  'aws-policy': () => import('./aws-policy.js'),
};

async function help(io: CommandIo): Promise<void> {
  io.stdout.write('Usage: runner-fleet <command> [options]\n\nCommands:\n');
  for (const [name, load] of Object.entries(commands)) {
    const { command } = await load();
    io.stdout.write(`  ${name.padEnd(16)}${command.summary}\n`);
  }
  io.stdout.write('\nRun `runner-fleet <command> --help` for the options of a command.\n');
}

/** From a checkout, a dist/ built from other sources runs code that is not what src/ says: say so. */
function warnIfStale(io: CommandIo): void {
  if (io.env.RUNNER_FLEET_BUILD_CHECK === 'off') return;
  const root = checkoutRoot();
  // Only the built CLI (dist/cli/main.js) has a build to compare; tsx runs src/ itself.
  if (path.basename(path.dirname(path.dirname(fileURLToPath(import.meta.url)))) !== 'dist') return;
  let stale: string | undefined;
  try {
    stale = staleBuild(root);
  } catch {
    return;
  }
  if (stale)
    io.stderr.write(
      `runner-fleet: warning: ${stale}; run \`npm run build\` (npm start does) for the current code\n`,
    );
}

/** Set by main() for a command that exits as soon as it is done (Command.exitWhenDone). */
let exitWhenDone = false;

export async function main(argv: string[], io: CommandIo): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    await help(io);
    return name === undefined ? 2 : 0;
  }
  if (name === '--version') {
    const { createRequire } = await import('node:module');
    const pkg = createRequire(import.meta.url)('../../package.json') as { version: string };
    io.stdout.write(`${pkg.version}\n`);
    return 0;
  }
  const load = commands[name];
  if (!load) {
    io.stderr.write(`runner-fleet: unknown command '${name}'. Run 'runner-fleet --help' for the list.\n`);
    return 2;
  }
  const { command } = await load();
  if (rest.includes('--help') || rest.includes('-h')) {
    io.stdout.write(`${command.usage.trimEnd()}\n`);
    return 0;
  }
  exitWhenDone = command.exitWhenDone === true;
  // The emulated runner is started once per runner: only the commands people type check the build.
  if (name !== 'emulate-runner') warnIfStale(io);
  try {
    return await command.run(rest, io);
  } catch (error) {
    if (error instanceof UsageError) {
      io.stderr.write(`runner-fleet ${name}: ${error.message}\n\n${command.usage.trimEnd()}\n`);
      return 2;
    }
    throw error;
  }
}

const io: CommandIo = { stdout: process.stdout, stderr: process.stderr, env: process.env };
const args = process.argv.slice(2);
followParent(process.env);
let flags: string[] | null = null;
try {
  flags = heapLimitFlags(args, process.env, process.execArgv);
} catch (error) {
  process.stderr.write(`runner-fleet: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(2);
}
// `start` runs with the heap limit it needs (heap-limit.ts): a child process with V8's flags set at its start.
const run = flags !== null ? runWithFlags(flags, process.argv[1]!, args) : main(args, io);
run.then(
  (code) => {
    process.exitCode = code;
    // Log lines and stderr are written synchronously (a file, a pipe or a terminal on Linux): nothing is lost.
    if (exitWhenDone) process.exit(code);
  },
  (error: unknown) => {
    const message = error instanceof Error ? error.message : String(error);
    process.stderr.write(`runner-fleet: ${message}\n`);
    process.exitCode = 1;
    if (exitWhenDone) process.exit(1);
  },
);
