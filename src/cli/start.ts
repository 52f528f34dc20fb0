import type { Command } from './command.js';

// Placeholder until the 'start' command is built; it fails loudly rather than pretending to work.
export const command: Command = {
  summary: '(start: not built yet)',
  usage: 'runner-fleet start (not built yet)',
  async run(_argv, io) {
    io.stderr.write('runner-fleet start: not built yet\n');
    return 1;
  },
};
