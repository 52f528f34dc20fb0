/**
 * What the EC2 machine-side suites share: the runner emulator's command line for the bridge, launching an instance
 * in moto as runner-fleet's ec2 provider will (user data, tags, InstanceInitiatedShutdownBehavior=terminate), the
 * runner parameter written as the controller will write it, real registrations from the simulator, and a watcher of
 * every process's command line that catches a secret on any argv.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DescribeInstancesCommand, EC2Client, RunInstancesCommand } from '@aws-sdk/client-ec2';
import type { _InstanceType } from '@aws-sdk/client-ec2';
import { GetParameterCommand, PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { encodeRunnerParameter, runnerParameterName } from '../../src/aws/runner-parameter.js';
import type { RunnerParameter } from '../../src/aws/runner-parameter.js';
import { instanceArn } from '../../src/aws/policies.js';
import {
  TAG_FLEET,
  TAG_INSTANCE_ARN,
  TAG_INSTANCE_ID,
  TAG_RUNNER,
  TAG_SCALE_SET,
} from '../../src/aws/tags.js';
import { userDataBase64 } from '../../src/aws/user-data.js';
import type { Simulator } from '../../src/sim/github/index.js';
import { MOTO_ACCOUNT, MOTO_CREDENTIALS } from './moto.js';
import type { MotoServer } from './moto.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const built = join(root, 'dist/cli/main.js');

export const REGION = 'eu-west-1';
export const ORG = 'octo-org';

/** `node dist/cli/main.js emulate-runner` when the build has config.sh support (--runner-root), else src via tsx. */
export function emulatorCommand(): string[] {
  try {
    const help = execFileSync(process.execPath, [built, 'emulate-runner', '--help'], { encoding: 'utf8' });
    if (help.includes('--runner-root')) return [process.execPath, built, 'emulate-runner'];
  } catch {
    // not built
  }
  console.warn(
    'ec2 suites: dist/cli/main.js lacks emulate-runner --runner-root; running src through tsx (slower)',
  );
  return [process.execPath, '--import', 'tsx', join(root, 'src/cli/main.ts'), 'emulate-runner'];
}

export function awsClients(moto: MotoServer) {
  const base = { region: REGION, endpoint: moto.url, credentials: MOTO_CREDENTIALS };
  return { ec2: new EC2Client(base), ssm: new SSMClient(base) };
}

export interface Launch {
  readonly fleet: string;
  readonly scaleSet?: string;
  readonly runner: string;
  readonly userData: string;
}

/** RunInstances as the ec2 provider does it: the user data, ownership tags, terminate on shutdown. */
export async function launchInstance(ec2: EC2Client, launch: Launch): Promise<string> {
  const reply = await ec2.send(
    new RunInstancesCommand({
      ImageId: 'ami-0123456789abcdef0',
      InstanceType: 't3.micro' as _InstanceType,
      MinCount: 1,
      MaxCount: 1,
      UserData: userDataBase64(launch.userData),
      InstanceInitiatedShutdownBehavior: 'terminate',
      TagSpecifications: [
        {
          ResourceType: 'instance',
          Tags: [
            { Key: TAG_FLEET, Value: launch.fleet },
            { Key: TAG_SCALE_SET, Value: launch.scaleSet ?? 'linux' },
            { Key: TAG_RUNNER, Value: launch.runner },
          ],
        },
      ],
    }),
  );
  const id = reply.Instances?.[0]?.InstanceId;
  if (id === undefined) throw new Error('RunInstances returned no instance');
  return id;
}

export async function instanceState(ec2: EC2Client, instanceId: string): Promise<string | undefined> {
  const reply = await ec2.send(new DescribeInstancesCommand({ InstanceIds: [instanceId] }));
  return reply.Reservations?.[0]?.Instances?.[0]?.State?.Name;
}

/** The runner parameter as the controller writes it: SecureString at <prefix>/<instance id>, tagged (with the ARN). */
export async function putRunnerParameter(
  ssm: SSMClient,
  prefix: string,
  instanceId: string,
  parameter: RunnerParameter,
  tags: { fleet: string; scaleSet?: string; runner: string },
): Promise<string> {
  const name = runnerParameterName(prefix, instanceId);
  await ssm.send(
    new PutParameterCommand({
      Name: name,
      Type: 'SecureString',
      Value: encodeRunnerParameter(parameter),
      Tags: [
        { Key: TAG_INSTANCE_ARN, Value: instanceArn(REGION, MOTO_ACCOUNT, instanceId) },
        { Key: TAG_INSTANCE_ID, Value: instanceId },
        { Key: TAG_FLEET, Value: tags.fleet },
        { Key: TAG_SCALE_SET, Value: tags.scaleSet ?? 'linux' },
        { Key: TAG_RUNNER, Value: tags.runner },
      ],
    }),
  );
  return name;
}

export async function parameterExists(ssm: SSMClient, name: string): Promise<boolean> {
  try {
    await ssm.send(new GetParameterCommand({ Name: name, WithDecryption: true }));
    return true;
  } catch (error) {
    if ((error as { name?: string }).name === 'ParameterNotFound') return false;
    throw error;
  }
}

async function gh(sim: Simulator, method: string, path: string, body?: unknown): Promise<unknown> {
  const response = await fetch(`${sim.apiUrl}${path}`, {
    method,
    headers: {
      authorization: `token ${sim.token}`,
      accept: 'application/vnd.github+json',
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) throw new Error(`${method} ${path}: HTTP ${response.status}`);
  return response.json();
}

/** A JIT registration whose runner carries only `label`. */
export async function jitRegistration(sim: Simulator, name: string, label: string): Promise<string> {
  const reply = (await gh(sim, 'POST', `/orgs/${ORG}/actions/runners/generate-jitconfig`, {
    name,
    runner_group_id: 1,
    labels: [label],
  })) as { encoded_jit_config: string };
  return reply.encoded_jit_config;
}

export async function registrationToken(sim: Simulator): Promise<string> {
  return ((await gh(sim, 'POST', `/orgs/${ORG}/actions/runners/registration-token`)) as { token: string })
    .token;
}

/** The texts by which a secret would show: the whole value, and a slice from its middle. */
export function needles(secret: string): string[] {
  const middle = secret.length > 48 ? [secret.slice(secret.length / 2 - 16, secret.length / 2 + 16)] : [];
  return [secret, Buffer.from(secret).toString('base64'), ...middle];
}

/** Every process's argv, sampled every `everyMs` while it runs: which ones held a watched secret. */
export class ArgvWatch {
  readonly #secrets = new Set<string>();
  readonly hits: string[] = [];
  readonly #hitPids = new Set<string>();
  samples = 0;
  readonly #timer: NodeJS.Timeout;

  constructor(everyMs = 50) {
    this.#timer = setInterval(() => this.#sample(), everyMs);
  }

  watch(secret: string): void {
    for (const needle of needles(secret)) this.#secrets.add(needle);
  }

  #sample(): void {
    if (this.#secrets.size === 0) return;
    this.samples++;
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      let argv: string;
      try {
        argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').replace(/\0/g, ' ');
      } catch {
        continue;
      }
      if (this.#hitPids.has(entry)) continue;
      for (const secret of this.#secrets) {
        if (!argv.includes(secret)) continue;
        this.#hitPids.add(entry);
        this.hits.push(`pid ${entry}: ${argv.slice(0, 120)}...`);
        break;
      }
    }
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}

/** Polls `check` until it returns a value; fails with `what` at the deadline. */
export async function waitFor<T>(
  what: string,
  check: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs = 60_000,
  describe?: () => unknown,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) {
      const detail = describe === undefined ? '' : `; last seen: ${JSON.stringify(describe())}`;
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${detail}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}
