export { createLogger, childLogger, configSecrets, redactionPaths } from './logger.js';
export type { Logger, LogLevel, CreateLoggerOptions } from './logger.js';
export { createMetrics, METRIC_DEFINITIONS } from './metrics.js';
export type { FleetMetrics, MetricDefinition, MetricKey, CreateMetricsOptions } from './metrics.js';
export { renderMetricsDoc } from './metrics-doc.js';
export {
  REDACTED,
  SECRET_KEYS,
  createScrubber,
  scrubSecrets,
  isSecretKey,
  redactJsonSecretProperties,
} from './redact.js';
export type { Scrubber } from './redact.js';
