import type { Command } from './command.js';

// Placeholder until the 'demo' command is built; it fails loudly rather than pretending to work.
export const command: Command = {
  summary: '(demo: not built yet)',
  usage: 'runner-fleet demo (not built yet)',
  async run(_argv, io) {
    io.stderr.write('runner-fleet demo: not built yet\n');
    return 1;
  },
};
