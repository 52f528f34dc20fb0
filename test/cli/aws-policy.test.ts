/** `runner-fleet aws-policy` as a user runs it: the built CLI in a child process (run `npm run build` first). */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { PolicyDocument } from '../../src/aws/policies.js';
import { SID } from '../../src/aws/policies.js';

const dir = mkdtempSync(join(tmpdir(), 'rf-aws-policy-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function awsPolicy(args: string[]) {
  const result = spawnSync(process.execPath, ['dist/cli/main.js', 'aws-policy', ...args], {
    encoding: 'utf8',
    timeout: 20_000,
    // No GitHub or webhook secret in the environment: the command must not need them.
    env: { PATH: process.env.PATH ?? '' },
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

const HEADER = `name: acme
github:
  auth:
    app: { id: 1, privateKey: "\${file:./app.pem}" }
webhook: { secret: "\${env:WEBHOOK_SECRET}" }
scaleSets:
`;

const EC2_FLEET =
  HEADER +
  `  - name: linux
    scope: { org: octo-org }
    labels: [linux]
    max: 10
    provider:
      kind: ec2
      region: eu-west-1
      imageId: ami-0123456789abcdef0
      instanceTypes: [m7g.large]
      subnetIds: [subnet-0aaaaaaaaaaaaaaaa]
      instanceProfile: ci-runners
  - name: fleet
    scope: { org: octo-org }
    labels: [linux, fleet]
    max: 10
    provider:
      kind: ec2
      region: eu-west-1
      launchTemplate: { id: lt-0123456789abcdef0, version: 2 }
      subnetIds: [subnet-0aaaaaaaaaaaaaaaa, subnet-0bbbbbbbbbbbbbbbb]
      instanceTypes: [m7g.large, m6g.large]
      capacity: spot
  - name: local
    scope: { org: octo-org }
    labels: [local]
    max: 1
    provider: { kind: process, command: /bin/true }
`;

describe('runner-fleet aws-policy', () => {
  it('prints one JSON object with the controller and instance policies, without the fleet’s secrets', () => {
    const result = awsPolicy(['--config', file('fleet.yaml', EC2_FLEET), '--account', '123456789012']);
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    const out = JSON.parse(result.stdout) as { controller: PolicyDocument; instance: PolicyDocument };
    expect(Object.keys(out)).toEqual(['controller', 'instance']);
    expect(out.controller.Version).toBe('2012-10-17');
    expect(out.controller.Statement.map((s) => s.Sid)).toContain(SID.launchTagged);
    const passRole = out.controller.Statement.find((s) => s.Sid === SID.passRole);
    // The imageId scale set names its profile; the launch template one gets deploy/aws's role name.
    expect(passRole?.Resource).toEqual([
      'arn:aws:iam::123456789012:role/ci-runners',
      'arn:aws:iam::123456789012:role/runner-fleet-acme-instance',
    ]);
    const sids = out.controller.Statement.map((s) => s.Sid);
    expect(sids).toContain(SID.launchSpot);
    expect(sids).toContain(SID.createFleet);
    const terminate = out.controller.Statement.find((s) => s.Sid === SID.terminate);
    expect(terminate?.Condition).toEqual({ StringEquals: { 'ec2:ResourceTag/runner-fleet:fleet': 'acme' } });
    expect(out.instance.Statement.map((s) => s.Sid)).toEqual([SID.readOwn, SID.tagOwnOutcome]);
    expect(out.instance.Statement[0]?.Resource).toBe(
      'arn:aws:ssm:eu-west-1:123456789012:parameter/runner-fleet/acme/*',
    );
    expect(result.stdout).not.toContain('placeholder');
  });

  it('without --account the ARNs say * for the account; --instance-role names the role', () => {
    const result = awsPolicy(['-c', file('fleet2.yaml', EC2_FLEET), '--instance-role', 'other-role']);
    expect(result.status).toBe(0);
    const out = JSON.parse(result.stdout) as { controller: PolicyDocument };
    const passRole = out.controller.Statement.find((s) => s.Sid === SID.passRole);
    expect(passRole?.Resource).toBe('arn:aws:iam::*:role/other-role');
    expect(result.stderr).toBe('');
  });

  it('a fleet without ec2 scale sets: a clear message and exit 2', () => {
    const result = awsPolicy([
      '--config',
      file(
        'local.yaml',
        HEADER +
          `  - name: local
    scope: { org: octo-org }
    labels: [local]
    max: 1
    provider: { kind: process, command: /bin/true }
`,
      ),
    ]);
    expect(result.status).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(/local\.yaml has no scale set with provider kind ec2/);
  });

  it('config problems with their position, usage errors with the usage; exit 2', () => {
    const bad = awsPolicy([
      '--config',
      file('bad.yaml', EC2_FLEET.replace('region: eu-west-1', 'region: Europe')),
    ]);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/bad\.yaml:\d+:\d+ scaleSets\[0\]\.provider\.region: must be an AWS region/);

    const account = awsPolicy(['--config', 'x.yaml', '--account', '12']);
    expect(account.status).toBe(2);
    expect(account.stderr).toContain('--account must be a 12-digit AWS account id');
    expect(account.stderr).toContain('Usage: runner-fleet aws-policy');

    expect(awsPolicy([]).stderr).toContain('--config <fleet.yaml> is required');
  });
});
