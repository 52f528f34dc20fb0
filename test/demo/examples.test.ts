/**
 * Every example in examples/ runs as is with `demo --config` against the simulator, and its header names exactly
 * what running it for real needs: each `${env:...}` variable and `${file:...}` it reads, the runner command of a
 * process scale set, a kubeconfig for kubernetes ones, AWS credentials for ec2 ones. `start` with the example and
 * no kubeconfig says "no kubeconfig found".
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { MAIN, runCli, tmpdirEnv } from './helpers.js';

const examples = fileURLToPath(new URL('../../examples/', import.meta.url));
const files = readdirSync(examples)
  .filter((f) => f.endsWith('.yaml'))
  .sort();
const home = mkdtempSync(join(tmpdir(), 'rf-examples-home-'));
afterAll(() => rmSync(home, { recursive: true, force: true }));

function read(file: string) {
  const text = readFileSync(join(examples, file), 'utf8');
  const lines = text.split('\n');
  const header = lines
    .slice(
      0,
      lines.findIndex((l) => !l.startsWith('#')),
    )
    .join('\n');
  const body = lines.filter((l) => !l.trimStart().startsWith('#')).join('\n');
  const doc = parse(body) as { scaleSets: { name: string; provider: { kind: string; command?: string } }[] };
  return { header, body, doc };
}

describe('examples', () => {
  it('there are examples to check', () => {
    expect(files).toEqual(expect.arrayContaining(['fleet.yaml', 'fleet-ec2.yaml']));
  });

  describe.each(files)('%s', (file) => {
    it('names in its header the demo command and everything running it for real needs', () => {
      const { header, body, doc } = read(file);
      expect(header).toContain(`npx runner-fleet demo --config examples/${file}`);
      const needs = [
        ...[...body.matchAll(/\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}/g)].map((m) => m[1] as string),
        ...[...body.matchAll(/\$\{file:([^}]+)\}/g)].map((m) => m[1] as string),
        ...doc.scaleSets.flatMap((s) => (s.provider.kind === 'process' ? [s.provider.command ?? ''] : [])),
        ...(doc.scaleSets.some((s) => s.provider.kind === 'kubernetes') ? ['kubeconfig'] : []),
        ...(doc.scaleSets.some((s) => s.provider.kind === 'ec2') ? ['AWS credentials'] : []),
      ];
      expect(needs.length).toBeGreaterThan(0);
      for (const need of needs) expect(header, `${file} header names ${need}`).toContain(need);
      // The simulator accepts only the token it prints: no made-up one in the instructions.
      expect(header).not.toMatch(/GITHUB_TOKEN=\S/);
    });

    it('runs as is with demo --config against the simulator', async () => {
      const run = await runCli([
        'demo',
        '--config',
        join(examples, file),
        '--jobs',
        '12',
        '--duration',
        '3s',
        '--json',
      ]);
      expect(run.code, run.stderr).toBe(0);
      const summary = JSON.parse(run.stdout) as { ok: boolean; completed: number; routable: number };
      expect(summary.ok).toBe(true);
      expect(summary.completed).toBe(summary.routable);
    }, 120_000);
  });

  it('start with fleet.yaml and no kubeconfig says so', () => {
    // In a directory of its own: the example's store and work directory are relative paths.
    const run = spawnSync(process.execPath, [MAIN, 'start', '--config', join(examples, 'fleet.yaml')], {
      cwd: home,
      encoding: 'utf8',
      timeout: 60_000,
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        ...tmpdirEnv(),
        HOME: home,
        GITHUB_TOKEN: 'ghp_not-checked-before-the-kubeconfig',
        WEBHOOK_SECRET: 'an-example-webhook-secret-of-some-length',
      },
    });
    expect(run.status).not.toBe(0);
    expect(run.stderr).toContain('no kubeconfig found: KUBECONFIG is not set, there is no');
    expect(run.stderr).not.toContain('HTTP protocol is not allowed');
  }, 60_000);
});
