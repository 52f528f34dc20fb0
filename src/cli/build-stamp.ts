/**
 * Whether dist/ was built from the sources next to it. `npm run build` (scripts/build.ts) writes dist/build-stamp.json
 * with a hash of what tsc compiled; the CLI compares it with the sources when it runs from a checkout (src/ beside
 * dist/) and warns on stderr when they differ, e.g. after a `git pull` without a build. An installed package has no
 * src/ and is never checked.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const STAMP_FILE = 'build-stamp.json';

interface Stamp {
  /** sha256 of each compiled source, by path relative to the repository. */
  readonly sources: Record<string, string>;
  readonly builtAt: number;
}

/** The files tsconfig.build.json compiles: src/**.ts without tests and test helpers, plus the two tsconfigs. */
function sources(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (
        entry.name.endsWith('.ts') &&
        !entry.name.endsWith('.test.ts') &&
        !entry.name.endsWith('.test-helpers.ts')
      )
        out.push(full);
    }
  };
  walk(path.join(root, 'src'));
  for (const file of ['tsconfig.json', 'tsconfig.build.json']) {
    const full = path.join(root, file);
    if (existsSync(full)) out.push(full);
  }
  return out.sort();
}

function hashes(root: string, files: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const file of files)
    out[path.relative(root, file)] = createHash('sha256').update(readFileSync(file)).digest('hex');
  return out;
}

/** Writes dist/build-stamp.json for the sources of `root` (the repository). */
export function writeBuildStamp(root: string, dist = path.join(root, 'dist')): { files: number } {
  const files = sources(root);
  const stamp: Stamp = { builtAt: Date.now(), sources: hashes(root, files) };
  writeFileSync(path.join(dist, STAMP_FILE), `${JSON.stringify(stamp, null, 1)}\n`);
  return { files: files.length };
}

/**
 * Why dist/ does not match the sources of `root`, or undefined when it does (or when there is nothing to compare:
 * no src/, as in an installed package). Cheap when fresh: only stats the sources unless one is newer than the stamp
 * or the set of files changed.
 */
export function staleBuild(root: string, dist = path.join(root, 'dist')): string | undefined {
  if (!existsSync(path.join(root, 'src'))) return undefined;
  let stamp: Stamp;
  try {
    stamp = JSON.parse(readFileSync(path.join(dist, STAMP_FILE), 'utf8')) as Stamp;
    if (typeof stamp.sources !== 'object' || stamp.sources === null) throw new Error('no sources');
  } catch {
    return `${path.join(dist, STAMP_FILE)} is missing: dist/ was not built by \`npm run build\``;
  }
  const files = sources(root);
  const built = Object.keys(stamp.sources);
  if (files.length === built.length && files.every((f) => statSync(f).mtimeMs <= stamp.builtAt))
    return undefined;
  const now = hashes(root, files);
  const changed = [
    ...Object.keys(now).filter((f) => stamp.sources[f] !== now[f]),
    ...built.filter((f) => !(f in now)),
  ].sort();
  if (changed.length === 0) return undefined;
  const listed =
    changed.slice(0, 3).join(', ') + (changed.length > 3 ? `, and ${changed.length - 3} more` : '');
  return `src/ changed since dist/ was built (${listed})`;
}

/** The repository root when this module runs from <root>/dist/cli or <root>/src/cli. */
export function checkoutRoot(): string {
  return path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
}
