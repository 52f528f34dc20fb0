/**
 * moto in server mode, the AWS peer of the EC2 suites: EC2, SSM, STS, IAM and CloudFormation on 127.0.0.1. The
 * virtual environment comes from scripts/install-aws-peers.sh (cached outside the repository, installed by
 * scripts/install-peers.sh and .ci/run). Tests never install it: without it they say so loudly, and under CI=true its
 * absence is a failure.
 */
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { freePort } from './free-port.js';
import { reportSkip } from './skips.js';

const repo = fileURLToPath(new URL('../../', import.meta.url));

/** The bin/ directory of the AWS peers' virtual environment (moto_server, cfn-lint, aws), or undefined. */
export function awsPeersBin(): string | undefined {
  const result = spawnSync('bash', [`${repo}scripts/install-aws-peers.sh`, '--check'], { encoding: 'utf8' });
  if (result.status !== 0) return undefined;
  return result.stdout.trim().split('\n').pop();
}

/** For describe.skipIf(!requireAwsPeers(...)): loud skip on a developer machine, failure under CI=true. */
export function requireAwsPeers(suite: string): boolean {
  if (awsPeersBin() !== undefined) return true;
  return reportSkip(suite, 'the AWS test peers (moto) are not installed', 'scripts/install-aws-peers.sh');
}

/** Credentials moto accepts (it accepts any); tests pass them explicitly so no real profile is ever read. */
export const MOTO_CREDENTIALS = {
  accessKeyId: 'AKIAIOSFODNN7EXAMPLE',
  secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
} as const;

/** moto's fixed account id. */
export const MOTO_ACCOUNT = '123456789012';

export interface MotoServer {
  /** http://127.0.0.1:PORT */
  readonly url: string;
  /** Every service's state back to empty (POST /moto-api/reset). */
  reset(): Promise<void>;
  stop(): Promise<void>;
  /** The environment an AWS SDK or CLI process needs to use this server and nothing else. */
  env(region?: string): Record<string, string>;
}

async function waitReady(url: string, child: ChildProcess, output: () => string): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`moto_server exited with ${child.exitCode}: ${output()}`);
    try {
      const response = await fetch(`${url}/moto-api/data.json`, { signal: AbortSignal.timeout(2000) });
      if (response.ok) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline)
      throw new Error(`moto_server did not answer at ${url} within 30 s: ${output()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Starts moto_server on a free loopback port and waits until it answers. */
export async function startMoto(): Promise<MotoServer> {
  const bin = awsPeersBin();
  if (bin === undefined)
    throw new Error('the AWS test peers are not installed; run scripts/install-aws-peers.sh');
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child = spawn(`${bin}/moto_server`, ['-H', '127.0.0.1', '-p', String(port)], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: process.env.HOME ?? '/tmp',
      MOTO_ALLOW_NONEXISTENT_REGION: 'false',
    },
  });
  let log = '';
  const keep = (chunk: Buffer) => {
    log = (log + chunk.toString()).slice(-4000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  try {
    await waitReady(url, child, () => log);
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
  return {
    url,
    async reset() {
      const response = await fetch(`${url}/moto-api/reset`, { method: 'POST' });
      if (!response.ok) throw new Error(`moto reset answered ${response.status}`);
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
    env(region = 'eu-west-1') {
      return {
        AWS_ENDPOINT_URL: url,
        AWS_ACCESS_KEY_ID: MOTO_CREDENTIALS.accessKeyId,
        AWS_SECRET_ACCESS_KEY: MOTO_CREDENTIALS.secretAccessKey,
        AWS_REGION: region,
        AWS_DEFAULT_REGION: region,
        AWS_EC2_METADATA_DISABLED: 'true',
      };
    },
  };
}
