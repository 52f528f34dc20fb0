import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

const cli = (...args: string[]) =>
  spawnSync(process.execPath, ['dist/cli/main.js', ...args], { encoding: 'utf8', timeout: 20_000 });

describe('runner-fleet CLI entry', () => {
  it('lists every command with --help', () => {
    const result = cli('--help');
    expect(result.status).toBe(0);
    for (const name of [
      'start',
      'validate',
      'demo',
      'simulate',
      'emulate-runner',
      'status',
      'doctor',
      'rbac',
      'aws-policy',
    ]) {
      expect(result.stdout).toContain(`  ${name}`);
    }
  });

  it('rejects an unknown command with exit 2 and names it', () => {
    const result = cli('frobnicate');
    expect(result.status).toBe(2);
    expect(result.stderr).toContain("unknown command 'frobnicate'");
  });
});
