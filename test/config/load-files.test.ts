import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { formatProblem, loadConfig } from '../../src/config/index.js';

const dir = mkdtempSync(join(tmpdir(), 'rf-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const fleet = [
  'github: { auth: { token: "${file:secrets/token}" } }',
  'webhook: { secret: "${env:HOOK}" }',
  'scaleSets:',
  '  - { name: a, scope: { org: o }, labels: [x], max: 1, provider: { kind: process, command: run.sh } }',
  '',
].join('\n');

describe('loadConfig on real files', () => {
  it('reads the file and resolves ${file:} relative to its directory', () => {
    mkdirSync(join(dir, 'secrets'));
    writeFileSync(join(dir, 'secrets', 'token'), 'ghp_fromfile\n');
    writeFileSync(join(dir, 'fleet.yaml'), fleet);
    const result = loadConfig(join(dir, 'fleet.yaml'), { env: { HOOK: 'h00k' } });
    if (!result.ok) throw new Error(result.problems.map(formatProblem).join('\n'));
    expect(result.config.github.auth).toEqual({ token: 'ghp_fromfile' });
    expect(result.config.webhook.secret).toBe('h00k');
  });

  it('reports a missing file as one problem without a position', () => {
    const path = join(dir, 'missing.yaml');
    const result = loadConfig(path, { env: {} });
    expect(result).toEqual({
      ok: false,
      problems: [
        { file: path, line: 0, col: 0, path: '', message: 'cannot read the config file: no such file' },
      ],
    });
  });

  it('reports an unreadable secret file at its field', () => {
    const other = join(dir, 'other');
    mkdirSync(other);
    writeFileSync(join(other, 'fleet.yaml'), fleet);
    const result = loadConfig(join(other, 'fleet.yaml'), { env: { HOOK: 'h00k' } });
    expect(result.ok ? [] : result.problems.map(formatProblem)).toEqual([
      `${join(other, 'fleet.yaml')}:1:26 github.auth.token: cannot read file secrets/token: no such file`,
    ]);
  });
});
