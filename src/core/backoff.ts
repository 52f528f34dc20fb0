/**
 * Failure backoff of a scale set (invariant 6, docs/core.md). A runner that fails before taking a job is replaced, but
 * not before `until`. Failures that land while a backoff window is already open do not escalate it: a burst of
 * creates failing together (a provider outage) counts as one step, not as thirty-two.
 */
export interface BackoffState {
  /** Consecutive failure steps since the last runner came online. */
  readonly failures: number;
  /** ms epoch before which no runner is created in the scale set; 0 when not backing off. */
  readonly until: number;
}

export const NO_BACKOFF: BackoffState = { failures: 0, until: 0 };

/** Upper bound of one backoff step, whatever the base. */
export const MAX_BACKOFF_MS = 5 * 60_000;

export function backoffDelay(failures: number, baseMs: number): number {
  if (failures <= 0) return 0;
  const cap = Math.max(MAX_BACKOFF_MS, baseMs);
  // 2^(n-1) overflows nothing here: the exponent is capped long before doubles lose precision.
  return Math.min(cap, baseMs * 2 ** Math.min(failures - 1, 30));
}

export function afterFailure(state: BackoffState, now: number, baseMs: number): BackoffState {
  if (now < state.until) return state;
  const failures = state.failures + 1;
  return { failures, until: now + backoffDelay(failures, baseMs) };
}
