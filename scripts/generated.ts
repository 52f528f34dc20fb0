/**
 * The write-or-check step of every generator (`npm run gen:rbac`, `gen:aws`, `docs:config`, `docs:metrics`): each
 * file derived from the code is rewritten, or with `--check` nothing is written and the run exits 1 naming every
 * stale file and the command that refreshes it.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Path from the repository root. */
export function repoFile(relative: string): string {
  return path.join(REPO, relative);
}

/** `outputs`: [path from the repository root, content]; `command`: what a user runs to refresh them. */
export function writeGenerated(outputs: ReadonlyArray<readonly [string, string]>, command: string): void {
  const check = process.argv.includes('--check');
  let stale = 0;
  for (const [relative, content] of outputs) {
    const file = repoFile(relative);
    let current = '';
    try {
      current = readFileSync(file, 'utf8');
    } catch {
      // missing: stale
    }
    if (current === content) continue;
    if (check) {
      console.error(`${relative} is out of date: run ${command}`);
      stale++;
    } else {
      mkdirSync(path.dirname(file), { recursive: true });
      writeFileSync(file, content);
      console.log(`wrote ${relative}`);
    }
  }
  if (check && stale === 0) console.log(`${outputs.map(([relative]) => relative).join(', ')}: up to date`);
  process.exitCode = stale > 0 ? 1 : 0;
}
