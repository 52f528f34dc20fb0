/**
 * `runner-fleet doctor`, GitHub half, against the simulator: App authentication, the installation's permissions per
 * scope, PAT authentication, enterprise scopes, runners listable; one line per check, exit 0 only when all pass,
 * and no secret in the output. (The Kubernetes half runs on the real control plane: test/kubernetes/doctor.test.ts.)
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { command } from '../../src/cli/doctor.js';
import type { Simulator, SimulatorOptions } from '../../src/sim/github/index.js';
import { startSimulator } from '../../src/sim/github/index.js';

type Auth = { app: { id: number; privateKey: string } } | { token: string };

async function doctor(configPath: string): Promise<{ code: number; out: string; err: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (c: Buffer) => (out += c.toString()));
  stderr.on('data', (c: Buffer) => (err += c.toString()));
  const code = await command.run(['--config', configPath], {
    stdout,
    stderr,
    env: { PATH: process.env.PATH },
  });
  return { code, out, err };
}

describe('doctor: GitHub checks against the simulator', () => {
  const dir = mkdtempSync(join(tmpdir(), 'runner-fleet-doctor-'));
  const sims: Simulator[] = [];
  let n = 0;

  const start = async (options: SimulatorOptions = {}) => {
    const sim = await startSimulator({ orgs: ['octo-org'], recordExchanges: true, ...options });
    sims.push(sim);
    return sim;
  };

  function writeConfig(sim: Simulator, auth: Auth, scopes: object[], extra: object = {}): string {
    const file = join(dir, `fleet-${++n}.yaml`);
    writeFileSync(join(dir, `key-${n}.pem`), 'app' in auth ? auth.app.privateKey : '', { mode: 0o600 });
    const doc = {
      name: 'doc',
      github: {
        url: sim.baseUrl,
        apiUrl: sim.apiUrl,
        auth: 'app' in auth ? { app: { id: auth.app.id, privateKey: `\${file:./key-${n}.pem}` } } : auth,
      },
      webhook: { secret: 'not-used-by-doctor' },
      store: { path: join(dir, 'unused.db') },
      scaleSets: scopes.map((scope, i) => ({
        name: `set${i}`,
        scope,
        labels: ['linux', `set${i}`],
        max: 1,
        provider: { kind: 'sim' },
        ...extra,
      })),
    };
    writeFileSync(file, stringify(doc));
    return file;
  }

  let sim: Simulator;
  beforeAll(async () => {
    sim = await start();
  });

  afterAll(async () => {
    await Promise.all(sims.map((s) => s.close()));
    rmSync(dir, { recursive: true, force: true });
  });

  const app = (s: Simulator, key = s.privateKeyPem): Auth => ({ app: { id: s.appId, privateKey: key } });

  it('passes for an App with the default permissions on org and repo scopes; prints no secret', async () => {
    const r = await doctor(writeConfig(sim, app(sim), [{ org: 'octo-org' }, { repo: 'octo-org/app' }]));
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const lines = r.out.trim().split('\n');
    expect(lines[0]).toMatch(/^ok {4}GitHub App .* \(id \d+\) authenticates$/);
    expect(r.out).toMatch(
      /ok {4}organization octo-org: App installation \d+ grants organization_self_hosted_runners: write, actions: read/,
    );
    expect(r.out).toMatch(
      /ok {4}repository octo-org\/app: App installation \d+ grants administration: write/,
    );
    expect(r.out).toContain('ok    organization octo-org: runners can be listed (0 registered)');
    expect(r.out).toContain('ok    repository octo-org/app: runners can be listed');
    expect(lines.at(-1)).toBe('doctor: all checks passed');
    expect(r.out).not.toContain('FAIL');
    // Installation tokens it obtained and the key it used stay out of the output.
    const tokens = sim
      .recordedExchanges()
      .filter((x) => x.template?.endsWith('/access_tokens') && x.responseBody)
      .map((x) => (JSON.parse(x.responseBody!) as { token: string }).token);
    expect(tokens.length).toBeGreaterThan(0);
    for (const t of tokens) expect(r.out).not.toContain(t);
    expect(r.out).not.toContain('PRIVATE KEY');
  });

  it('names each permission an installation lacks, and fails', async () => {
    const weak = await start({ permissions: { actions: 'read', metadata: 'read', administration: 'read' } });
    const r = await doctor(writeConfig(weak, app(weak), [{ org: 'octo-org' }, { repo: 'octo-org/app' }]));
    expect(r.code).toBe(1);
    expect(r.out).toContain('organization_self_hosted_runners: needs write, has none');
    expect(r.out).toMatch(/FAIL {2}organization octo-org: App installation \d+ lacks permissions/);
    expect(r.out).toMatch(/FAIL {2}repository octo-org\/app: .*administration: needs write, has read/);
    expect(r.out.trim().split('\n').at(-1)).toBe('doctor: some checks FAILED');
  });

  it('asks for actions: write where a scale set re-runs interrupted jobs', async () => {
    const r = await doctor(writeConfig(sim, app(sim), [{ org: 'octo-org' }], { rerunInterruptedJobs: true }));
    expect(r.code).toBe(1);
    expect(r.out).toMatch(
      /FAIL {2}organization octo-org: App installation \d+ lacks permissions \(actions: needs write, has read\)/,
    );
    const writer = await start({
      permissions: {
        actions: 'write',
        administration: 'write',
        metadata: 'read',
        organization_self_hosted_runners: 'write',
      },
    });
    const ok = await doctor(
      writeConfig(writer, app(writer), [{ org: 'octo-org' }], { rerunInterruptedJobs: true }),
    );
    expect(ok.out).toMatch(/ok {4}organization octo-org: App installation \d+ grants .*actions: write/);
    expect(ok.code).toBe(0);
  });

  it('fails when the App key is not the App’s, without going on to the scopes', async () => {
    const other = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({
      type: 'pkcs1',
      format: 'pem',
    }) as string;
    const r = await doctor(writeConfig(sim, app(sim, other), [{ org: 'octo-org' }]));
    expect(r.code).toBe(1);
    expect(r.out).toMatch(
      /^FAIL {2}GitHub App id \d+ does not authenticate \(GET \/app: 401 .*\); check the App id/,
    );
    expect(r.out).not.toContain('runners can be listed');
  });

  it('fails for an organization the App is not installed on', async () => {
    const r = await doctor(writeConfig(sim, app(sim), [{ org: 'octo-org' }, { org: 'elsewhere' }]));
    expect(r.code).toBe(1);
    expect(r.out).toMatch(
      /FAIL {2}organization elsewhere: the App is not installed there or cannot be seen \(404/,
    );
    expect(r.out).toMatch(/FAIL {2}organization elsewhere: listing runners failed/);
    expect(r.out).toContain('ok    organization octo-org: runners can be listed');
  });

  it('enterprise scope: a personal access token passes (an App is refused by the configuration itself)', async () => {
    const withApp = await doctor(writeConfig(sim, app(sim), [{ enterprise: 'octo-ent' }]));
    expect(withApp.code).toBe(2);
    expect(withApp.err).toMatch(/enterprise/i);
    const withToken = await doctor(writeConfig(sim, { token: sim.token }, [{ enterprise: 'octo-ent' }]));
    expect(withToken.out).toContain('ok    personal access token authenticates');
    expect(withToken.out).toContain('ok    enterprise octo-ent: runners can be listed');
    expect(withToken.code).toBe(0);
    expect(withToken.out).not.toContain(sim.token);
  });

  it('fails for a personal access token GitHub does not accept', async () => {
    const r = await doctor(
      writeConfig(sim, { token: 'ghp_notTheRightToken000000000000000000' }, [{ org: 'octo-org' }]),
    );
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/^FAIL {2}the personal access token does not authenticate \(401 Bad credentials\)/);
    expect(r.out).not.toContain('ghp_notTheRightToken');
  });
});
