import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { LabelRouter } from '../core/labels.js';
import { DemoConfigError, demoConfig, readUserFleet, simulatorWorld, workloadTargets } from './fleet.js';
import type { DemoEc2World, DemoSimulatorInfo } from './fleet.js';
import { checkDemoEndpoint } from './ec2-endpoint.js';

const sim: DemoSimulatorInfo = {
  baseUrl: 'http://127.0.0.1:4100',
  apiUrl: 'http://127.0.0.1:4100',
  appId: 100001,
  privateKeyPem: '-----BEGIN RSA PRIVATE KEY-----\nMIIBOgIBAAJBAK\n-----END RSA PRIVATE KEY-----\n',
  token: 'ghp_demoTokenForTests0123456789abcdef',
  webhookSecret: 'demo-webhook-secret-for-tests',
};
const paths = { dir: '/tmp/rf-demo-test', nodePath: process.execPath, cliPath: '/opt/rf/dist/cli/main.js' };

let dir: string | null = null;
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = null;
});

function file(text: string): string {
  dir = mkdtempSync(join(tmpdir(), 'rf-fleet-'));
  const path = join(dir, 'fleet.yaml');
  writeFileSync(path, text);
  return path;
}

describe('demo fleet', () => {
  it('built in: three ephemeral JIT sets (process, sim, sim over the message queue) and a persistent token set, all against the simulator', () => {
    const { config, secrets } = demoConfig({ fleet: null, simulator: sim, paths, port: 0 });
    expect(config.github.apiUrl).toBe(sim.apiUrl);
    expect(config.server).toMatchObject({ host: '127.0.0.1', port: 0 });
    expect(config.store.path).toBe('/tmp/rf-demo-test/runner-fleet.db');
    expect('app' in config.github.auth && config.github.auth.app.privateKey).toBe(sim.privateKeyPem);
    expect(config.webhook.secret).toBe(sim.webhookSecret);
    expect(secrets).toContain(sim.webhookSecret);
    const sets = config.scaleSets.map((s) => [s.provider.kind, s.ephemeral, s.registration, s.discovery]);
    expect(sets).toEqual([
      ['process', true, 'jit', 'webhook'],
      ['sim', true, 'jit', 'webhook'],
      ['sim', true, 'jit', 'scale-set'],
      ['sim', false, 'token', 'webhook'],
    ]);
    const proc = config.scaleSets[0]!.provider;
    expect(proc).toMatchObject({ command: process.execPath, args: [paths.cliPath, 'emulate-runner'] });
    expect(config.scaleSets[0]!.max).toBeLessThanOrEqual(8);
    expect(config.scaleSets[1]!.provider).toMatchObject({ url: 'http://127.0.0.1:4100' });
  });

  it('targets every scale set and picks unroutable labels no scale set serves', () => {
    const { config } = demoConfig({ fleet: null, simulator: sim, paths, port: 0 });
    const { targets, unroutable } = workloadTargets(config);
    const router = new LabelRouter(config.scaleSets);
    expect(targets.map((t) => router.route(t))).toEqual(config.scaleSets.map((s) => s.name));
    expect(router.route(unroutable)).toBeNull();
    expect(targets.find((t) => t.scaleSet === 'app-persistent')).toMatchObject({
      owner: 'octo-org',
      repo: 'app',
    });
  });

  it("runs a user's fleet.yaml against the simulator: providers emulated, secrets and sections replaced", () => {
    const path = file(`name: my-fleet
github:
  auth: { token: "\${env:UNSET_GITHUB_TOKEN_FOR_DEMO}" }
webhook: { secret: "\${env:UNSET_WEBHOOK_SECRET_FOR_DEMO}" }
scaleSets:
  - name: k8s
    scope: { org: acme }
    labels: [linux, k8s]
    max: 30
    idleTimeout: 15m
    identity: { aws: { roleArn: 'arn:aws:iam::123456789012:role/ci' } }
    provider: { kind: kubernetes, namespace: ci }
  - name: local
    scope: { repo: acme/api }
    labels: [linux, local]
    max: 2
    provider: { kind: process, command: /opt/actions-runner/run.sh }
`);
    const fleet = readUserFleet(path, {});
    expect(simulatorWorld(fleet.scaleSets)).toMatchObject({ orgs: ['acme'], needsPat: false });
    const { config, notes } = demoConfig({ fleet, simulator: sim, paths, port: 0 });
    expect(config.name).toBe('my-fleet');
    expect(config.scaleSets.map((s) => s.provider.kind)).toEqual(['sim', 'process']);
    expect(config.scaleSets[0]!.identity).toBeUndefined();
    expect(config.scaleSets[0]!.idleTimeout).toBe(10_000);
    expect(notes.join('\n')).toMatch(/k8s: kubernetes provider replaced by the simulated cloud/);
    expect(notes.join('\n')).toMatch(
      /local: runs the runner emulator instead of \/opt\/actions-runner\/run.sh/,
    );
    expect(workloadTargets(config).targets[1]).toMatchObject({ owner: 'acme', repo: 'api' });
  });

  it("reports problems in the user's scale sets with their line", () => {
    const path = file(`github:
  auth: { token: x }
webhook: { secret: y }
scaleSets:
  - name: bad
    scope: { org: acme }
    labels: [linux]
    minIdle: 5
    max: 2
    provider: { kind: sim }
`);
    let error: unknown;
    try {
      readUserFleet(path, {});
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(DemoConfigError);
    const problems = (error as DemoConfigError).problems;
    expect(problems.length).toBeGreaterThan(0);
    expect(problems[0]!.line).toBeGreaterThanOrEqual(8);
    expect(problems.every((p) => p.path.startsWith('scaleSets'))).toBe(true);
  });

  it('an enterprise scope needs the PAT', () => {
    const fleet = {
      name: undefined,
      controller: undefined,
      scaleSets: [
        {
          name: 'ent',
          scope: { enterprise: 'octo-ent' },
          labels: ['linux'],
          max: 2,
          provider: { kind: 'sim' },
        },
      ],
    };
    const { config } = demoConfig({ fleet, simulator: sim, paths, port: 0 });
    expect(config.github.auth).toEqual({ token: sim.token });
  });

  describe('--provider ec2', () => {
    const world: DemoEc2World = {
      region: 'eu-west-1',
      imageId: 'ami-0aaaaaaaaaaaaaaaa',
      subnetIds: ['subnet-0aaaaaaaaaaaaaaaa', 'subnet-0bbbbbbbbbbbbbbbb', 'subnet-0cccccccccccccccc'],
      securityGroupId: 'sg-0aaaaaaaaaaaaaaaa',
      instanceProfile: 'runner-fleet-demo-instance',
      launchTemplates: { '/runner-fleet/demo': 'runner-fleet-demo', '/ci/runners': 'runner-fleet-acme-2' },
    };

    it('built in: ephemeral JIT runners on spot from a launch template, persistent token runners from the AMI', () => {
      const { config, notes } = demoConfig({ fleet: null, simulator: sim, paths, port: 0, ec2: world });
      expect(notes).toEqual([]);
      expect(
        config.scaleSets.map((s) => [s.name, s.provider.kind, s.ephemeral, s.registration, s.minIdle]),
      ).toEqual([
        ['ec2-spot', 'ec2', true, 'jit', 0],
        ['ec2-persistent', 'ec2', false, 'token', 0],
      ]);
      expect(config.scaleSets[0]!.provider).toMatchObject({
        launchTemplate: { name: 'runner-fleet-demo' },
        instanceTypes: ['t3.micro', 't3a.micro', 't3.small'],
        subnetIds: world.subnetIds.slice(0, 2),
        capacity: 'spot',
      });
      expect(config.scaleSets[1]!.provider).toMatchObject({
        imageId: world.imageId,
        instanceProfile: world.instanceProfile,
        subnetIds: [world.subnetIds[0]],
        capacity: 'on-demand',
      });
    });

    it("points a user's ec2 sets at the demo's world and keeps what is not a launch setting", () => {
      const path = file(`name: acme
github: { url: https://github.com, auth: { token: x } }
webhook: { secret: y }
scaleSets:
  - name: lt
    scope: { org: acme }
    labels: [lt]
    minIdle: 2
    max: 4
    provider:
      kind: ec2
      region: us-east-2
      endpoint: http://127.0.0.1:1
      launchTemplate: { id: lt-0123456789abcdef0 }
      instanceTypes: [m7i.large, m6i.large]
      subnetIds: [subnet-0123456789abcdef0, subnet-0123456789abcdef1]
      capacity: spot
      onDemandFailover: [InsufficientInstanceCapacity]
      tags: { team: ci }
      ssm: { pathPrefix: /ci/runners, kmsKeyId: alias/ci }
  - name: ami
    scope: { org: acme }
    labels: [ami]
    max: 2
    provider:
      kind: ec2
      region: eu-west-1
      imageId: ami-0123456789abcdef0
      instanceProfile: ci-runner
      securityGroupIds: [sg-0123456789abcdef0]
      instanceTypes: [c7i.large]
`);
      const fleet = readUserFleet(path, {});
      const { config, notes } = demoConfig({ fleet, simulator: sim, paths, port: 0, ec2: world });
      expect(config.scaleSets[0]!.minIdle).toBe(0);
      expect(config.scaleSets[0]!.provider).toEqual({
        kind: 'ec2',
        region: 'eu-west-1',
        launchTemplate: { name: 'runner-fleet-acme-2' },
        instanceTypes: ['m7i.large', 'm6i.large'],
        subnetIds: world.subnetIds.slice(0, 2),
        capacity: 'spot',
        onDemandFailover: ['InsufficientInstanceCapacity'],
        tags: { team: 'ci' },
        ssm: { pathPrefix: '/ci/runners' },
      });
      expect(config.scaleSets[1]!.provider).toMatchObject({
        imageId: world.imageId,
        instanceProfile: world.instanceProfile,
        securityGroupIds: [world.securityGroupId],
        instanceTypes: ['c7i.large'],
      });
      expect(notes).toEqual([
        "lt: launches from the demo's launch template, subnets and instance profile in the AWS endpoint (region " +
          'eu-west-1); SSM default key instead of kmsKeyId',
        'lt: minIdle 0 for the demo, so that no instance is left running at the end',
        'lt: idleTimeout capped at 10s for the demo',
        "ami: launches from the demo's AMI, subnets and instance profile in the AWS endpoint",
        'ami: idleTimeout capped at 10s for the demo',
      ]);
    });

    it('accepts local endpoints only', () => {
      expect(checkDemoEndpoint('http://127.0.0.1:5000/')).toEqual({
        ok: true,
        endpoint: 'http://127.0.0.1:5000',
      });
      expect(checkDemoEndpoint('https://ec2.eu-west-1.amazonaws.com')).toMatchObject({ ok: false });
      expect(checkDemoEndpoint('https://ssm.cn-north-1.amazonaws.com.cn')).toMatchObject({ ok: false });
      expect(checkDemoEndpoint('localhost:5000')).toMatchObject({ ok: false });
      expect(checkDemoEndpoint('not a url')).toMatchObject({
        ok: false,
        message: '--aws-endpoint must be a URL such as http://127.0.0.1:5000, got not a url',
      });
    });
  });
});
