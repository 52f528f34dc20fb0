import type { Command } from './command.js';

// Placeholder until the 'status' command is built; it fails loudly rather than pretending to work.
export const command: Command = {
  summary: '(status: not built yet)',
  usage: 'runner-fleet status (not built yet)',
  async run(_argv, io) {
    io.stderr.write('runner-fleet status: not built yet\n');
    return 1;
  },
};
