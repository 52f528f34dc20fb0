/**
 * AWS SDK errors -> ProviderError. The SDK's error carries the AWS error code as `name` (EC2 `<Code>`, SSM `__type`),
 * the HTTP status in `$metadata.httpStatusCode`, and whole request/response objects that may hold a request body: a
 * PutParameter body is the runner's secret. So the ProviderError keeps only the operation, the code, the status, the
 * request id and a scrubbed message, and its `cause` is a plain summary, never the SDK's object.
 */
import { ProviderError } from '../provider.js';

/** Codes AWS answers when a caller goes too fast. */
const THROTTLING = new Set([
  'RequestLimitExceeded',
  'Throttling',
  'ThrottlingException',
  'ThrottledException',
  'TooManyRequestsException',
  'RequestThrottled',
  'RequestThrottledException',
  'SlowDown',
  'PriorRequestNotComplete',
  'TooManyUpdates',
]);

/** No capacity now; later or elsewhere there may be. */
const CAPACITY = new Set([
  'InsufficientInstanceCapacity',
  'InsufficientCapacity',
  'InsufficientHostCapacity',
  'UnfulfillableCapacity',
  'MaxSpotInstanceCountExceeded',
  'SpotMaxPriceTooLow',
]);

/** Account limits: they clear as instances end. */
const QUOTA = new Set(['InstanceLimitExceeded', 'VcpuLimitExceeded', 'ResourceLimitExceeded']);

const ACCESS = new Set([
  'UnauthorizedOperation',
  'AccessDenied',
  'AccessDeniedException',
  'AuthFailure',
  'Blocked',
  'OptInRequired',
  'InvalidClientTokenId',
  'UnrecognizedClientException',
  'SignatureDoesNotMatch',
  'IncompleteSignature',
  'MissingAuthenticationToken',
]);

/** Expired credentials: a refresh (instance role, web identity) usually fixes it. */
const CREDENTIALS = new Set([
  'ExpiredToken',
  'ExpiredTokenException',
  'RequestExpired',
  'CredentialsProviderError',
]);

const SERVER = new Set([
  'InternalError',
  'InternalFailure',
  'InternalServerError',
  'InternalServerErrorException',
  'ServiceUnavailable',
  'ServiceUnavailableException',
  'Unavailable',
]);

const NETWORK = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
]);

export interface AwsErrorSummary {
  /** AWS error code (EC2 `Code`, SSM `__type`) or Node error code; `Unknown` when there is none. */
  readonly code: string;
  readonly status?: number;
  readonly requestId?: string;
  /** AWS's own message, scrubbed and shortened. */
  readonly message: string;
}

function field(value: unknown, key: string): unknown {
  return typeof value === 'object' && value !== null ? (value as Record<string, unknown>)[key] : undefined;
}

/**
 * Drops the secret itself and any long base64-like run (a fragment of a JIT config), and keeps the text short. AWS
 * messages name ids and parameters, and a validation error may quote a value it was sent.
 */
export function scrubAwsText(text: string, secrets: readonly string[] = []): string {
  let out = text;
  for (const secret of secrets) if (secret.length > 0) out = out.split(secret).join('[redacted]');
  out = out.replace(/[A-Za-z0-9+/=_-]{40,}/g, '[redacted]').replace(/\s+/g, ' ');
  return out.length > 300 ? `${out.slice(0, 300)}...` : out;
}

/** The parts of an SDK (or network) error worth keeping. */
export function summarizeAwsError(error: unknown, secrets: readonly string[] = []): AwsErrorSummary {
  const metadata = field(error, '$metadata');
  const status = field(metadata, 'httpStatusCode');
  const requestId = field(metadata, 'requestId');
  const name = field(error, 'name');
  const nodeCode = field(error, 'code');
  const code =
    typeof nodeCode === 'string' && NETWORK.has(nodeCode)
      ? nodeCode
      : typeof name === 'string' && name !== '' && name !== 'Error'
        ? name
        : typeof nodeCode === 'string' && nodeCode !== ''
          ? nodeCode
          : 'Unknown';
  const rawMessage = field(error, 'message');
  return {
    code,
    ...(typeof status === 'number' ? { status } : {}),
    ...(typeof requestId === 'string' && requestId !== '' ? { requestId } : {}),
    message: scrubAwsText(typeof rawMessage === 'string' ? rawMessage : '', secrets),
  };
}

function classify(summary: AwsErrorSummary, aborted: boolean): { code: string; retryable: boolean } {
  const { code, status } = summary;
  if (aborted || code === 'AbortError') return { code: 'aborted', retryable: true };
  if (THROTTLING.has(code) || status === 429) return { code: 'aws-throttled', retryable: true };
  if (CAPACITY.has(code)) return { code: 'aws-capacity', retryable: true };
  if (QUOTA.has(code)) return { code: 'aws-quota', retryable: true };
  if (ACCESS.has(code) || status === 403) return { code: 'aws-access-denied', retryable: false };
  if (CREDENTIALS.has(code)) return { code: 'aws-credentials', retryable: true };
  if (code === 'IdempotentParameterMismatch') return { code: 'aws-idempotency-mismatch', retryable: true };
  if (
    code === 'TimeoutError' ||
    code === 'RequestTimeout' ||
    code === 'RequestTimeoutException' ||
    code === 'ETIMEDOUT'
  ) {
    return { code: 'aws-timeout', retryable: true };
  }
  if (NETWORK.has(code)) return { code: 'aws-unreachable', retryable: true };
  if (SERVER.has(code) || (status !== undefined && status >= 500)) {
    return { code: 'aws-server-error', retryable: true };
  }
  if (
    code.startsWith('InvalidParameter') ||
    code === 'MissingParameter' ||
    code === 'ValidationException' ||
    code === 'ValidationError' ||
    code.endsWith('.Malformed') ||
    code === 'Unsupported' ||
    code === 'UnsupportedOperation'
  ) {
    return { code: 'aws-invalid', retryable: false };
  }
  if (
    code.endsWith('.NotFound') ||
    code.endsWith('NotFoundException') ||
    code === 'NoSuchEntity' ||
    code === 'ParameterNotFound'
  ) {
    return { code: 'aws-not-found', retryable: false };
  }
  // No HTTP answer at all (socket closed, DNS): the next attempt may get through.
  if (status === undefined) return { code: 'aws-unreachable', retryable: true };
  return { code: 'aws-error', retryable: false };
}

/**
 * `operation` is the API call (`RunInstances`); `subject` what it was about (a runner, a parameter name), never a
 * value. `secrets` are scrubbed from AWS's message.
 */
export function awsError(
  operation: string,
  error: unknown,
  options: { subject?: string; secrets?: readonly string[]; signal?: AbortSignal } = {},
): ProviderError {
  if (error instanceof ProviderError) return error;
  const summary = summarizeAwsError(error, options.secrets);
  const { code, retryable } = classify(summary, options.signal?.aborted === true);
  const about = options.subject === undefined ? '' : ` (${options.subject})`;
  const status = summary.status === undefined ? '' : ` [HTTP ${summary.status}]`;
  const text = summary.message === '' ? '' : `: ${summary.message}`;
  const cause = new Error(
    `${summary.code}${status}${summary.requestId ? ` request ${summary.requestId}` : ''}`,
  );
  cause.name = 'AwsErrorSummary';
  return new ProviderError(`${operation}${about}: ${summary.code}${status}${text}`, {
    code,
    retryable,
    cause,
  });
}

/** The AWS error code of an SDK error (`name`), or undefined. */
export function awsCode(error: unknown): string | undefined {
  const name = field(error, 'name');
  return typeof name === 'string' ? name : undefined;
}
