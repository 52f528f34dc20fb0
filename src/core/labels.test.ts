import { describe, expect, it } from 'vitest';
import { LabelRouter, normalizeLabels } from './labels.js';

const ORG = { org: 'octo-org' };
/** A job of octo-org/app with these labels. */
const job = (labels: readonly string[], owner = 'octo-org', repo = 'app') => ({ labels, owner, repo });

const sets = [
  { name: 'linux-small', labels: ['linux', 'x64', 'small'], priority: 0, scope: ORG },
  { name: 'linux-large', labels: ['Linux', 'X64', 'large', 'gpu'], priority: 0, scope: ORG },
  { name: 'linux-any', labels: ['linux', 'x64'], priority: 0, scope: ORG },
  { name: 'arm', labels: ['linux', 'arm64'], priority: 5, scope: ORG },
  { name: 'arm-b', labels: ['linux', 'arm64'], priority: 5, scope: ORG },
];

describe('label routing', () => {
  const router = new LabelRouter(sets);

  it('matches case-insensitively, with the implicit self-hosted label', () => {
    expect(router.route(job(['SELF-HOSTED', 'LINUX', 'large']))).toBe('linux-large');
    expect(router.route(job(['self-hosted']))).toBe('arm'); // every set covers it: priority 5 wins, then name
  });

  it('prefers the highest priority, then the fewest extra labels, then the name', () => {
    expect(router.route(job(['linux']))).toBe('arm'); // priority 5 over 0
    expect(router.route(job(['linux', 'x64']))).toBe('linux-any'); // 0 extras beats small (1) and large (2)
    expect(router.route(job(['linux', 'arm64']))).toBe('arm'); // same priority and size: name
    expect(router.matches(job(['linux', 'x64']))).toEqual(['linux-any', 'linux-small', 'linux-large']);
  });

  it('returns null when no scale set covers every label (unroutable)', () => {
    expect(router.route(job(['ubuntu-latest']))).toBeNull();
    expect(router.route(job(['linux', 'x64', 'small', 'gpu']))).toBeNull();
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
    for (const labels of inputs) expect(small.route(job(labels))).toBe(fresh.route(job(labels)));
  });

  it('normalizes: trims, lower-cases, de-duplicates, sorts', () => {
    expect(normalizeLabels([' B', 'a', 'b', ''])).toEqual(['a', 'b']);
  });

  it('routes only within the scope GitHub enforces: organization, repository, enterprise', () => {
    const scoped = new LabelRouter([
      { name: 'octo', labels: ['linux'], priority: 0, scope: { org: 'Octo-Org' } },
      { name: 'octo-app', labels: ['linux'], priority: 9, scope: { repo: 'octo-org/App' } },
      { name: 'ent', labels: ['gpu'], priority: 0, scope: { enterprise: 'acme' } },
    ]);
    expect(scoped.route(job(['linux'], 'octo-org', 'app'))).toBe('octo-app');
    expect(scoped.route(job(['linux'], 'OCTO-ORG', 'other'))).toBe('octo');
    // Same labels in another organization: GitHub would never give it an octo-org runner.
    expect(scoped.route(job(['linux'], 'other-org', 'app'))).toBeNull();
    expect(scoped.matches(job(['linux'], 'other-org', 'app'))).toEqual([]);
    expect(scoped.route(job(['gpu'], 'any-org', 'x'))).toBe('ent');
  });

  it("caches per repository, so one organization's answer is never served to another", () => {
    const scoped = new LabelRouter([{ name: 'octo', labels: ['linux'], priority: 0, scope: ORG }]);
    expect(scoped.route(job(['linux'], 'octo-org'))).toBe('octo');
    expect(scoped.route(job(['linux'], 'other-org'))).toBeNull();
    expect(scoped.route(job(['linux'], 'octo-org'))).toBe('octo');
  });
});
