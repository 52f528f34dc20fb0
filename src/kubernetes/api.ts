/**
 * Small helpers around @kubernetes/client-node's generated API: per-request abort signals and reading the
 * Kubernetes Status out of an error without ever echoing a request body (which may hold a secret).
 */
import type { ConfigurationOptions, RequestContext, ResponseContext } from '@kubernetes/client-node';
import { ApiException, Observable } from '@kubernetes/client-node';

/** Options that make one API call abortable through `signal`. */
export function withSignal(signal: AbortSignal | undefined): ConfigurationOptions | undefined {
  if (signal === undefined) return undefined;
  return {
    middleware: [
      {
        pre: (context: RequestContext) => {
          context.setSignal(signal);
          return new Observable(Promise.resolve(context));
        },
        post: (context: ResponseContext) => new Observable(Promise.resolve(context)),
      },
    ],
    middlewareMergeStrategy: 'append',
  };
}

export interface KubeStatus {
  readonly code?: number;
  readonly reason?: string;
  readonly message?: string;
  readonly details?: { readonly name?: string; readonly kind?: string; readonly group?: string };
}

/** HTTP status of a failed call (ApiException from requests, statusCode from watches), or undefined. */
export function statusCodeOf(error: unknown): number | undefined {
  if (error instanceof ApiException) return error.code;
  if (typeof error === 'object' && error !== null) {
    const e = error as { statusCode?: unknown; code?: unknown };
    if (typeof e.statusCode === 'number') return e.statusCode;
    if (typeof e.code === 'number') return e.code;
  }
  return undefined;
}

/** The Kubernetes Status object an API error carries, when there is one. */
export function kubeStatusOf(error: unknown): KubeStatus | undefined {
  if (!(error instanceof ApiException)) return undefined;
  const body: unknown = error.body;
  let parsed: unknown = body;
  if (typeof body === 'string') {
    try {
      parsed = JSON.parse(body);
    } catch {
      return undefined;
    }
  }
  if (typeof parsed === 'object' && parsed !== null && (parsed as { kind?: unknown }).kind === 'Status') {
    return parsed as KubeStatus;
  }
  return undefined;
}

export const isNotFound = (error: unknown): boolean => statusCodeOf(error) === 404;
export const isConflict = (error: unknown): boolean => statusCodeOf(error) === 409;
export const isGone = (error: unknown): boolean => statusCodeOf(error) === 410;
export const isForbidden = (error: unknown): boolean => statusCodeOf(error) === 403;

/** 429, 5xx, 409 conflicts and network failures are worth retrying; other 4xx are not. */
export function isRetryable(error: unknown): boolean {
  const code = statusCodeOf(error);
  if (code === undefined) return true;
  return code === 409 || code === 429 || code >= 500;
}

/**
 * One line that describes a failed call: `HTTP 403 Forbidden: pods is forbidden: User ...`. Only the server's
 * Status message is used, never the request, so a Secret's data cannot end up in a log or an error message.
 */
export function describeApiError(error: unknown): string {
  const code = statusCodeOf(error);
  const status = kubeStatusOf(error);
  if (code !== undefined) {
    const detail = status?.message ?? status?.reason ?? '';
    return `HTTP ${code}${status?.reason ? ` ${status.reason}` : ''}${detail ? `: ${detail}` : ''}`;
  }
  if (error instanceof Error) return error.message;
  return String(error);
}

/** An Error safe to attach as `cause`: code and server message only, no headers or bodies. */
export function sanitizedCause(error: unknown): Error {
  const e = new Error(describeApiError(error));
  const code = statusCodeOf(error);
  if (code !== undefined) (e as Error & { statusCode?: number }).statusCode = code;
  return e;
}
