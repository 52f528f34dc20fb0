import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { command, parseRbacArgs } from './rbac.js';

async function run(argv: string[], env: Record<string, string> = {}) {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (c) => (out += c));
  stderr.on('data', (c) => (err += c));
  const code = await command.run(argv, { stdout, stderr, env });
  return { code, out, err };
}

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function fleetFile(text: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'rf-rbac-'));
  dirs.push(dir);
  const file = path.join(dir, 'fleet.yaml');
  writeFileSync(file, text);
  return file;
}

const FLEET = `name: acme
github:
  auth:
    app: { id: 1, privateKey: "\${file:./app.pem}" }
webhook: { secret: "\${env:WEBHOOK_SECRET}" }
scaleSets:
  - name: k8s-kube
    scope: { org: octo-org }
    labels: [linux, k8s]
    max: 50
    identity: { aws: { roleArn: "arn:aws:iam::123456789012:role/ci-runner" } }
    provider: { kind: kubernetes, namespace: ci-runners, containerMode: kubernetes }
  - name: local
    scope: { org: octo-org }
    labels: [local]
    max: 1
    provider: { kind: process, command: /bin/true }
`;

describe('runner-fleet rbac', () => {
  it('prints the manifests for a fleet without needing its secrets', async () => {
    const { code, out, err } = await run([
      '--config',
      fleetFile(FLEET),
      '--namespace',
      'ops',
      '--leader-election',
    ]);
    expect(code, err).toBe(0);
    const docs = parseAllDocuments(out).map((d) => d.toJS());
    expect(docs.map((d) => `${d.kind}/${d.metadata.namespace}/${d.metadata.name}`)).toEqual([
      'ServiceAccount/ops/runner-fleet',
      'Role/ci-runners/runner-fleet-controller',
      'RoleBinding/ci-runners/runner-fleet-controller',
      'Role/ci-runners/runner-fleet-container-hooks',
      'Role/ops/runner-fleet-controller',
      'RoleBinding/ops/runner-fleet-controller',
    ]);
    const lease = docs.find((d) => d.kind === 'Role' && d.metadata.namespace === 'ops');
    expect(lease.rules).toContainEqual({
      apiGroups: ['coordination.k8s.io'],
      resources: ['leases'],
      verbs: ['get', 'update'],
      resourceNames: ['acme-leader'],
    });
    expect(out).not.toContain('placeholder');
  });

  it('reports config problems with their line and exits 2', async () => {
    const { code, err } = await run(['--config', fleetFile(FLEET.replace('max: 50', 'max: 0'))]);
    expect(code).toBe(2);
    expect(err).toMatch(/fleet\.yaml:\d+:\d+ scaleSets\[0\]\.max: must be at least 1/);
  });

  it('parses its options', () => {
    expect(parseRbacArgs(['-c', 'f.yaml'])).toEqual({
      config: 'f.yaml',
      namespace: 'runner-fleet',
      serviceAccount: 'runner-fleet',
      roleName: 'runner-fleet-controller',
      leaderElection: false,
      includeServiceAccount: true,
    });
    expect(parseRbacArgs(['--config=f', '--lease-name', 'l', '--no-service-account'])).toMatchObject({
      leaseName: 'l',
      includeServiceAccount: false,
    });
    expect(() => parseRbacArgs([])).toThrow(/--config/);
    expect(() => parseRbacArgs(['--config', 'f', '--bogus'])).toThrow(/unexpected/);
  });
});
