/**
 * `npx runner-fleet` right after `npm ci` (package.json's prepare builds dist/), and a stale dist/ detected: the
 * built CLI, copied with its sources into a scratch checkout, warns once src/ no longer matches the build.
 */
import { spawnSync } from 'node:child_process';
import {
  appendFileSync,
  cpSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const repo = fileURLToPath(new URL('../../', import.meta.url));
let checkout = '';

function validate(env: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(
    process.execPath,
    [path.join(checkout, 'dist/cli/main.js'), 'validate', '--config', 'fleet.yaml'],
    {
      cwd: checkout,
      encoding: 'utf8',
      env: { ...process.env, ...env },
    },
  );
  return { code: r.status, stderr: r.stderr };
}

beforeAll(() => {
  checkout = mkdtempSync(path.join(tmpdir(), 'runner-fleet-build-stamp-'));
  for (const entry of [
    'src',
    'dist',
    'scripts/build.mjs',
    'tsconfig.json',
    'tsconfig.build.json',
    'package.json',
  ])
    cpSync(path.join(repo, entry), path.join(checkout, entry), { recursive: true });
  symlinkSync(path.join(repo, 'node_modules'), path.join(checkout, 'node_modules'));
  writeFileSync(
    path.join(checkout, 'fleet.yaml'),
    [
      'github: { url: https://github.com, auth: { token: t } }',
      'webhook: { secret: a-webhook-secret-long-enough-for-validate }',
      'scaleSets:',
      '  - { name: small, scope: { org: o }, labels: [linux], max: 1, provider: { kind: sim } }',
      '',
    ].join('\n'),
  );
});
afterAll(() => rmSync(checkout, { recursive: true, force: true }));

describe('the build', () => {
  it('is part of npm ci (prepare) and writes a stamp next to an executable bin', () => {
    const pkg = JSON.parse(readFileSync(path.join(repo, 'package.json'), 'utf8')) as {
      scripts: Record<string, string>;
      bin: Record<string, string>;
    };
    // The image's deps stage runs `npm ci --omit=dev` with package.json alone: no script to run there.
    expect(pkg.scripts.prepare).toBe('test ! -f scripts/build.mjs || node scripts/build.mjs --prepare');
    expect(pkg.scripts.build).toBe('node scripts/build.mjs');
    expect(pkg.bin['runner-fleet']).toBe('dist/cli/main.js');
    const stamp = JSON.parse(readFileSync(path.join(checkout, 'dist/build-stamp.json'), 'utf8')) as {
      sources: Record<string, string>;
    };
    expect(stamp.sources['src/cli/main.ts']).toMatch(/^[0-9a-f]{64}$/);
  });

  it('prepare has nothing to do where there is no src/ (npm ci --omit=dev in the image)', () => {
    const bare = mkdtempSync(path.join(tmpdir(), 'runner-fleet-prepare-'));
    try {
      cpSync(path.join(repo, 'scripts/build.mjs'), path.join(bare, 'scripts/build.mjs'));
      const r = spawnSync(process.execPath, ['scripts/build.mjs', '--prepare'], {
        cwd: bare,
        encoding: 'utf8',
      });
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).toContain('build: no src/ or no TypeScript here, nothing to build');
    } finally {
      rmSync(bare, { recursive: true, force: true });
    }
  });

  it('a current dist/ runs without a word; a changed source makes the CLI warn, naming the file and the fix', () => {
    const fresh = validate();
    expect(fresh.code, fresh.stderr).toBe(0);
    expect(fresh.stderr).not.toContain('runner-fleet: warning');

    // Touched but identical: still current (the hash decides, not the time).
    const file = path.join(checkout, 'src/lib/format.ts');
    writeFileSync(file, readFileSync(file));
    expect(validate().stderr).not.toContain('runner-fleet: warning');

    appendFileSync(file, '\nexport const changedAfterTheBuild = 1;\n');
    const stale = validate();
    expect(stale.code).toBe(0);
    expect(stale.stderr).toContain(
      'runner-fleet: warning: src/ changed since dist/ was built (src/lib/format.ts); run `npm run build`',
    );
    expect(validate({ RUNNER_FLEET_BUILD_CHECK: 'off' }).stderr).not.toContain('runner-fleet: warning');

    rmSync(path.join(checkout, 'src/lib/format.ts'));
    expect(validate().stderr).toContain('src/ changed since dist/ was built (src/lib/format.ts)');

    rmSync(path.join(checkout, 'dist/build-stamp.json'));
    expect(validate().stderr).toContain(
      'dist/build-stamp.json is missing: dist/ was not built by `npm run build`',
    );
  });
});
