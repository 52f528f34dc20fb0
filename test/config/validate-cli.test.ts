/** `runner-fleet validate` as a user runs it: the built CLI in a child process (run `npm run build` first). */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const dir = mkdtempSync(join(tmpdir(), 'rf-validate-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function validate(args: string[], env: Record<string, string> = {}) {
  const result = spawnSync(process.execPath, ['dist/cli/main.js', 'validate', ...args], {
    encoding: 'utf8',
    timeout: 20_000,
    env: { PATH: process.env.PATH ?? '', ...env },
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

describe('runner-fleet validate', () => {
  it('accepts the example and counts its scale sets', () => {
    const result = validate(['--config', 'examples/fleet.yaml'], {
      GITHUB_TOKEN: 'ghp_x',
      WEBHOOK_SECRET: 'a-webhook-secret-of-sane-length',
    });
    expect(result).toEqual({ status: 0, stdout: 'ok: 3 scale sets\n', stderr: '' });
  });

  it('prints every problem as FILE:LINE:COL path: message and exits 2', () => {
    const path = file(
      'bad.yaml',
      [
        'github: { auth: { token: "${env:TOKEN}" } }',
        'webhook: { secret: "${env:HOOK}" }',
        'scaleSets:',
        '  - name: a',
        '    scope: { org: o }',
        '    labels: [x]',
        '    max: 1',
        '    minIdle: 2',
        '    provider: { kind: process, command: run.sh }',
        '  - name: a',
        '    scope: { org: o }',
        '    labels: [y]',
        '    max: 1',
        '    provider: { kind: process, command: run.sh }',
        '',
      ].join('\n'),
    );
    const secret = 'ghp_do_not_print_me';
    const result = validate([`--config=${path}`], { TOKEN: secret });
    expect(result.status).toBe(2);
    expect(result.stdout.split('\n').filter(Boolean)).toEqual([
      `${path}:2:20 webhook.secret: environment variable HOOK is not set`,
      `${path}:8:14 scaleSets[0].minIdle: must not exceed max (1)`,
      `${path}:10:11 scaleSets[1].name: duplicate scale set name (also scaleSets[0])`,
    ]);
    expect(result.stderr).toBe(`${path}: 3 problems\n`);
    expect(result.stdout + result.stderr).not.toContain(secret);
  });

  it('uses the file name exactly as given', () => {
    const result = validate(['-c', 'examples/../examples/fleet.yaml'], { GITHUB_TOKEN: 'ghp_x' });
    expect(result.status).toBe(2);
    expect(result.stdout).toMatch(/^examples\/\.\.\/examples\/fleet\.yaml:\d+:\d+ webhook\.secret: /);
  });

  it('exits 2 with a clear message when the file does not exist', () => {
    const result = validate(['--config', join(dir, 'nope.yaml')]);
    expect(result.status).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toBe(
      `runner-fleet validate: ${join(dir, 'nope.yaml')}: cannot read the config file: no such file\n`,
    );
  });

  it('is a usage error without --config or with an unknown argument', () => {
    const missing = validate([]);
    expect(missing.status).toBe(2);
    expect(missing.stderr).toContain('runner-fleet validate: --config <fleet.yaml> is required');
    expect(missing.stderr).toContain('Usage: runner-fleet validate --config <fleet.yaml>');
    const unknown = validate(['--config', 'x.yaml', '--strict']);
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toContain("unexpected argument '--strict'");
    const empty = validate(['--config']);
    expect(empty.status).toBe(2);
    expect(empty.stderr).toContain('--config needs a file name');
  });

  it('prints its usage with --help', () => {
    const result = validate(['--help']);
    expect(result.status).toBe(0);
    expect(result.stdout).toContain('Usage: runner-fleet validate --config <fleet.yaml>');
    expect(result.stdout).toContain('Exit status');
  });
});
