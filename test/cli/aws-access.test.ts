/**
 * The AWS access check through the commands, against moto: `doctor --aws-endpoint` runs the ec2 module's doctor
 * (identity, subnets, the SSM prefix) and names a subnet that does not exist; `start --aws-endpoint` refuses to start
 * a fleet that fails the check, with the reason on stderr and exit status 1, within seconds and before it serves or
 * reconciles anything. Credentials come from the command's environment (moto accepts any).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DescribeSubnetsCommand, EC2Client } from '@aws-sdk/client-ec2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { command as doctor } from '../../src/cli/doctor.js';
import { command as start } from '../../src/cli/start.js';
import type { Simulator } from '../../src/sim/github/index.js';
import { startSimulator } from '../../src/sim/github/index.js';
import { LogSink } from '../support/log-sink.js';
import type { MotoServer } from '../support/moto.js';
import { MOTO_ACCOUNT, MOTO_CREDENTIALS, requireAwsPeers, startMoto } from '../support/moto.js';

const REGION = 'eu-west-1';
const MISSING_SUBNET = 'subnet-0123456789abcdef0';

describe.skipIf(!requireAwsPeers('cli/aws-access'))('doctor and start: the AWS access check on moto', () => {
  // Made when the suite runs: a skipped suite's body is still collected, and its afterAll would not remove it.
  let dir = '';
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'rf-cli-aws-'));
  });
  let moto: MotoServer;
  let sim: Simulator;
  let subnet: string;
  let n = 0;

  beforeAll(async () => {
    [moto, sim] = await Promise.all([startMoto(), startSimulator({ orgs: ['octo-org'] })]);
    const ec2 = new EC2Client({ region: REGION, endpoint: moto.url, credentials: MOTO_CREDENTIALS });
    subnet = (await ec2.send(new DescribeSubnetsCommand({}))).Subnets![0]!.SubnetId!;
    ec2.destroy();
  });

  afterAll(async () => {
    await Promise.all([moto?.stop(), sim?.close()]);
    rmSync(dir, { recursive: true, force: true });
  });

  /** A fleet with one ec2 scale set in `subnets`; its blocks name no endpoint: --aws-endpoint gives moto. */
  function fleetFile(subnets: string[]): string {
    const file = join(dir, `fleet-${++n}.yaml`);
    writeFileSync(
      file,
      stringify({
        name: 'acme',
        github: { url: sim.baseUrl, apiUrl: sim.apiUrl, auth: { token: sim.token } },
        webhook: { secret: 'not-used-here-but-long-enough' },
        server: { port: 0 },
        store: { path: join(dir, `store-${n}.db`) },
        scaleSets: [
          {
            name: 'linux',
            scope: { org: 'octo-org' },
            labels: ['linux'],
            max: 2,
            provider: {
              kind: 'ec2',
              region: REGION,
              imageId: 'ami-0123456789abcdef0',
              instanceProfile: 'runner-fleet-runner',
              instanceTypes: ['t3.micro'],
              subnetIds: subnets,
            },
          },
        ],
      }),
    );
    return file;
  }

  async function run(cmd: typeof doctor, argv: string[]) {
    const stdout = new LogSink();
    const stderr = new LogSink();
    const env = {
      PATH: process.env.PATH,
      AWS_ACCESS_KEY_ID: MOTO_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: MOTO_CREDENTIALS.secretAccessKey,
    };
    const code = await cmd.run(argv, { stdout, stderr, env });
    return { code, out: stdout.text(), err: stderr.text() };
  }

  it('doctor passes a fleet whose subnet, identity and SSM prefix check out', async () => {
    const r = await run(doctor, ['--config', fleetFile([subnet]), '--aws-endpoint', moto.url]);
    expect(r.out).toContain(
      `ok    AWS identity (endpoint ${moto.url}): arn:aws:sts::${MOTO_ACCOUNT}:user/moto`,
    );
    expect(r.out).toContain(`ok    subnet ${subnet} exist in ${REGION}`);
    expect(r.out).toContain(`ok    SSM prefix /runner-fleet/acme is writable in ${REGION}`);
    expect(r.out.trim().split('\n').at(-1)).toBe('doctor: all checks passed');
    expect(r.code).toBe(0);
  });

  it('doctor names the subnet that does not exist, and fails', async () => {
    const r = await run(doctor, ['--config', fleetFile([MISSING_SUBNET]), '--aws-endpoint', moto.url]);
    expect(r.err).toBe('');
    expect(r.out).toContain(`FAIL  subnet ${MISSING_SUBNET} (scale set linux) does not exist in ${REGION}`);
    // The other checks still run and pass.
    expect(r.out).toContain(`ok    SSM prefix /runner-fleet/acme is writable in ${REGION}`);
    expect(r.out.trim().split('\n').at(-1)).toBe('doctor: some checks FAILED');
    expect(r.code).toBe(1);
  });

  it('start refuses a fleet that fails the check: the reason on stderr, exit 1, within seconds', async () => {
    const began = Date.now();
    const r = await run(start, [
      '--config',
      fleetFile([MISSING_SUBNET]),
      '--aws-endpoint',
      moto.url,
      '--log-level',
      'silent',
    ]);
    expect(r.code).toBe(1);
    expect(Date.now() - began).toBeLessThan(20_000);
    expect(r.err).toContain('runner-fleet start: refusing to start: the AWS access check failed.');
    expect(r.err).toContain(`subnet ${MISSING_SUBNET} (scale set linux) does not exist in ${REGION}`);
    // The passing checks are not repeated as reasons.
    expect(r.err).not.toContain('AWS identity');
  });

  it('rejects an --aws-endpoint that is not an http(s) URL', async () => {
    await expect(
      run(doctor, ['--config', fleetFile([subnet]), '--aws-endpoint', 'moto:5000']),
    ).rejects.toThrow('--aws-endpoint must be an http(s) URL');
  });
});
