export { createGitHubClient } from './client.js';
export type {
  GitHubClient,
  GitHubClientOptions,
  ApiCallCount,
  WebhookDelivery,
  WebhookDeliveryDetail,
} from './client.js';
export { GitHubError, toGitHubError } from './errors.js';
export type { GitHubErrorCode } from './errors.js';
export { registrationUrl, scopeKey } from './scope.js';
export { routeTemplate } from './transport.js';
export type { FetchLike } from './transport.js';
export {
  WebhookError,
  parseWebhookBody,
  parseWorkflowJobEvent,
  signWebhookPayload,
  verifyWebhookSignature,
} from './webhooks.js';
export type { WebhookErrorCode } from './webhooks.js';
