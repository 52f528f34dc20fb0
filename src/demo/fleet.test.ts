import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { LabelRouter } from '../core/labels.js';
import { DemoConfigError, demoConfig, readUserFleet, simulatorWorld, workloadTargets } from './fleet.js';
import type { DemoSimulatorInfo } from './fleet.js';

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
  it('built in: two ephemeral JIT sets (process, sim) and a persistent token set, all against the simulator', () => {
    const { config, secrets } = demoConfig({ fleet: null, simulator: sim, paths, port: 0 });
    expect(config.github.apiUrl).toBe(sim.apiUrl);
    expect(config.server).toMatchObject({ host: '127.0.0.1', port: 0 });
    expect(config.store.path).toBe('/tmp/rf-demo-test/runner-fleet.db');
    expect('app' in config.github.auth && config.github.auth.app.privateKey).toBe(sim.privateKeyPem);
    expect(config.webhook.secret).toBe(sim.webhookSecret);
    expect(secrets).toContain(sim.webhookSecret);
    const sets = config.scaleSets.map((s) => [s.provider.kind, s.ephemeral, s.registration]);
    expect(sets).toEqual([
      ['process', true, 'jit'],
      ['sim', true, 'jit'],
      ['sim', false, 'token'],
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
});
