/**
 * The GitHub client in a locked-down network: GitHub Enterprise Server served over TLS by a private CA
 * (`github.caFile`), reached only through a forward proxy (HTTPS_PROXY, NO_PROXY). Real peers: the simulator over
 * HTTPS with a test CA's certificate, and a CONNECT proxy process of our own (test/support/connect-proxy.ts). The
 * last test runs `runner-fleet start` as a process with only the proxy in its environment and a job goes through.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { githubFetch } from '../../src/app/github-fetch.js';
import { command as doctor } from '../../src/cli/doctor.js';
import { formatProblem, loadConfig } from '../../src/config/index.js';
import type { FleetConfig } from '../../src/core/fleet-config.js';
import { createGitHubClient } from '../../src/github/index.js';
import type { Simulator } from '../../src/sim/github/index.js';
import type { ConnectProxy } from '../support/connect-proxy.js';
import { startConnectProxy } from '../support/connect-proxy.js';
import { freePort } from '../support/free-port.js';
import { LogSink } from '../support/log-sink.js';
import { simulatorCredentials, startFleetSimulator } from '../support/sim-fleet.js';
import type { TestCa } from '../support/test-ca.js';
import { createTestCa } from '../support/test-ca.js';
import { untilEvery } from '../support/until.js';

const CLI = join(import.meta.dirname, '../../dist/cli/main.js');
const until = untilEvery(100);
const PROXY_PASSWORD = 'proxy-pass-7c1e9a40d2';

describe('GitHub through a forward proxy, GHES behind a private CA', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rf-proxy-tls-'));
  let ca: TestCa;
  let sim: Simulator;
  let proxy: ConnectProxy;
  let authProxy: ConnectProxy;
  let simTarget: string;

  beforeAll(async () => {
    ca = createTestCa();
    sim = await startFleetSimulator({ ghes: true, tls: ca.issue(['127.0.0.1', 'localhost']) });
    simTarget = new URL(sim.baseUrl).host;
    proxy = await startConnectProxy();
    authProxy = await startConnectProxy({ credentials: { user: 'fleet', password: PROXY_PASSWORD } });
    writeFileSync(join(dir, 'ca.pem'), ca.cert);
  });

  afterAll(async () => {
    await Promise.all([sim?.close(), proxy?.close(), authProxy?.close()]);
    ca?.remove();
    rmSync(dir, { recursive: true, force: true });
  });

  /** fleet.yaml pointing at the TLS simulator; `caFile` relative to the file, as a user would write it. */
  function writeConfig(
    name: string,
    extra: { caFile?: string; port?: number; processRunner?: boolean } = {},
  ) {
    const sub = join(dir, name);
    rmSync(sub, { recursive: true, force: true });
    mkdirSync(sub, { recursive: true });
    const credentials = simulatorCredentials(sim, sub);
    const doc = {
      name: 'proxied',
      github: { ...credentials.github, ...(extra.caFile ? { caFile: extra.caFile } : {}) },
      webhook: credentials.webhook,
      server: { host: '127.0.0.1', port: extra.port ?? 0 },
      store: { path: join(sub, 'fleet.db') },
      controller: { resyncInterval: '2s', failureBackoff: '1s' },
      scaleSets: [
        {
          name: 'proc',
          scope: { org: 'octo-org' },
          labels: ['linux', 'proxied'],
          max: 2,
          bootstrapTimeout: '60s',
          provider: {
            kind: 'process',
            command: process.execPath,
            args: [CLI, 'emulate-runner'],
            workDir: join(sub, 'runners'),
            stopGracePeriod: '3s',
            // The runner talks to the same GHES: it must trust the private CA too (Node reads this variable).
            env: { NODE_EXTRA_CA_CERTS: join(dir, 'ca.pem'), RUNNER_FLEET_EMULATOR_RETRY_MS: '10000' },
          },
        },
      ],
    };
    const file = join(sub, 'fleet.yaml');
    writeFileSync(file, stringify(doc));
    return file;
  }

  function load(file: string): FleetConfig {
    const result = loadConfig(file, { env: {} });
    if (!result.ok) throw new Error(result.problems.map(formatProblem).join('\n'));
    return result.config;
  }

  function client(config: FleetConfig, env: Record<string, string>) {
    const transport = githubFetch(config.github, env);
    const github = createGitHubClient({
      config: config.github,
      logger: pino({ level: 'silent' }),
      fetch: transport.fetch,
      retries: 0,
      timeoutMs: 10_000,
    });
    return { github, transport };
  }

  it('a private CA: refused without github.caFile, trusted with it (added to the default roots)', async () => {
    const withCa = load(writeConfig('ca', { caFile: '../ca.pem' }));
    expect(withCa.github.caFile).toBe(join(dir, 'ca.pem'));
    expect(withCa.github.ca).toBe(ca.cert);

    const plain = client(load(writeConfig('no-ca')), {});
    const refused = await plain.github.listRunners({ org: 'octo-org' }, '').then(
      () => 'listed',
      (error: Error) => `${error.message} ${String((error.cause as Error | undefined)?.message ?? '')}`,
    );
    expect(refused).toMatch(/certificate|self.signed|unable to verify/i);
    plain.transport.close();

    const trusted = client(withCa, {});
    expect(trusted.transport.route).toBe('direct');
    await expect(trusted.github.listRunners({ org: 'octo-org' }, '')).resolves.toEqual([]);
    trusted.transport.close();

    const bad = join(dir, 'not-a-ca.pem');
    writeFileSync(bad, 'hello');
    const file = writeConfig('bad-ca', { caFile: bad });
    const result = loadConfig(file, { env: {} });
    expect(result.ok ? [] : result.problems.map(formatProblem)).toEqual([
      expect.stringMatching(/github\.caFile: .*not-a-ca\.pem holds no PEM certificate/),
    ]);
  });

  it('HTTPS_PROXY carries every call through a CONNECT tunnel; NO_PROXY exempts the host', async () => {
    const config = load(writeConfig('proxy', { caFile: '../ca.pem' }));
    const before = proxy.requests.length;
    const through = client(config, { HTTPS_PROXY: proxy.url, NO_PROXY: 'example.internal' });
    expect(through.transport.route).toBe(`proxy ${proxy.url}`);
    await through.github.listRunners({ org: 'octo-org' }, '');
    through.transport.close();
    const tunnels = proxy.requests.slice(before);
    expect(tunnels.length).toBeGreaterThan(0);
    expect(tunnels.every((r) => r.method === 'CONNECT' && r.target === simTarget && r.status === 200)).toBe(
      true,
    );

    for (const noProxy of ['127.0.0.1', `127.0.0.1:${new URL(sim.baseUrl).port}`, '127.0.0.0/8', '*']) {
      const mark = proxy.requests.length;
      const direct = client(config, { https_proxy: proxy.url, no_proxy: `foo.example, ${noProxy}` });
      expect(direct.transport.route, noProxy).toBe('direct');
      await direct.github.listRunners({ org: 'octo-org' }, '');
      direct.transport.close();
      expect(proxy.requests.length, noProxy).toBe(mark);
    }
  });

  it('proxy credentials in the URL are sent; a refusal (407) is a clear error without the password', async () => {
    const config = load(writeConfig('auth', { caFile: '../ca.pem' }));
    const proxyUrl = new URL(authProxy.url);
    proxyUrl.username = 'fleet';
    proxyUrl.password = PROXY_PASSWORD;
    const good = client(config, { HTTPS_PROXY: proxyUrl.href });
    expect(good.transport.route).not.toContain(PROXY_PASSWORD);
    await expect(good.github.listRunners({ org: 'octo-org' }, '')).resolves.toEqual([]);
    good.transport.close();
    expect(authProxy.requests.at(-1)).toMatchObject({ method: 'CONNECT', target: simTarget, status: 200 });

    proxyUrl.password = 'wrong-password-0000';
    const bad = client(config, { HTTPS_PROXY: proxyUrl.href });
    const error = await bad.github.listRunners({ org: 'octo-org' }, '').then(
      () => undefined,
      (e: Error) => e,
    );
    bad.transport.close();
    const text = `${error?.message} ${(error?.cause as Error | undefined)?.message ?? ''}`;
    expect(text).toMatch(/requires authentication \(407\)/);
    expect(text).not.toContain('wrong-password-0000');
    expect(authProxy.requests.at(-1)).toMatchObject({ method: 'CONNECT', status: 407 });
  });

  it('runner-fleet doctor checks the App through the proxy and the private CA', async () => {
    const file = writeConfig('doctor', { caFile: '../ca.pem' });
    const before = proxy.requests.length;
    const stdout = new PassThrough();
    let out = '';
    stdout.on('data', (c: Buffer) => (out += c.toString()));
    const code = await doctor.run(['--config', file], {
      stdout,
      stderr: new PassThrough(),
      env: { HTTPS_PROXY: proxy.url },
    });
    expect(out).toContain('doctor: all checks passed');
    expect(code).toBe(0);
    expect(proxy.requests.slice(before).some((r) => r.target === simTarget && r.status === 200)).toBe(true);
  });

  it('runner-fleet start: every GitHub call through the proxy, a job runs end to end', async () => {
    const port = await freePort();
    const file = writeConfig('start', { caFile: '../ca.pem', port });
    sim.setWebhook(`http://127.0.0.1:${port}/webhook`);
    const before = proxy.requests.length;
    const apiBefore = sim.stats().apiCalls.total;
    const logs = new LogSink();
    const child: ChildProcess = spawn(process.execPath, [CLI, 'start', '--config', file], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HTTPS_PROXY: proxy.url },
    });
    child.stdout!.pipe(logs, { end: false });
    child.stderr!.pipe(logs, { end: false });
    try {
      await until(
        async () => {
          if (child.exitCode !== null) throw new Error(`start exited: ${logs.text().slice(-2000)}`);
          const res = await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined);
          await res?.body?.cancel();
          return res?.status === 200;
        },
        60_000,
        'the controller to be ready',
      );
      const [job] = sim.createJobs({
        owner: 'octo-org',
        repo: 'app',
        labels: ['self-hosted', 'linux', 'proxied'],
      });
      await until(
        () => sim.job(job!.id)?.status === 'completed',
        90_000,
        'the job to run on a runner the controller created',
        () => sim.job(job!.id),
      );
      expect(sim.job(job!.id)?.conclusion).toBe('success');
      // The controller reached GitHub only through the tunnel: the proxy opened tunnels to the simulator, and every
      // API request the simulator saw from the controller arrived while tunnels were its only way in.
      const tunnels = proxy.requests.slice(before).filter((r) => r.method === 'CONNECT');
      expect(tunnels.length).toBeGreaterThan(0);
      expect(tunnels.every((r) => r.target === simTarget && r.status === 200)).toBe(true);
      expect(sim.stats().apiCalls.total).toBeGreaterThan(apiBefore);
      expect(logs.text()).not.toContain(sim.privateKeyPem.split('\n')[1]!);
    } finally {
      sim.setWebhook(null);
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      await exited;
      clearTimeout(timer);
    }
  }, 180_000);
});
