/** Condition waits with a deadline, for suites that watch a whole fleet settle. */

/** Polls `check` until it returns true; fails with `what` (and the last `describe()`) at the deadline. */
export type Until = (
  check: () => boolean | Promise<boolean>,
  timeoutMs: number,
  what: string,
  describe?: () => unknown,
) => Promise<void>;

/** An `until` that checks every `pollMs`: a suite whose checks are API calls polls less often. */
export function untilEvery(pollMs: number): Until {
  return async (check, timeoutMs, what, describe) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (await check()) return;
      if (Date.now() > deadline) {
        const detail = describe === undefined ? '' : `; last seen: ${JSON.stringify(describe())}`;
        throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${detail}`);
      }
      await new Promise((r) => setTimeout(r, pollMs));
    }
  };
}
