/**
 * Error classification at the edges : retryable (429, 5xx, timeouts, conflicts, network) or
 * fatal. Ports throw errors that carry `retryable` (ProviderError) or an HTTP `status` (octokit RequestError).
 */
export interface ClassifiedError {
  readonly code: string;
  readonly message: string;
  readonly retryable: boolean;
  readonly status?: number;
}

function field(err: unknown, key: string): unknown {
  return typeof err === 'object' && err !== null && key in err
    ? (err as Record<string, unknown>)[key]
    : undefined;
}

export function isAbortError(err: unknown): boolean {
  const name = field(err, 'name');
  return name === 'AbortError' || field(err, 'code') === 'ABORT_ERR';
}

export function classifyError(err: unknown): ClassifiedError {
  const message = err instanceof Error ? err.message : String(err);
  const rawStatus = field(err, 'status');
  const status = typeof rawStatus === 'number' ? rawStatus : undefined;
  const rawCode = field(err, 'code');
  const flag = field(err, 'retryable');
  let retryable: boolean;
  if (typeof flag === 'boolean') retryable = flag;
  else if (isAbortError(err)) retryable = true;
  else if (status !== undefined)
    retryable = status === 408 || status === 409 || status === 429 || status >= 500;
  // No status and no verdict: a network failure or timeout, which the next pass may well get past.
  else retryable = true;
  const code =
    typeof rawCode === 'string' && rawCode.length > 0
      ? rawCode
      : status !== undefined
        ? `HTTP_${status}`
        : isAbortError(err)
          ? 'aborted'
          : 'UNKNOWN';
  return { code, message, retryable, ...(status !== undefined ? { status } : {}) };
}

/** Removes a secret from a message before it is logged or stored (defence in depth: ports should never echo it). */
export function scrub(message: string, secrets: readonly string[]): string {
  let out = message;
  for (const s of secrets) if (s.length >= 8) out = out.split(s).join('[redacted]');
  return out;
}
