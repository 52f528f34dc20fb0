import type { Command } from './command.js';

// Placeholder until the 'rbac' command is built; it fails loudly rather than pretending to work.
export const command: Command = {
  summary: '(rbac: not built yet)',
  usage: 'runner-fleet rbac (not built yet)',
  async run(_argv, io) {
    io.stderr.write('runner-fleet rbac: not built yet\n');
    return 1;
  },
};
