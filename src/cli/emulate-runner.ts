import type { Command } from './command.js';

// Placeholder until the 'emulate-runner' command is built; it fails loudly rather than pretending to work.
export const command: Command = {
  summary: '(emulate-runner: not built yet)',
  usage: 'runner-fleet emulate-runner (not built yet)',
  async run(_argv, io) {
    io.stderr.write('runner-fleet emulate-runner: not built yet\n');
    return 1;
  },
};
