/**
 * The runner emulator: an actions/runner stand-in for the simulator. Usable in-process (`runEmulatedRunner`) and
 * as the `runner-fleet emulate-runner` command.
 */
export { configureEmulatedRunner, runEmulatedRunner, EMULATOR_VERSION } from './emulator.js';
export type {
  ConfigureResult,
  EmulatorEvent,
  EmulatorOptions,
  EmulatorRegistration,
  TokenRegistration,
} from './emulator.js';
export { readRunnerConfig, writeRunnerConfig } from './config-files.js';
export type { RunnerConfigFiles } from './config-files.js';
export { runJobHook } from './hooks.js';
export type { JobHooks } from './hooks.js';
export { ExitCode } from './exit-codes.js';
export type { ExitCodeValue } from './exit-codes.js';
export { decodeJitConfig, JitConfigError } from './jit-config.js';
export type { DecodedJitConfig, OAuthCredentials, RsaParamsFile, RunnerSettings } from './jit-config.js';
export { HttpTransport } from './http-transport.js';
export { emulatorRegistration } from './registration.js';
export type { InstanceRegistration } from './registration.js';
// The broker protocol's types and BrokerCallError: protocol.ts holds nothing that is not public.
export * from './protocol.js';
