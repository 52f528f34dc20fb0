/**
 * `runner-fleet demo` as users run it: the built CLI in a child process, with the simulator, the controller and
 * real runner processes. Small workloads, so the suite stays quick on two cores.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SUMMARY_KEYS, runCli } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'rf-demo-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('runner-fleet demo', () => {
  it('--json: exactly one JSON object on stdout with the summary keys, every job done, nothing leaked', async () => {
    const run = await runCli(['demo', '--jobs', '40', '--duration', '8s', '--json']);
    expect(run.code, run.stderr).toBe(0);
    const lines = run.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(1);
    const summary = JSON.parse(lines[0]!) as Record<string, unknown>;
    for (const key of SUMMARY_KEYS) expect(summary, key).toHaveProperty(key);
    expect(summary).toMatchObject({
      jobs: 40,
      routable: 39,
      completed: 39,
      failed: 0,
      cancelled: 1,
      unroutable: 1,
      leakedRunners: 0,
      leakedInstances: 0,
      ok: true,
    });
    const q = summary.queueTimeMs as { p50: number; p95: number; max: number };
    expect(q.p50).toBeGreaterThanOrEqual(0);
    expect(q.p50).toBeLessThanOrEqual(q.p95);
    expect(q.p95).toBeLessThanOrEqual(q.max);
    // At least one call per runner-creating job (JIT config), and a measured, not invented, count.
    expect(summary.githubApiCalls as number).toBeGreaterThanOrEqual(30);
    expect(summary.apiCallsPerJob).toBeCloseTo((summary.githubApiCalls as number) / 40, 2);
    expect(summary.maxConcurrentRunners as number).toBeGreaterThan(1);
    expect(summary.durationMs as number).toBeLessThan(60_000);
    // Progress and the dashboard URL went to stderr.
    expect(run.stderr).toMatch(/Dashboard: +http:\/\/127\.0\.0\.1:\d+\//);
    expect(run.stderr).toMatch(/^\[ *[\d.]+m?s\] workload: jobs/m);
  }, 120_000);

  it('plain output (not a terminal): the URL, periodic progress lines, then the summary', async () => {
    const run = await runCli(['demo', '--jobs', '20', '--duration', '4s']);
    expect(run.code, run.stdout + run.stderr).toBe(0);
    const out = run.stdout;
    expect(out).toMatch(/^Dashboard: +http:\/\/127\.0\.0\.1:\d+\/$/m);
    expect(out).toMatch(/^Controller log: .*controller\.log$/m);
    const progress = out.split('\n').filter((l) => /^\[ *[\d.]+m?s\] /.test(l));
    expect(progress.length).toBeGreaterThanOrEqual(2);
    expect(out).not.toContain('\u001b[');
    expect(out).toContain('runner-fleet demo summary');
    expect(out).toMatch(/completed +19 of 19 routable/);
    expect(out).toMatch(/leaked +0 runners, 0 instances/);
    expect(out).toMatch(/linux-process +process/);
    expect(out).toContain('OK: every routable job completed and nothing leaked.');
    // Without --keep-logs the log goes with its directory, and the end of the output says so.
    const logFile = /^Controller log: (.*controller\.log)$/m.exec(out)?.[1] ?? '';
    expect(existsSync(logFile)).toBe(false);
    expect(out).toContain(
      'Controller log removed with its directory after the successful run (--keep-logs keeps it)',
    );
  }, 120_000);

  it('--keep-logs keeps the controller log of a successful run and prints its path at the end; one msg per line', async () => {
    const run = await runCli(['demo', '--jobs', '10', '--duration', '2s', '--keep-logs']);
    expect(run.code, run.stdout + run.stderr).toBe(0);
    const kept = /^Controller log kept: (\S+controller\.log) \(store and logs in (\S+)\)$/m.exec(run.stdout);
    expect(kept, run.stdout).not.toBeNull();
    const [, logFile, logDir] = kept as unknown as [string, string, string];
    try {
      const lines = readFileSync(logFile, 'utf8').split('\n').filter(Boolean);
      expect(lines.length).toBeGreaterThan(10);
      for (const line of lines) expect(line.match(/"msg":/g), line).toHaveLength(1);
    } finally {
      rmSync(logDir, { recursive: true, force: true });
    }
  }, 120_000);

  it('--config runs your own fleet.yaml against the simulator', async () => {
    const file = join(dir, 'fleet.yaml');
    writeFileSync(
      file,
      `name: acme-ci
github:
  url: https://github.com
  auth: { token: "\${env:GITHUB_TOKEN_NOT_SET_IN_THIS_TEST}" }
webhook: { secret: "\${env:WEBHOOK_SECRET_NOT_SET_IN_THIS_TEST}" }
scaleSets:
  - name: small
    scope: { org: acme }
    labels: [linux, small]
    max: 3
    provider: { kind: process, command: /opt/actions-runner/run.sh }
  - name: big
    scope: { org: acme }
    labels: [linux, big]
    max: 12
    idleTimeout: 30m
    provider: { kind: kubernetes, namespace: ci }
  - name: api-persistent
    scope: { repo: acme/api }
    labels: [linux, persistent]
    minIdle: 1
    max: 2
    ephemeral: false
    registration: token
    provider: { kind: sim }
`,
    );
    const run = await runCli(['demo', '--config', file, '--jobs', '24', '--duration', '5s', '--json']);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toContain(
      'Note: small: runs the runner emulator instead of /opt/actions-runner/run.sh',
    );
    expect(run.stderr).toContain('Note: big: kubernetes provider replaced by the simulated cloud (sim)');
    expect(run.stderr).toContain('Note: big: idleTimeout capped at 10s for the demo');
    const summary = JSON.parse(run.stdout) as {
      ok: boolean;
      completed: number;
      routable: number;
      scaleSets: { name: string; jobs: number }[];
    };
    expect(summary.ok).toBe(true);
    expect(summary.completed).toBe(summary.routable);
    expect(summary.scaleSets.map((s) => s.name)).toEqual(['small', 'big', 'api-persistent']);
    expect(summary.scaleSets.every((s) => s.jobs > 0)).toBe(true);
  }, 120_000);

  it('a broken --config: exit 2 with each problem at its line, before anything starts', async () => {
    const file = join(dir, 'broken.yaml');
    writeFileSync(
      file,
      `github: { auth: { token: x } }
webhook: { secret: y }
scaleSets:
  - name: bad
    scope: { org: acme }
    labels: [linux]
    minIdle: 5
    max: 2
    provider: { kind: sim }
`,
    );
    const run = await runCli(['demo', '--config', file]);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(new RegExp(`${file.replace(/[.]/g, '\\.')}:\\d+:\\d+ scaleSets\\[0\\]`));
    expect(run.stdout).not.toContain('Dashboard');
  });

  it('bad usage: exit 2', async () => {
    const run = await runCli(['demo', '--jobs', 'many']);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('--jobs must be a whole number');
  });
});
