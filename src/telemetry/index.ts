export { createLogger, childLogger, configSecrets } from './logger.js';
export { toLoggable, LOGGABLE_LIMITS } from './loggable.js';
export type { Logger, LogLevel, CreateLoggerOptions } from './logger.js';
export { createMetrics, METRIC_DEFINITIONS } from './metrics.js';
export type { FleetMetrics, MetricDefinition, MetricKey, CreateMetricsOptions } from './metrics.js';
export { renderMetricsDoc } from './metrics-doc.js';
export {
  REDACTED,
  SECRET_KEYS,
  createLineScrubber,
  createScrubber,
  scrubSecrets,
  isSecretKey,
  redactJsonSecretProperties,
} from './redact.js';
export type { Scrubber } from './redact.js';
