import type { Command } from './command.js';

// Placeholder until the 'validate' command is built; it fails loudly rather than pretending to work.
export const command: Command = {
  summary: '(validate: not built yet)',
  usage: 'runner-fleet validate (not built yet)',
  async run(_argv, io) {
    io.stderr.write('runner-fleet validate: not built yet\n');
    return 1;
  },
};
