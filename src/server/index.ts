export { createServer } from './server.js';
export type {
  DashboardContext,
  DashboardPlugin,
  FleetServer,
  HealthCheck,
  Readiness,
  ServerOptions,
} from './server.js';
export type {
  EventQuery,
  EventView,
  JobQuery,
  JobView,
  ReadModel,
  RunnerQuery,
  RunnerView,
  ScaleSetView,
} from './read-model.js';
export { EventHub } from './events.js';
export type { FleetEvent, FleetEventListener } from './events.js';
export { openSse } from './sse.js';
export type { SseStream } from './sse.js';
export { ServerConfigError, isLoopbackHost, assertServerExposure } from './auth.js';
export { WEBHOOK_BODY_LIMIT } from './webhook-route.js';
