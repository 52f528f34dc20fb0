import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { reportSkip } from '../../../test/support/skips.js';
import { compactStartScript } from '../user-data.js';
import { readScript, scriptVersion } from './embed-script.js';
import { START_SCRIPT, START_SCRIPT_VERSION } from './script.generated.js';

const hasShellcheck = spawnSync('shellcheck', ['--version']).status === 0;

function bashSyntax(text: string): { status: number | null; stderr: string } {
  const result = spawnSync('bash', ['-n'], { input: text, encoding: 'utf8' });
  return { status: result.status, stderr: result.stderr };
}

describe('embedded start script', () => {
  it('matches runner-start.sh (run `npx tsx src/aws/start-script/embed-script.ts` after editing)', () => {
    expect(START_SCRIPT).toBe(readScript());
    expect(START_SCRIPT_VERSION).toBe(scriptVersion(readScript()));
  });

  it('declares its version on a line of its own', () => {
    expect(START_SCRIPT).toMatch(/^RUNNER_FLEET_START_SCRIPT_VERSION=2$/m);
    expect(() => scriptVersion('#!/bin/bash\necho no version\n')).toThrow(
      /RUNNER_FLEET_START_SCRIPT_VERSION/,
    );
  });

  it('is valid bash, in full and in the compact form the user data embeds', () => {
    expect(bashSyntax(START_SCRIPT)).toEqual({ status: 0, stderr: '' });
    const compact = compactStartScript();
    expect(bashSyntax(compact)).toEqual({ status: 0, stderr: '' });
    expect(compact.startsWith('#!/usr/bin/env bash\n')).toBe(true);
    expect(compact.split('\n').filter((l) => /^\s*#/.test(l))).toEqual(['#!/usr/bin/env bash']);
    // Stripping drops whole lines: none may be the continuation of a string or command started above it.
    const lines = START_SCRIPT.split('\n');
    const continued = lines.filter(
      (line, i) => i > 0 && lines[i - 1]!.endsWith('\\') && /^\s*(#|$)/.test(line),
    );
    expect(continued).toEqual([]);
  });

  it('has no heredoc, so comment stripping cannot change a string', () => {
    expect(START_SCRIPT).not.toMatch(/<<-?\s*['"]?\w/);
  });

  it.skipIf(
    !hasShellcheck &&
      !reportSkip(
        'start script: shellcheck',
        'shellcheck is not installed',
        'sudo apt-get install -y shellcheck',
      ),
  )('passes shellcheck', () => {
    const result = spawnSync('shellcheck', ['--shell=bash', '-'], { input: START_SCRIPT, encoding: 'utf8' });
    expect(result.stdout).toBe('');
    expect(result.status).toBe(0);
  });
});
