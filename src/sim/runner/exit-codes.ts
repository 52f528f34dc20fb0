/** actions/runner's process exit codes (Constants.Runner.ReturnCode), which the emulator keeps. */
export const ExitCode = {
  /** Ran to the end: an ephemeral runner after its job, or a stop requested by a signal. */
  Success: 0,
  /** Bad, expired or already used credentials, a deleted registration, a bad configuration. */
  TerminatedError: 1,
  /** The service could not be reached or kept failing; starting again may work. */
  RetryableError: 2,
  RunnerUpdating: 3,
  RunOnceRunnerUpdating: 4,
  /** Another process holds the session of this runner. */
  SessionConflict: 5,
  RunnerConfigurationRefreshed: 6,
  RunnerVersionDeprecated: 7,
} as const;

export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];
