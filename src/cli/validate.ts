/** `runner-fleet validate --config F`: checks a fleet.yaml and prints every problem, one a line. */
import type { Command } from './command.js';
import { UsageError } from './command.js';
import { formatProblem, loadConfig } from '../config/index.js';

const usage = `Usage: runner-fleet validate --config <fleet.yaml>

Checks a fleet configuration without starting anything: YAML syntax, the schema, cross-field rules, and that
every \${env:NAME} and \${file:PATH} secret reference resolves (their values are never printed).

Options:
  -c, --config <file>   the fleet.yaml to check (required)
  -h, --help            show this help

Exit status: 0 and "ok: N scale sets" when valid (warnings, such as a webhook secret shorter than 16 characters,
on stderr as "warning: <file>:<line>:<col> <path>: <message>"); 2 with one line per problem on stdout,
"<file>:<line>:<col> <path>: <message>", when not (or on a usage error).
`;

/** Parses `--config F`, `--config=F` or `-c F`; anything else is a usage error. */
export function parseValidateArgs(argv: readonly string[]): { config: string } {
  let config: string | undefined;
  for (let index = 0; index < argv.length; index++) {
    const arg = argv[index]!;
    if (arg === '--config' || arg === '-c') {
      const value = argv[++index];
      if (value === undefined || value === '') throw new UsageError(`${arg} needs a file name`);
      config = value;
    } else if (arg.startsWith('--config=')) {
      config = arg.slice('--config='.length);
      if (config === '') throw new UsageError('--config needs a file name');
    } else {
      throw new UsageError(`unexpected argument '${arg}'`);
    }
  }
  if (config === undefined) throw new UsageError('--config <fleet.yaml> is required');
  return { config };
}

export const command: Command = {
  summary: 'Check a fleet.yaml and list every problem with its line',
  usage,
  async run(argv, io) {
    const { config } = parseValidateArgs(argv);
    const result = loadConfig(config, { env: io.env });
    if (result.ok) {
      for (const warning of result.warnings) io.stderr.write(`warning: ${formatProblem(warning)}\n`);
      io.stdout.write(`ok: ${result.config.scaleSets.length} scale sets\n`);
      return 0;
    }
    const unreadable = result.problems.find((problem) => problem.line === 0);
    if (unreadable !== undefined) {
      io.stderr.write(`runner-fleet validate: ${formatProblem(unreadable)}\n`);
      return 2;
    }
    for (const problem of result.problems) io.stdout.write(`${formatProblem(problem)}\n`);
    const count = result.problems.length;
    io.stderr.write(`${config}: ${count} problem${count === 1 ? '' : 's'}\n`);
    return 2;
  },
};
