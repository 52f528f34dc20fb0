import type { Command } from './command.js';

// Placeholder until the 'simulate' command is built; it fails loudly rather than pretending to work.
export const command: Command = {
  summary: '(simulate: not built yet)',
  usage: 'runner-fleet simulate (not built yet)',
  async run(_argv, io) {
    io.stderr.write('runner-fleet simulate: not built yet\n');
    return 1;
  },
};
