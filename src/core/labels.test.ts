import { describe, expect, it } from 'vitest';
import { LabelRouter, normalizeLabels } from './labels.js';

const sets = [
  { name: 'linux-small', labels: ['linux', 'x64', 'small'], priority: 0 },
  { name: 'linux-large', labels: ['Linux', 'X64', 'large', 'gpu'], priority: 0 },
  { name: 'linux-any', labels: ['linux', 'x64'], priority: 0 },
  { name: 'arm', labels: ['linux', 'arm64'], priority: 5 },
  { name: 'arm-b', labels: ['linux', 'arm64'], priority: 5 },
];

describe('label routing', () => {
  const router = new LabelRouter(sets);

  it('matches case-insensitively, with the implicit self-hosted label', () => {
    expect(router.route(['SELF-HOSTED', 'LINUX', 'large'])).toBe('linux-large');
    expect(router.route(['self-hosted'])).toBe('arm'); // every set covers it: priority 5 wins, then name
  });

  it('prefers the highest priority, then the fewest extra labels, then the name', () => {
    expect(router.route(['linux'])).toBe('arm'); // priority 5 over 0
    expect(router.route(['linux', 'x64'])).toBe('linux-any'); // 0 extras beats small (1) and large (2)
    expect(router.route(['linux', 'arm64'])).toBe('arm'); // same priority and size: name
    expect(router.matches(['linux', 'x64'])).toEqual(['linux-any', 'linux-small', 'linux-large']);
  });

  it('returns null when no scale set covers every label (unroutable)', () => {
    expect(router.route(['ubuntu-latest'])).toBeNull();
    expect(router.route(['linux', 'x64', 'small', 'gpu'])).toBeNull();
  });

  it('caches by the normalized label set and stays correct when the cache is cleared', () => {
    const small = new LabelRouter(sets, 2);
    const inputs = [
      ['linux', 'x64'],
      ['X64', 'LINUX', ' linux '],
      ['linux', 'large', 'x64'],
      ['gpu'],
      ['linux', 'x64'],
    ];
    const fresh = new LabelRouter(sets);
    for (const labels of inputs) expect(small.route(labels)).toBe(fresh.route(labels));
  });

  it('normalizes: trims, lower-cases, de-duplicates, sorts', () => {
    expect(normalizeLabels([' B', 'a', 'b', ''])).toEqual(['a', 'b']);
  });
});
