/**
 * package.json's `engines.node` is true for every locked dependency: on the oldest Node of each release line it
 * admits, no package of package-lock.json asks for more (what `npm ci` reports as EBADENGINE).
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const read = (file: string) =>
  JSON.parse(readFileSync(fileURLToPath(new URL(file, import.meta.url)), 'utf8'));
const pkg = read('../../package.json') as { engines: { node: string } };
const lock = read('../../package-lock.json') as {
  packages: Record<string, { version?: string; engines?: unknown; optional?: boolean }>;
};

type Version = readonly [number, number, number];

const cmp = (a: Version, b: Version) => a[0] - b[0] || a[1] - b[1] || a[2] - b[2];

/**
 * Whether `version` satisfies an npm range as package.json `engines` write them: `||` alternatives of
 * space-separated comparators (`>=`, `>`, `<=`, `<`, `=`, `^`, `~`, bare versions) with x-ranges (`20.x`, `10.*`,
 * `^12`), and `*`. Throws on anything else, so a new form fails loudly instead of passing.
 */
function satisfies(version: string, range: string): boolean {
  const v = version.replace(/^v/, '').split('.').map(Number) as unknown as Version;
  return range.split('||').some((alternative) => {
    const parts = alternative
      .trim()
      .replace(/([<>=^~]+)\s+/g, '$1')
      .split(/\s+/)
      .filter(Boolean);
    return parts.every((part) => {
      const m = /^(>=|<=|>|<|=|\^|~)?v?(\d+|[x*])(?:\.(\d+|[x*]))?(?:\.(\d+|[x*]))?$/.exec(part);
      if (part === '*') return true;
      if (!m) throw new Error(`unsupported engines range ${JSON.stringify(range)}`);
      const op = m[1] ?? '';
      const nums = [m[2], m[3], m[4]].map((n) =>
        n === undefined || n === 'x' || n === '*' ? undefined : Number(n),
      );
      const given = nums.findIndex((n) => n === undefined);
      const precision = given === -1 ? 3 : given;
      const low = nums.map((n) => n ?? 0) as unknown as Version;
      // The first version past the range a partial or caret/tilde version stands for.
      const bump = (index: number): Version =>
        low.map((n, i) => (i < index ? n : i === index ? n + 1 : 0)) as unknown as Version;
      switch (op) {
        case '>=':
          return cmp(v, low) >= 0;
        case '>':
          return precision === 3 ? cmp(v, low) > 0 : cmp(v, bump(precision - 1)) >= 0;
        case '<':
          return cmp(v, low) < 0;
        case '<=':
          return precision === 3 ? cmp(v, low) <= 0 : cmp(v, bump(precision - 1)) < 0;
        case '^': {
          const first = low[0] !== 0 || precision === 1 ? 0 : low[1] !== 0 || precision === 2 ? 1 : 2;
          return cmp(v, low) >= 0 && cmp(v, bump(first)) < 0;
        }
        case '~':
          return cmp(v, low) >= 0 && cmp(v, bump(precision >= 2 ? 1 : 0)) < 0;
        default:
          return precision === 0 || (cmp(v, low) >= 0 && cmp(v, bump(precision - 1)) < 0);
      }
    });
  });
}

/** The oldest version of `major` that `range` admits, if any. */
function oldestIn(range: string, major: number): string | undefined {
  for (let minor = 0; minor <= 40; minor++)
    for (let patch = 0; patch <= 20; patch++) {
      const v = `${major}.${minor}.${patch}`;
      if (satisfies(v, range)) return v;
    }
  return undefined;
}

describe('engines.node', () => {
  it('reads ranges as npm does', () => {
    const cases: [string, string, boolean][] = [
      ['20.0.0', '>=22', false],
      ['22.0.0', '>=22', true],
      ['20.15.0', '>= 20.16.0', false],
      ['20.19.0', '^20.19.0 || >=22.12.0', true],
      ['22.11.0', '^20.19.0 || >=22.12.0', false],
      ['21.0.0', '^20.19.0 || >=22.12.0', false],
      ['27.0.0', '20.x || 22.x || 23.x || 24.x || 25.x || 26.x', false],
      ['24.3.0', '20.x || 22.x || 23.x || 24.x || 25.x || 26.x', true],
      ['13.8.0', '^10 || ^12 || ^13.7 || ^14 || >=15.0.1', true],
      ['11.0.0', '10.* || >= 12.*', false],
      ['20.0.0', '*', true],
    ];
    for (const [version, range, expected] of cases)
      expect([version, range, satisfies(version, range)]).toEqual([version, range, expected]);
  });

  const ours = pkg.engines.node;
  const lines = [20, 22, 24].map((major) => oldestIn(ours, major)).filter((v) => v !== undefined);

  it('admits the Node this runs on and the LTS lines the project claims', () => {
    expect(satisfies(process.version, ours)).toBe(true);
    expect(lines).toHaveLength(3);
  });

  it('is enough for every locked package on the oldest Node of each admitted line', () => {
    const unmet: string[] = [];
    for (const [where, entry] of Object.entries(lock.packages)) {
      if (!where || entry.optional) continue;
      const wanted = (entry.engines as { node?: unknown } | undefined)?.node;
      if (typeof wanted !== 'string') continue;
      for (const node of lines)
        if (!satisfies(node, wanted)) unmet.push(`${where}@${entry.version}: node ${wanted} (not ${node})`);
    }
    expect(unmet).toEqual([]);
  });
});
