/**
 * `npm run build` (and `prepare`, which `npm ci` runs): compiles src/ into dist/ with tsc, saying what it does and
 * how long it took, then stamps dist/ with a hash of the sources, so the CLI can tell when dist/ is stale
 * (src/cli/build-stamp.ts). Plain JavaScript: `prepare` also runs where dev dependencies (tsx) are absent.
 *
 *   node scripts/build.mjs            compile and stamp
 *   node scripts/build.mjs --prepare  the same, but nothing to do where there is nothing to build (no src/ or no
 *                                     TypeScript, as in `npm ci --omit=dev`)
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');

async function main() {
  if (process.argv.includes('--prepare') && (!existsSync(path.join(root, 'src')) || !existsSync(tsc))) {
    console.log('build: no src/ or no TypeScript here, nothing to build');
    return 0;
  }
  const started = Date.now();
  console.log('build: compiling src/ into dist/ with tsc (10-30 s on 2 cores) ...');
  const result = spawnSync(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.build.json')], {
    cwd: root,
    stdio: 'inherit',
  });
  if (result.status !== 0) {
    console.error(`build: tsc failed (exit ${result.status ?? result.signal}); dist/ is not current`);
    return 1;
  }
  // Written by the code that checks it, from the fresh build.
  const { writeBuildStamp } = await import(
    pathToFileURL(path.join(root, 'dist', 'cli', 'build-stamp.js')).href
  );
  const stamp = writeBuildStamp(root);
  // The package's bin: executable, so `npx runner-fleet` works right after `npm ci`.
  chmodSync(path.join(root, 'dist', 'cli', 'main.js'), 0o755);
  console.log(
    `build: dist/ is current (${stamp.files} files, ${((Date.now() - started) / 1000).toFixed(1)} s)`,
  );
  return 0;
}

process.exitCode = await main();
