/** Public API of the configuration layer. */
export { loadConfig, parseConfig } from './load.js';
export type { LoadOptions, LoadResult } from './load.js';
export { formatProblem } from './problem.js';
export type { Problem } from './problem.js';
export { parseDuration, formatDuration } from './duration.js';
export type * from './types.js';
