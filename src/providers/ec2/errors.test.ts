import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { ProviderError } from '../provider.js';
import { awsError, scrubAwsText } from './errors.js';

/** Shaped like an AWS SDK v3 service exception (name = AWS code, $metadata, and the raw response). */
function sdkError(name: string, status: number | undefined, message = `${name} happened`): Error {
  const error = new Error(message);
  error.name = name;
  return Object.assign(error, {
    ...(status !== undefined ? { $metadata: { httpStatusCode: status, requestId: 'req-1' } } : {}),
    $response: { body: 'the request body with SECRET-VALUE-123' },
  });
}

describe('AWS error mapping', () => {
  it.each([
    ['RequestLimitExceeded', 503, 'aws-throttled', true],
    ['ThrottlingException', 400, 'aws-throttled', true],
    ['InsufficientInstanceCapacity', 500, 'aws-capacity', true],
    ['VcpuLimitExceeded', 400, 'aws-quota', true],
    ['UnauthorizedOperation', 403, 'aws-access-denied', false],
    ['AccessDeniedException', 400, 'aws-access-denied', false],
    ['ExpiredToken', 400, 'aws-credentials', true],
    ['InvalidParameterValue', 400, 'aws-invalid', false],
    ['InvalidAMIID.Malformed', 400, 'aws-invalid', false],
    ['InvalidSubnetID.NotFound', 400, 'aws-not-found', false],
    ['IdempotentParameterMismatch', 400, 'aws-idempotency-mismatch', true],
    ['InternalError', 500, 'aws-server-error', true],
    ['SomethingNew', 502, 'aws-server-error', true],
    ['SomethingNew', 400, 'aws-error', false],
    ['TimeoutError', undefined, 'aws-timeout', true],
  ] as const)('%s (HTTP %s) -> %s', (name, status, code, retryable) => {
    const mapped = awsError('RunInstances', sdkError(name, status), { subject: 'runner r-1' });
    expect(mapped).toBeInstanceOf(ProviderError);
    expect(mapped).toMatchObject({ code, retryable });
    expect(mapped.message.startsWith(`RunInstances (runner r-1): ${name}`)).toBe(true);
  });

  it('maps connection errors and aborts', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' });
    expect(awsError('DescribeInstances', refused)).toMatchObject({
      code: 'aws-unreachable',
      retryable: true,
    });
    const controller = new AbortController();
    controller.abort();
    const abort = Object.assign(new Error('aborted'), { name: 'AbortError' });
    expect(awsError('DescribeInstances', abort, { signal: controller.signal })).toMatchObject({
      code: 'aborted',
      retryable: true,
    });
  });

  it('keeps only a summary as the cause, and scrubs the secret and long base64 runs from the message', () => {
    const secret = 'SECRET-VALUE-123';
    const jit = 'eyJ'.padEnd(120, 'A');
    const error = sdkError('ValidationException', 400, `Value '${secret}' and '${jit}' at 'value' failed`);
    const mapped = awsError('PutParameter', error, { subject: '/runner-fleet/f/i-1', secrets: [secret] });
    const everything = inspect(mapped, { depth: 10, showHidden: true });
    expect(everything).not.toContain(secret);
    expect(everything).not.toContain(jit);
    expect(mapped.message).toContain('[redacted]');
    expect((mapped.cause as Error).message).toBe('ValidationException [HTTP 400] request req-1');
  });

  it('leaves a ProviderError as it is and keeps messages short', () => {
    const own = new ProviderError('x', { code: 'invalid-name', retryable: false });
    expect(awsError('RunInstances', own)).toBe(own);
    expect(scrubAwsText('word '.repeat(200)).length).toBeLessThanOrEqual(303);
  });
});
