/** Public API of the configuration layer. */
export { MIN_WEBHOOK_SECRET_LENGTH, loadConfig, parseConfig } from './load.js';
export type { LoadOptions, LoadResult } from './load.js';
export { formatProblem } from './problem.js';
export type { Problem } from './problem.js';
export { parseDuration, formatDuration } from '../lib/duration.js';
export { DEFAULTS } from './defaults.js';
/** The zod schema, for code that builds a config without YAML (it yields a FleetConfig, not yet frozen). */
export { fleetConfigSchema } from './schema.js';
export type * from '../core/fleet-config.js';
