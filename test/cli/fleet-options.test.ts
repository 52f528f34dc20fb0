/**
 * The flags and the fleet.yaml loading that `start` and `doctor` share: both refuse a bad file the same way, every
 * problem as FILE:LINE:COL with exit status 2 and nothing else done, and both reject the same malformed flags.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Command } from '../../src/cli/command.js';
import { UsageError } from '../../src/cli/command.js';
import { command as doctor } from '../../src/cli/doctor.js';
import { loadFleetConfig, parseFleetArgs } from '../../src/cli/fleet-options.js';
import { command as start } from '../../src/cli/start.js';
import { LogSink } from '../support/log-sink.js';

const dir = mkdtempSync(join(tmpdir(), 'runner-fleet-fleet-options-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Problems on several lines: a bad fleet name (1), a bad URL (3), a negative max (9), no webhook, no command. */
const BAD = `name: Not_A_Label
github:
  url: not-a-url
  auth: { token: ghp_fleetoptionstest }
scaleSets:
  - name: a
    scope: { org: octo-org }
    labels: [linux]
    max: -1
    provider: { kind: process }
`;

function io() {
  const stdout = new LogSink();
  const stderr = new LogSink();
  return { io: { stdout, stderr, env: {} }, out: () => stdout.text(), err: () => stderr.text() };
}

async function run(cmd: Command, argv: string[]) {
  const streams = io();
  const code = await cmd.run(argv, streams.io);
  return { code, out: streams.out(), err: streams.err() };
}

describe('fleet options shared by start and doctor', () => {
  const bad = join(dir, 'bad.yaml');
  writeFileSync(bad, BAD);

  it('start and doctor list every problem of a bad fleet.yaml as FILE:LINE:COL and exit 2', async () => {
    const results = {
      start: await run(start, ['--config', bad]),
      doctor: await run(doctor, ['--config', bad]),
    };
    const problems: string[][] = [];
    for (const [name, r] of Object.entries(results)) {
      expect(r.code).toBe(2);
      expect(r.out).toBe('');
      const lines = r.err.split('\n');
      expect(lines.at(-1)).toBe(`runner-fleet ${name}: ${lines.length - 1} problem(s) in ${bad}`);
      const listed = lines.slice(0, -1);
      for (const line of listed) expect(line).toMatch(new RegExp(`^${bad}:\\d+:\\d+ \\S+: `));
      problems.push(listed);
    }
    expect(problems[0]).toEqual(problems[1]);
    // name (line 1), github.url (line 3), scaleSets[0].max (line 9)
    const lineNumbers = problems[0]!.map((l) => /^[^:]+:(\d+):/.exec(l)?.[1]);
    expect(lineNumbers).toEqual(expect.arrayContaining(['1', '3', '9']));
  });

  it('an unreadable fleet.yaml is one problem without a position', () => {
    const streams = io();
    const missing = join(dir, 'missing.yaml');
    expect(loadFleetConfig('start', missing, streams.io)).toBe(2);
    expect(streams.err()).toBe(
      `${missing}: cannot read the config file: no such file\nrunner-fleet start: 1 problem(s) in ${missing}`,
    );
  });

  it('parses the shared flags and a command’s own', () => {
    const { flags, extra } = parseFleetArgs(
      [
        '--config',
        'f.yaml',
        '--kubeconfig',
        'k',
        '--aws-endpoint',
        'http://127.0.0.1:5000',
        '--leader-election',
        '--lease-name',
        'l',
        '--lease-namespace',
        'ns',
        '--log-level',
        'debug',
      ],
      { 'log-level': { type: 'string' } },
    );
    expect(flags).toEqual({
      config: 'f.yaml',
      kubeconfig: 'k',
      awsEndpoint: 'http://127.0.0.1:5000',
      leaderElection: true,
      leaseName: 'l',
      leaseNamespace: 'ns',
    });
    expect(extra).toEqual({ 'log-level': 'debug' });
    expect(parseFleetArgs(['--config=f.yaml'], {})).toEqual({ flags: { config: 'f.yaml' }, extra: {} });
  });

  it('start and doctor reject the same malformed flags as usage errors', async () => {
    for (const cmd of [start, doctor]) {
      await expect(run(cmd, [])).rejects.toThrow(new UsageError('--config is required'));
      await expect(run(cmd, ['--config', bad, '--nope'])).rejects.toThrow(UsageError);
      await expect(run(cmd, ['--config'])).rejects.toThrow(UsageError);
    }
    // Each command's own flags belong to it alone.
    await expect(run(doctor, ['--config', bad, '--log-level', 'debug'])).rejects.toThrow(UsageError);
    await expect(run(start, ['--config', bad, '--controller-service-account', 'a/b'])).rejects.toThrow(
      UsageError,
    );
    await expect(run(doctor, ['--config', bad, '--controller-service-account', 'nope'])).rejects.toThrow(
      '--controller-service-account must be NAMESPACE/NAME',
    );
  });
});
