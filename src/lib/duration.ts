/**
 * Durations in fleet.yaml: a string with a unit (`500ms`, `30s`, `10m`, `1h`, or combined `1h30m`) or a bare
 * number of milliseconds. Parsed once, at load, to milliseconds.
 */
import { z } from 'zod';

const UNIT_MS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
const PART = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/gy;

export const DURATION_SYNTAX =
  'a number of milliseconds, or a string of one or more `<number><unit>` parts with unit `ms`, `s`, `m`, `h` or `d` ' +
  '(`500ms`, `30s`, `10m`, `1h`, `1h30m`, `1.5s`)';

/** Milliseconds for a duration string or number; undefined when it is not a valid duration. */
export function parseDuration(input: string | number): number | undefined {
  if (typeof input === 'number') return Number.isFinite(input) && input >= 0 ? Math.round(input) : undefined;
  const text = input.trim();
  if (/^\d+$/.test(text)) return Number.isFinite(Number(text)) ? Number(text) : undefined;
  if (text === '') return undefined;
  PART.lastIndex = 0;
  let total = 0;
  let end = 0;
  for (let match = PART.exec(text); match !== null; match = PART.exec(text)) {
    total += Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS];
    end = PART.lastIndex;
  }
  return end === text.length && Number.isFinite(total) ? Math.round(total) : undefined;
}

/** Shortest readable form, used by docs and messages: 120000 -> `2m`, 1500 -> `1500ms`. */
export function formatDuration(ms: number): string {
  for (const unit of ['d', 'h', 'm', 's'] as const) {
    if (ms !== 0 && ms % UNIT_MS[unit] === 0) return `${ms / UNIT_MS[unit]}${unit}`;
  }
  return `${ms}ms`;
}

/**
 * The longest delay a Node.js timer holds (2^31 - 1 ms, about 24.8 days): a longer one fires after 1 ms, which
 * turns a long interval into a busy loop. No duration may exceed it.
 */
export const TIMER_MAX_MS = 2 ** 31 - 1;
/** Default upper bound of a duration: 24 days, under TIMER_MAX_MS. */
export const DEFAULT_MAX_DURATION_MS = 24 * 86_400_000;

export interface DurationOptions {
  /** Smallest accepted value in ms (inclusive). Default 0. */
  readonly min?: number;
  /** Largest accepted value in ms (inclusive). Default 24 days; never above TIMER_MAX_MS. */
  readonly max?: number;
}

/** zod schema: duration string or ms number -> ms. Tagged `docType: duration` for the generated reference. */
export function duration(options: DurationOptions = {}) {
  const min = options.min ?? 0;
  const max = Math.min(options.max ?? DEFAULT_MAX_DURATION_MS, TIMER_MAX_MS);
  return z
    .union([z.string(), z.number()], { error: `expected a duration, e.g. 500ms, 30s, 10m or 1h` })
    .transform((value, ctx) => {
      const ms = parseDuration(value);
      if (ms === undefined) {
        ctx.addIssue({
          code: 'custom',
          message: `invalid duration; use e.g. 500ms, 30s, 10m, 1h or a number of ms`,
        });
        return z.NEVER;
      }
      if (ms < min) {
        ctx.addIssue({ code: 'custom', message: `must be at least ${formatDuration(min)}` });
        return z.NEVER;
      }
      if (ms > max) {
        ctx.addIssue({ code: 'custom', message: `must be at most ${formatDuration(max)} (${max} ms)` });
        return z.NEVER;
      }
      return ms;
    })
    .meta({ docType: 'duration', docMax: formatDuration(max) });
}
