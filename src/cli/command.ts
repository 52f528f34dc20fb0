/** The shape every CLI command module exports. `main.ts` loads it on demand, so start-up pays only for what runs. */
export interface CommandIo {
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
  readonly env: NodeJS.ProcessEnv;
}

export interface Command {
  /** One line for `runner-fleet --help`. */
  readonly summary: string;
  /** Full text for `runner-fleet <command> --help`. */
  readonly usage: string;
  /** Runs the command; resolves to the process exit code (0 ok, 1 failure, 2 usage or config error). */
  run(argv: string[], io: CommandIo): Promise<number>;
  /**
   * The process exits as soon as run() resolves (main calls process.exit), not once nothing keeps it alive: for a
   * command whose abandoned work (a call to a server that never answers) must not hold the process.
   */
  readonly exitWhenDone?: boolean;
}

/** Thrown for bad command-line usage; main prints the message and the command's usage, exit 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}
