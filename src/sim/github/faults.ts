/**
 * Fault injection (POST /_sim/faults). Faults hit the GitHub REST API, webhook deliveries and the Actions service's
 * runner scale set calls only, never the control API or the runner broker, so a test can always observe and steer the simulator it is breaking.
 */

export interface Faults {
  /** Probability [0,1] that a webhook delivery is never sent (recorded as dropped). */
  webhookDropRate: number;
  /** Probability that an event is delivered twice (the copy is a separate delivery with its own GUID). */
  webhookDuplicateRate: number;
  /** Delay before each delivery, ms. With webhookReorder, a random delay in [0, max(webhookDelayMs, 100)]. */
  webhookDelayMs: number;
  webhookReorder: boolean;
  /** Probability that a REST call fails before it takes effect. */
  apiErrorRate: number;
  /** Probability that a REST call takes effect but its response is replaced by an error (a lost response). */
  apiLostResponseRate: number;
  /** Status of injected REST errors: 500 (default), 502, 503, 429 or 403 (the last two as secondary limits). */
  apiErrorStatus: number;
  /** Added latency of every REST response, ms. */
  latencyMs: number;
  /** Probability that a runner scale set's message long poll is dropped (the connection is reset, no answer). */
  queueDropRate: number;
  /** Probability that a message queue call answers 401 (as when the queue token expired). */
  queueUnauthorizedRate: number;
  /** The next N session creations answer 409 RunnerScaleSetSessionConflictException (a stale session). */
  sessionConflicts: number;
}

export const NO_FAULTS: Readonly<Faults> = Object.freeze({
  webhookDropRate: 0,
  webhookDuplicateRate: 0,
  webhookDelayMs: 0,
  webhookReorder: false,
  apiErrorRate: 0,
  apiLostResponseRate: 0,
  apiErrorStatus: 500,
  latencyMs: 0,
  queueDropRate: 0,
  queueUnauthorizedRate: 0,
  sessionConflicts: 0,
});

/** Rate-limit part of a faults request: a number is the new hourly limit. */
export type RateLimitFault =
  number | { limit?: number; remaining?: number; secondaryPerMinute?: number; status?: 403 | 429 };

export type FaultsInput = Partial<Faults> & { rateLimit?: RateLimitFault };

const RATES = [
  'webhookDropRate',
  'webhookDuplicateRate',
  'apiErrorRate',
  'apiLostResponseRate',
  'queueDropRate',
  'queueUnauthorizedRate',
] as const;
const DURATIONS = ['webhookDelayMs', 'latencyMs'] as const;

/** Validates a faults request; returns an error message or the parsed change. */
export function parseFaults(body: unknown): { error: string } | { change: FaultsInput } {
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    return { error: 'body must be a JSON object' };
  const input = body as Record<string, unknown>;
  const change: FaultsInput = {};
  const known = new Set<string>([
    ...RATES,
    ...DURATIONS,
    'webhookReorder',
    'apiErrorStatus',
    'rateLimit',
    'sessionConflicts',
  ]);
  for (const key of Object.keys(input)) if (!known.has(key)) return { error: `unknown fault '${key}'` };
  for (const key of RATES) {
    const v = input[key];
    if (v === undefined) continue;
    if (typeof v !== 'number' || !(v >= 0 && v <= 1))
      return { error: `${key} must be a number between 0 and 1` };
    change[key] = v;
  }
  for (const key of DURATIONS) {
    const v = input[key];
    if (v === undefined) continue;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > 600_000)
      return { error: `${key} must be a number of ms (0..600000)` };
    change[key] = v;
  }
  if (input.sessionConflicts !== undefined) {
    const n = input.sessionConflicts;
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > 1_000)
      return { error: 'sessionConflicts must be an integer (0..1000)' };
    change.sessionConflicts = n;
  }
  if (input.webhookReorder !== undefined) {
    if (typeof input.webhookReorder !== 'boolean') return { error: 'webhookReorder must be a boolean' };
    change.webhookReorder = input.webhookReorder;
  }
  if (input.apiErrorStatus !== undefined) {
    const s = input.apiErrorStatus;
    if (typeof s !== 'number' || !Number.isInteger(s) || s < 400 || s > 599)
      return { error: 'apiErrorStatus must be an HTTP error status (400..599)' };
    change.apiErrorStatus = s;
  }
  if (input.rateLimit !== undefined) {
    const r = input.rateLimit;
    if (typeof r === 'number') {
      if (!Number.isInteger(r) || r < 0) return { error: 'rateLimit must be a non-negative integer' };
      change.rateLimit = r;
    } else if (typeof r === 'object' && r !== null && !Array.isArray(r)) {
      const o = r as Record<string, unknown>;
      for (const key of Object.keys(o)) {
        if (!['limit', 'remaining', 'secondaryPerMinute', 'status'].includes(key))
          return { error: `unknown rateLimit field '${key}'` };
      }
      for (const key of ['limit', 'remaining', 'secondaryPerMinute'] as const) {
        const v = o[key];
        if (v !== undefined && (typeof v !== 'number' || !Number.isInteger(v) || v < 0))
          return { error: `rateLimit.${key} must be a non-negative integer` };
      }
      if (o.status !== undefined && o.status !== 403 && o.status !== 429)
        return { error: 'rateLimit.status must be 403 or 429' };
      change.rateLimit = o as Exclude<RateLimitFault, number>;
    } else {
      return { error: 'rateLimit must be a number or an object' };
    }
  }
  return { change };
}
