/**
 * One way for a suite to say it cannot run here: `reportSkip` prints a loud notice, records the suite, the reason and
 * the command that fixes it for the closing summary (test/support/skip-reporter.ts), and under CI=true throws
 * instead, so a missing peer in CI is a failure, never a skip.
 */
import { appendFileSync } from 'node:fs';

/** The file the reporter collects skips from; set by the reporter in the main process, inherited by workers. */
export const SKIP_LOG_ENV = 'RUNNER_FLEET_SKIP_LOG';

export interface SkipRecord {
  readonly suite: string;
  readonly reason: string;
  /** The command that makes the suite run, e.g. `scripts/install-peers.sh`. */
  readonly fix?: string;
  /** The test file that skipped, relative to the repository when known. */
  readonly file?: string;
}

/** The test file on the call stack (a suite reports its skip while its file is collected). */
function callingTestFile(): string | undefined {
  const stack = new Error().stack ?? '';
  const m = /(?:file:\/\/)?(\/[^\s():]+\.test\.ts)/.exec(stack);
  return m?.[1];
}

/** Returns false, for `describe.skipIf(!requireX(...))`; throws under CI=true. */
export function reportSkip(suite: string, reason: string, fix?: string): false {
  const message = `[${suite}] SKIPPED: ${reason}${fix ? `; run ${fix}` : ''}`;
  if (process.env.CI === 'true')
    throw new Error(`${message}\nUnder CI=true a missing test peer is a failure.`);
  const bar = '!'.repeat(Math.min(message.length, 100));
  console.warn(`\n${bar}\n${message}\n${bar}\n`);
  const log = process.env[SKIP_LOG_ENV];
  if (log) {
    const file = callingTestFile();
    const record: SkipRecord = { suite, reason, ...(fix ? { fix } : {}), ...(file ? { file } : {}) };
    appendFileSync(log, `${JSON.stringify(record)}\n`);
  }
  return false;
}
