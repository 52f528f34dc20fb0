import type { Command } from './command.js';

// Placeholder until the 'doctor' command is built; it fails loudly rather than pretending to work.
export const command: Command = {
  summary: '(doctor: not built yet)',
  usage: 'runner-fleet doctor (not built yet)',
  async run(_argv, io) {
    io.stderr.write('runner-fleet doctor: not built yet\n');
    return 1;
  },
};
