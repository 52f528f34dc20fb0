import { describe, expect, it } from 'vitest';
import { duration, formatDuration, parseDuration } from './duration.js';

describe('parseDuration', () => {
  it.each([
    ['500ms', 500],
    ['30s', 30_000],
    ['10m', 600_000],
    ['1h', 3_600_000],
    ['1d', 86_400_000],
    ['1h30m', 5_400_000],
    ['1.5s', 1_500],
    ['250', 250],
    [' 2m ', 120_000],
    [0, 0],
    [1234, 1234],
  ] as const)('%s -> %i ms', (input, ms) => {
    expect(parseDuration(input)).toBe(ms);
  });

  it.each(['', 'ten', '10 minutes', '5x', 'm5', '-5s', '1h 30m', '30S'])('rejects %j', (input) => {
    expect(parseDuration(input)).toBeUndefined();
  });

  it.each([-1, Number.NaN, Number.POSITIVE_INFINITY])('rejects the number %d', (input) => {
    expect(parseDuration(input)).toBeUndefined();
  });
});

describe('formatDuration', () => {
  it.each([
    [120_000, '2m'],
    [1_500, '1500ms'],
    [30_000, '30s'],
    [0, '0ms'],
    [3_600_000, '1h'],
  ])('%i -> %s', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });
});

describe('duration schema', () => {
  it('parses strings and numbers to ms', () => {
    expect(duration().parse('10m')).toBe(600_000);
    expect(duration().parse(42)).toBe(42);
  });

  it('enforces the minimum with a readable message', () => {
    const result = duration({ min: 1_000 }).safeParse('500ms');
    expect(result.success).toBe(false);
    expect(result.error?.issues[0]?.message).toBe('must be at least 1s');
  });

  it('rejects other types and bad strings', () => {
    expect(duration().safeParse(true).error?.issues[0]?.message).toBe(
      'expected a duration, e.g. 500ms, 30s, 10m or 1h',
    );
    expect(duration().safeParse('soon').error?.issues[0]?.message).toBe(
      'invalid duration; use e.g. 500ms, 30s, 10m, 1h or a number of ms',
    );
  });
});
